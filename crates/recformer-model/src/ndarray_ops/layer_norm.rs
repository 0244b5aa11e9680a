//! Layer normalisation over the last dimension on NdArray f32 in one pass per row, forward and
//! backward, rows split over rayon's threads.
//!
//! Burn 0.21's `LayerNorm` is the backend's default `layer_norm`: two `mean_dim`, `sub`, `mul`,
//! `add_scalar`, `sqrt`, `div`, `mul` by γ and `add` of β, each a pass on the calling thread;
//! autodiff differentiates each op and keeps their inputs (the centred values, their square,
//! the denominators, the normalised values). Here the forward is the same formula per row,
//! `((x − μ) / √(σ² + ε)) · γ + β` with `μ` and `σ²` row means, and the backward is the closed
//! form `dx = (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) / √(σ² + ε)` with `ĝ = g ⊙ γ`, `dγ = Σ g ⊙ x̂`,
//! `dβ = Σ g` over the rows; only the input is kept. The sums over rows are partial sums per
//! fixed block of rows added in block order, so every run gives the same bits.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArrayTensor;
use ndarray::ArcArray;

use super::filled::filled_with;
use super::{elements, map_f32, primitive, simd, tensor, Float, Kind, Map, CHUNK};

/// `LayerNorm` with scale `gamma`, shift `beta` and `epsilon` over the last dimension of `x`, on
/// NdArray f32 or `Autodiff<NdArray<f32>>`; `Err` for every other backend and float type.
///
/// # Shapes
/// - x: `[..., d]`; gamma, beta: `[d]`; output as x
#[allow(clippy::type_complexity)]
pub(crate) fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    epsilon: f64,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, 1>, Tensor<B, 1>)> {
    let d = x.dims()[D - 1];
    let fits = d > 0 && gamma.dims() == [d] && beta.dims() == [d];
    let f32s = [x.dtype(), gamma.dtype(), beta.dtype()] == [DType::F32; 3];
    if !fits || !f32s {
        return Err((x, gamma, beta));
    }
    let norm = Norm {
        epsilon: epsilon as f32,
    };
    match Kind::of::<B>() {
        Some(Kind::Plain(DType::F32)) => {
            let (x, gamma, beta): (NdArrayTensor, NdArrayTensor, NdArrayTensor) =
                (primitive(x), primitive(gamma), primitive(beta));
            Ok(tensor::<B, D, _>(norm.forward(&x, &gamma, &beta)))
        }
        Some(Kind::Tracked(DType::F32)) => Ok(tracked(norm, x, gamma, beta)),
        _ => Err((x, gamma, beta)),
    }
}

/// The normalisation's constant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Norm {
    pub(super) epsilon: f32,
}

/// `Σ f(i)` for `i < n` in eight interleaved partial sums added pairwise (vectorised, and more
/// accurate than one running sum over a row of hundreds).
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let full = n / 8 * 8;
    for i in (0..full).step_by(8) {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane += f(i + j);
        }
    }
    let tail: f32 = (full..n).map(&f).sum();
    let [a, b, c, d, e, g, h, k] = lanes;
    ((a + b) + (c + d)) + ((e + g) + (h + k)) + tail
}

/// `(mean, √(var + ε))` of a row, Burn's operations in f32 (the caller divides by the root).
#[inline(always)]
pub(super) fn moments(row: &[f32], epsilon: f32) -> (f32, f32) {
    let n = row.len();
    let mean = lane_sum(n, |i| row[i]) / n as f32;
    let var = lane_sum(n, |i| (row[i] - mean) * (row[i] - mean)) / n as f32;
    (mean, (var + epsilon).sqrt())
}

/// Rows moved through [`moments_of`] together.
pub(super) const GROUP: usize = 4;

/// [`moments`] of [`GROUP`] rows of equal length at once: each row's sums in its own order
/// (the same bits), the rows' chains of additions interleaved. One row's sum is a chain of
/// dependent additions (48 for 384 floats, 8 lanes wide), bound by the adder's latency; four
/// independent chains keep the adder busy (docs/performance.md).
#[inline(always)]
pub(super) fn moments_of(rows: [&[f32]; GROUP], epsilon: f32) -> [(f32, f32); GROUP] {
    let n = rows[0].len();
    let rows: [&[f32]; GROUP] = core::array::from_fn(|r| &rows[r][..n]);
    let means = lane_sums(n, |r, i| rows[r][i]).map(|s| s / n as f32);
    let vars = lane_sums(n, |r, i| (rows[r][i] - means[r]) * (rows[r][i] - means[r]));
    core::array::from_fn(|r| (means[r], (vars[r] / n as f32 + epsilon).sqrt()))
}

/// [`lane_sum`] of [`GROUP`] rows at once: `f(r, i)` is row `r`'s element `i`.
#[inline(always)]
fn lane_sums(n: usize, f: impl Fn(usize, usize) -> f32) -> [f32; GROUP] {
    let mut lanes = [[0.0_f32; 8]; GROUP];
    let full = n / 8 * 8;
    for i in (0..full).step_by(8) {
        for (r, lanes) in lanes.iter_mut().enumerate() {
            for (j, lane) in lanes.iter_mut().enumerate() {
                *lane += f(r, i + j);
            }
        }
    }
    let mut sums = [0.0_f32; GROUP];
    for (r, (sum, lanes)) in sums.iter_mut().zip(lanes).enumerate() {
        let tail: f32 = (full..n).map(|i| f(r, i)).sum();
        let [a, b, c, d, e, g, h, k] = lanes;
        *sum = ((a + b) + (c + d)) + ((e + g) + (h + k)) + tail;
    }
    sums
}

/// A vector's f32 elements.
pub(super) fn vector(t: &NdArrayTensor) -> Vec<f32> {
    elements(t).iter().copied().collect()
}

impl Norm {
    /// Rows per parallel task: about [`CHUNK`] elements.
    pub(super) fn rows_per_task(d: usize) -> usize {
        (CHUNK / d).max(1)
    }

    fn forward(
        self,
        x: &NdArrayTensor,
        gamma: &NdArrayTensor,
        beta: &NdArrayTensor,
    ) -> NdArrayTensor {
        let (gamma, beta) = (vector(gamma), vector(beta));
        let d = gamma.len();
        let rows = Rows {
            norm: self,
            gamma: &gamma,
            beta: &beta,
        };
        map_f32(x, Self::rows_per_task(d) * d, &rows)
    }

    /// `[dx, dγ, dβ]` for the incoming gradient `grad` of the output.
    fn backward(
        self,
        x: &NdArrayTensor,
        gamma: &NdArrayTensor,
        grad: &NdArrayTensor,
    ) -> [NdArrayTensor; 3] {
        let gamma = vector(gamma);
        let d = gamma.len();
        let (xs, gs) = (elements(x), elements(grad));
        assert_eq!(
            xs.shape(),
            gs.shape(),
            "LayerNorm's gradient has its input's shape"
        );
        let (input, incoming) = (
            xs.as_slice().expect("standard layout"),
            gs.as_slice().expect("standard layout"),
        );
        let task = Self::rows_per_task(d) * d;
        // Per block of rows: dx written in place, the block's partial dγ and dβ returned.
        let (dx, partials) = filled_with(input.len(), task, |t, dx| {
            let range = t * task..t * task + dx.len();
            simd::vectorized(BackwardBlock {
                norm: self,
                gamma: &gamma,
                x: &input[range.clone()],
                g: &incoming[range],
                dx,
            })
        });
        let (mut dgamma, mut dbeta) = (vec![0.0_f32; d], vec![0.0_f32; d]);
        for (pg, pb) in &partials {
            for (s, v) in dgamma.iter_mut().zip(pg) {
                *s += v;
            }
            for (s, v) in dbeta.iter_mut().zip(pb) {
                *s += v;
            }
        }
        let wrap = |v: Vec<f32>, shape: ndarray::IxDyn| {
            f32::wrap(ArcArray::from_shape_vec(shape, v).expect("same number of elements"))
        };
        [
            wrap(dx, xs.raw_dim()),
            wrap(dgamma, ndarray::IxDyn(&[d])),
            wrap(dbeta, ndarray::IxDyn(&[d])),
        ]
    }
}

/// The forward's loop: LayerNorm of every row of `γ`'s length.
pub(super) struct Rows<'a> {
    pub(super) norm: Norm,
    pub(super) gamma: &'a [f32],
    pub(super) beta: &'a [f32],
}

/// One normalised element: `((x − μ) / √(σ² + ε)) · γ + β`.
#[inline(always)]
pub(super) fn normalised(x: f32, (mean, denom): (f32, f32), gamma: f32, beta: f32) -> f32 {
    ((x - mean) / denom) * gamma + beta
}

impl Rows<'_> {
    /// One row normalised with its moments, into `y`.
    #[inline(always)]
    pub(super) fn normalise(&self, x: &[f32], moments: (f32, f32), y: &mut [f32]) {
        for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(self.gamma).zip(self.beta) {
            *y = normalised(x, moments, g, b);
        }
    }
}

impl Map for Rows<'_> {
    #[inline(always)]
    fn apply(&self, _start: usize, input: &[f32], out: &mut [f32]) {
        let d = self.gamma.len();
        let groups = out
            .chunks_exact_mut(GROUP * d)
            .zip(input.chunks_exact(GROUP * d));
        let whole = groups.len() * GROUP * d;
        for (y, x) in groups {
            let rows: [&[f32]; GROUP] = core::array::from_fn(|r| &x[r * d..(r + 1) * d]);
            let moments = moments_of(rows, self.norm.epsilon);
            for ((y, x), moments) in y.chunks_exact_mut(d).zip(rows).zip(moments) {
                self.normalise(x, moments, y);
            }
        }
        for (y, x) in out[whole..]
            .chunks_exact_mut(d)
            .zip(input[whole..].chunks_exact(d))
        {
            self.normalise(x, moments(x, self.norm.epsilon), y);
        }
    }
}

/// The backward of one block of rows: `dx` written in place, the block's partial `dγ` and `dβ`
/// returned.
struct BackwardBlock<'a> {
    norm: Norm,
    gamma: &'a [f32],
    x: &'a [f32],
    g: &'a [f32],
    dx: &'a mut [f32],
}

impl simd::Kernel for BackwardBlock<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    #[inline(always)]
    fn run(self) -> Self::Output {
        let (gamma, d) = (self.gamma, self.gamma.len());
        let (mut dgamma, mut dbeta) = (vec![0.0_f32; d], vec![0.0_f32; d]);
        let mut xhat = vec![0.0_f32; d];
        for ((dx, x), g) in self
            .dx
            .chunks_exact_mut(d)
            .zip(self.x.chunks_exact(d))
            .zip(self.g.chunks_exact(d))
        {
            let (mean, denom) = moments(x, self.norm.epsilon);
            for ((((h, &x), &g), dg), db) in xhat
                .iter_mut()
                .zip(x)
                .zip(g)
                .zip(dgamma.iter_mut())
                .zip(dbeta.iter_mut())
            {
                *h = (x - mean) / denom;
                *dg += g * *h;
                *db += g;
            }
            let sum_g = lane_sum(d, |i| g[i] * gamma[i]);
            let sum_gx = lane_sum(d, |i| g[i] * gamma[i] * xhat[i]);
            let n = d as f32;
            let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
            for (((o, &h), &g), &gm) in dx.iter_mut().zip(&xhat).zip(g).zip(gamma) {
                *o = (g * gm - mean_g - h * mean_gx) / denom;
            }
        }
        (dgamma, dbeta)
    }
}

/// The autodiff node: keeps the input and γ.
#[derive(Debug)]
struct FusedLayerNorm;

impl Backward<NdArray<f32>, 3> for FusedLayerNorm {
    type State = (Norm, NdArrayTensor, NdArrayTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad: NdArrayTensor = grads.consume::<NdArray<f32>>(&ops.node);
        let (norm, x, gamma) = ops.state;
        let gradients = norm.backward(&x, &gamma, &grad);
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<NdArray<f32>>(node.id, gradient);
            }
        }
    }
}

fn tracked<B: Backend, const D: usize>(
    norm: Norm,
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
) -> Tensor<B, D> {
    let x: FloatTensor<Autodiff<NdArray<f32>>> = primitive(x);
    let gamma: FloatTensor<Autodiff<NdArray<f32>>> = primitive(gamma);
    let beta: FloatTensor<Autodiff<NdArray<f32>>> = primitive(beta);
    let y = norm.forward(&x.primitive, &gamma.primitive, &beta.primitive);
    let y = match FusedLayerNorm
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((norm, x.primitive, gamma.primitive), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    tensor::<B, D, _>(y)
}

#[cfg(test)]
mod tests;
