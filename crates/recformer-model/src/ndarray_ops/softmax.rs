//! Softmax over the last dimension on NdArray f32 in one pass per row, forward and backward, the
//! rows split over rayon's threads.
//!
//! Burn 0.21's softmax is five ops (`max_dim` through an `argmax` and a `gather`, `sub`, `exp`,
//! `sum_dim`, `div`), each a pass over the scores on the calling thread, with libm's `expf`; with
//! autodiff the backward runs the five ops' gradients and keeps the exponentials and their sums.
//! Here the forward is Burn's formula, `exp(x - max) / sum`, with the vectorised `exp` of
//! [`super::erf`] (within 1 ulp of libm's; exactly 0 below `-87`, where libm's is below
//! `1.6e-38` or 0), and the backward is `y ⊙ (g - Σ g ⊙ y)` in one pass; only the output `y` is
//! kept.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArrayTensor;

use super::erf::exp_nonpositive;
use super::{map_f32, primitive, tensor, zip_map_f32, Kind, Map, ZipMap, CHUNK};

/// Softmax over dimension `dim` on NdArray f32 or `Autodiff<NdArray<f32>>` when `dim` is the last
/// one; `Err(x)` for every other backend, float type and dimension.
///
/// # Shapes
/// - any; output as input
pub(crate) fn softmax<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    dim: usize,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if x.dtype() != DType::F32 || dim + 1 != D || x.dims()[dim] == 0 {
        return Err(x);
    }
    match Kind::of::<B>() {
        Some(Kind::Plain(DType::F32)) => {
            let x: NdArrayTensor = primitive(x);
            Ok(tensor::<B, D, _>(forward(&x)))
        }
        Some(Kind::Tracked(DType::F32)) => Ok(tracked(x)),
        _ => Err(x),
    }
}

/// Lanes of the row reductions (independent partial results the compiler keeps in one vector).
const LANES: usize = 8;

/// The largest element of a row (NaN-free rows; `-inf` for an empty one).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    tail.iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `Σ a ⊙ b` over a row.
#[inline(always)]
pub(super) fn row_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `e^r` for `r ≤ 0`, exactly 0 below -87.
#[inline(always)]
fn exp_or_zero(r: f32) -> f32 {
    let e = exp_nonpositive(r);
    if r < -87.0 {
        0.0
    } else {
        e
    }
}

/// `exp(x - max) / Σ exp(x - max)` of one row.
#[inline(always)]
pub(super) fn softmax_row(x: &[f32], y: &mut [f32]) {
    let max = row_max(x);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = exp_or_zero(v - max);
    }
    let mut lanes = [0.0_f32; LANES];
    let chunks = y.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (s, &e) in lanes.iter_mut().zip(chunk) {
            *s += e;
        }
    }
    let sum = lanes.iter().sum::<f32>() + tail;
    for o in y.iter_mut() {
        *o /= sum;
    }
}

/// Rows per parallel task: about [`CHUNK`] elements.
pub(super) fn rows_per_task(row: usize) -> usize {
    (CHUNK / row).max(1)
}

/// The length of a tensor's last dimension.
fn row_len(x: &NdArrayTensor) -> usize {
    *x.shape().last().expect("rank ≥ 1")
}

/// The forward's loop: softmax of every row of `row` elements.
struct Rows {
    row: usize,
}

impl Map for Rows {
    #[inline(always)]
    fn apply(&self, _start: usize, input: &[f32], out: &mut [f32]) {
        for (y, x) in out
            .chunks_exact_mut(self.row)
            .zip(input.chunks_exact(self.row))
        {
            softmax_row(x, y);
        }
    }
}

/// The backward's loop: `y ⊙ (g - Σ g ⊙ y)` row by row (`a`: `y`, `b`: `g`).
struct RowGradients {
    row: usize,
}

impl ZipMap for RowGradients {
    #[inline(always)]
    fn apply(&self, probs: &[f32], incoming: &[f32], out: &mut [f32]) {
        let row = self.row;
        for ((o, y), g) in out
            .chunks_exact_mut(row)
            .zip(probs.chunks_exact(row))
            .zip(incoming.chunks_exact(row))
        {
            let dot = row_dot(g, y);
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                *o = y * (g - dot);
            }
        }
    }
}

/// Softmax of every row of the last dimension, into a new tensor of the same shape.
fn forward(x: &NdArrayTensor) -> NdArrayTensor {
    let row = row_len(x);
    map_f32(x, rows_per_task(row) * row, &Rows { row })
}

/// `y ⊙ (g - Σ g ⊙ y)` row by row.
fn backward(y: &NdArrayTensor, grad: &NdArrayTensor) -> NdArrayTensor {
    let row = row_len(y);
    let what = "softmax's gradient has its output's shape";
    zip_map_f32(
        y,
        grad,
        rows_per_task(row) * row,
        what,
        &RowGradients { row },
    )
}

/// The autodiff node: keeps the output.
#[derive(Debug)]
struct FusedSoftmax;

impl Backward<NdArray<f32>, 1> for FusedSoftmax {
    type State = NdArrayTensor;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let y = ops.state;
        unary::<NdArray<f32>, _>(ops.parents, ops.node, grads, |grad| backward(&y, &grad));
    }
}

fn tracked<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x: FloatTensor<Autodiff<NdArray<f32>>> = primitive(x);
    let y = match FusedSoftmax
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = forward(&x.primitive);
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive)),
    };
    tensor::<B, D, _>(y)
}

#[cfg(test)]
mod tests {
    //! Against Burn's softmax on the same backend: values within a few ulp (the `exp` differs),
    //! the same gradients within rounding, masked scores exactly 0.

    use burn::tensor::{activation, Distribution, Tensor, TensorData};

    use super::{softmax, RowGradients, Rows};
    use crate::ndarray_ops::simd::tests::{same_bits_on_every_width, Arch};
    use crate::ndarray_ops::tests::{map_on, zip_on, Ad, Plain};

    /// Rows of 37 (not a multiple of the lanes): normal scores at two scales, one row with
    /// masked (`f32::MIN`) entries and one fully masked row.
    fn input() -> Tensor<Plain, 3> {
        let device = Default::default();
        let mut values =
            Tensor::<Plain, 1>::random([4 * 5 * 37], Distribution::Normal(0.0, 1.0), &device)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
        for (i, v) in values.iter_mut().enumerate() {
            *v *= [1.0, 8.0][(i / 37) % 2];
        }
        for v in &mut values[37..37 + 20] {
            *v = f32::MIN;
        }
        for v in &mut values[2 * 37..3 * 37] {
            *v = f32::MIN;
        }
        Tensor::from_data(TensorData::new(values, [4, 5, 37]), &device)
    }

    #[test]
    fn the_same_bits_on_every_instruction_set() {
        let x = input().into_data().to_vec::<f32>().unwrap();
        let g: Vec<f32> = x.iter().map(|v| (v * 0.7).sin()).collect();
        let y = map_on(Arch::Scalar, &Rows { row: 37 }, &x);
        same_bits_on_every_width("softmax", |arch| map_on(arch, &Rows { row: 37 }, &x));
        same_bits_on_every_width("softmax'", |arch| {
            zip_on(arch, &RowGradients { row: 37 }, &y, &g)
        });
    }

    fn close(ours: &[f32], burn: &[f32], rel: f32, what: &str) {
        for (i, (a, b)) in ours.iter().zip(burn).enumerate() {
            assert!(
                (a - b).abs() <= rel * b.abs() + 1e-30,
                "{what}[{i}]: {a} vs Burn's {b}"
            );
        }
    }

    #[test]
    fn forward_is_burns_softmax_within_a_few_ulp_and_masked_scores_are_zero() {
        let x = input();
        let ours = softmax(x.clone(), 2)
            .unwrap_or_else(|_| panic!("NdArray f32, last dimension"))
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let burn = activation::softmax(x, 2)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        close(&ours, &burn, 6e-7, "softmax");
        assert!(ours[37..37 + 20].iter().all(|&p| p == 0.0), "masked → 0");
        let uniform = 1.0 / 37.0;
        assert!(ours[2 * 37..3 * 37]
            .iter()
            .all(|&p| (p - uniform).abs() < 1e-7));
        for row in ours.chunks(37) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row sums to {sum}");
        }
    }

    /// `y ⊙ (r - Σ r ⊙ y)` in f64 from the f32 scores, row by row.
    fn exact_gradient(x: &[f32], r: &[f32], row: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(x.len());
        for (x, r) in x.chunks(row).zip(r.chunks(row)) {
            let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let e: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            let y: Vec<f64> = e.iter().map(|e| e / sum).collect();
            let dot: f64 = y.iter().zip(r).map(|(y, &r)| y * r as f64).sum();
            out.extend(y.iter().zip(r).map(|(y, &r)| y * (r as f64 - dot)));
        }
        out
    }

    #[test]
    fn gradient_is_as_accurate_as_burns_and_the_forward_matches_inference() {
        let plain = input();
        let device = Default::default();
        let r = Tensor::<Ad, 3>::random(plain.dims(), Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = Tensor::<Ad, 3>::from_data(plain.to_data(), &device).require_grad();
            let y = if ours {
                softmax(x.clone(), 2).unwrap_or_else(|_| panic!("Autodiff<NdArray> f32"))
            } else {
                activation::softmax(x.clone(), 2)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            (y.into_data(), g)
        };
        let ((y, ours), (_, burn)) = (run(true), run(false));
        let inference = softmax(plain.clone(), 2).unwrap_or_else(|_| panic!("fused"));
        assert_eq!(
            y,
            inference.into_data(),
            "the same forward with and without autodiff"
        );

        let xs = plain.into_data().to_vec::<f32>().unwrap();
        let rs = r.into_data().to_vec::<f32>().unwrap();
        let exact = exact_gradient(&xs, &rs, 37);
        let worst = |g: &[f32]| {
            g.iter()
                .zip(&exact)
                .map(|(&g, e)| (g as f64 - e).abs())
                .fold(0.0, f64::max)
        };
        let (ours_err, burn_err) = (worst(&ours), worst(&burn));
        // A few f32 roundings of terms of order 1 (`exp` within 2 ulp, the row's dot product);
        // Burn's own five-op gradient is off by 1e-7–4e-7 here.
        assert!(
            ours_err < 1e-6,
            "fused gradient off by {ours_err} (Burn's: {burn_err})"
        );
    }

    // No f64 NdArray tensor here (see `layer_norm`'s tests): f64 is covered by
    // `tests/sliding_gradients.rs`.
    #[test]
    fn other_dimensions_and_backends_are_handed_back() {
        assert!(softmax(input(), 1).is_err(), "not the last dimension");
        #[cfg(feature = "flex")]
        {
            let x = Tensor::<burn::backend::Flex, 2>::zeros([2, 3], &Default::default());
            assert!(softmax(x, 1).is_err(), "Flex keeps Burn's softmax");
        }
    }

    #[test]
    fn non_contiguous_input_is_read_in_its_logical_order() {
        let x = input().swap_dims(0, 1);
        let ours = softmax(x.clone(), 2).unwrap_or_else(|_| panic!("fused path"));
        let contiguous = softmax(
            Tensor::<Plain, 3>::from_data(x.to_data(), &Default::default()),
            2,
        )
        .unwrap_or_else(|_| panic!("fused path"));
        assert_eq!(ours.into_data(), contiguous.into_data());
    }
}
