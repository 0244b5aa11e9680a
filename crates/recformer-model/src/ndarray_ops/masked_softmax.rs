//! The dense local attention's masking and softmax as one op on NdArray f32, forward and
//! backward, the rows split over rayon's threads: bit for bit the reference's chain
//! (`attention::reference::masked_probs`).
//!
//! The reference builds `[batch, heads, l, l]` boolean masks out of the band and the key masks,
//! fills the disallowed scores with `f32::MIN`, takes the softmax and zeroes the padding rows:
//! about ten boolean and float passes per layer on the calling thread while rayon's workers wait
//! (some 45 ms of a 680 ms MiniLM forward on 64 × 64 tokens, docs/performance.md), and as many
//! again in the backward. Here each row is masked on the fly from the `[batch, l]` key masks and
//! passed to [`super::softmax`]'s row kernel; the backward is the same rows' `y ⊙ (g - Σ g ⊙ y)`
//! with the masked entries and padding rows set to zero, as the reference's `mask_fill`
//! gradients set them.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::softmax::{row_dot, rows_per_task, softmax_row};
use super::{elements, map_f32, primitive, simd, tensor, zeroed, Float, Kind, Map};
use crate::attention::{AttentionMasks, MASK_VALUE};

/// Which keys each query row may attend to: the reference's rule, from `[batch, l]` masks.
#[derive(Debug, Clone)]
struct Allowed {
    /// Tokens per sequence (the scores' last two dimensions).
    l: usize,
    /// Score rows per sequence (`heads · l`).
    rows_per_batch: usize,
    /// One-sided window.
    w: usize,
    /// `[batch · l]`: padding tokens.
    masked: Vec<bool>,
    /// `[batch · l]`: global tokens.
    global: Vec<bool>,
}

impl Allowed {
    /// The padding and global flags of score row `r` (row-major over `[batch, heads, l]`) and
    /// its query index.
    #[inline(always)]
    fn row(&self, r: usize) -> (usize, &[bool], &[bool]) {
        let start = r / self.rows_per_batch * self.l;
        let keys = start..start + self.l;
        (r % self.l, &self.masked[keys.clone()], &self.global[keys])
    }

    /// Query `i` may attend to key `j`: a global key, or a non-padding key inside the band
    /// (the reference's `(band ∧ ¬masked ∧ ¬global) ∨ global`).
    #[inline(always)]
    fn allows(&self, i: usize, j: usize, masked: &[bool], global: &[bool]) -> bool {
        global[j] || (i.abs_diff(j) <= self.w && !masked[j])
    }
}

/// The attention probabilities `[batch, heads, l, l]` of `scores` (same shape) under `masks`
/// with one-sided window `w`, on NdArray f32 or `Autodiff<NdArray<f32>>`; `Err(scores)` for
/// every other backend and float type.
pub(crate) fn masked_softmax<B: Backend>(
    scores: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    w: usize,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let [b, h, l, cols] = scores.dims();
    let kind = Kind::of::<B>();
    let fused = scores.dtype() == DType::F32
        && matches!(
            kind,
            Some(Kind::Plain(DType::F32) | Kind::Tracked(DType::F32))
        )
        && cols == l
        && masks.is_index_masked.dims() == [b, l];
    if !fused {
        return Err(scores);
    }
    let flags = |t: &Tensor<B, 2, burn::tensor::Bool>| {
        t.clone()
            .into_data()
            .to_vec::<bool>()
            .expect("a boolean mask")
    };
    let allowed = Allowed {
        l,
        rows_per_batch: h * l,
        w,
        masked: flags(&masks.is_index_masked),
        global: flags(&masks.is_index_global_attn),
    };
    Ok(match kind {
        Some(Kind::Tracked(_)) => tracked(scores, allowed),
        _ => tensor::<B, 4, _>(forward(&primitive(scores), &allowed)),
    })
}

/// The forward's loop: each row masked into a buffer, then [`softmax_row`]; padding rows 0.
struct Rows<'a>(&'a Allowed);

impl Map for Rows<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, input: &[f32], out: &mut [f32]) {
        let a = self.0;
        let mut row = vec![0.0_f32; a.l];
        for (k, (y, x)) in out
            .chunks_exact_mut(a.l)
            .zip(input.chunks_exact(a.l))
            .enumerate()
        {
            let (i, masked, global) = a.row(start / a.l + k);
            if masked[i] {
                y.fill(0.0);
                continue;
            }
            for (j, (r, &x)) in row.iter_mut().zip(x).enumerate() {
                *r = if a.allows(i, j, masked, global) {
                    x
                } else {
                    MASK_VALUE
                };
            }
            softmax_row(&row, y);
        }
    }
}

fn forward(scores: &NdArrayTensor, allowed: &Allowed) -> NdArrayTensor {
    map_f32(scores, rows_per_task(allowed.l) * allowed.l, &Rows(allowed))
}

/// The backward's loop over one task's rows (`start`: its first element).
struct Gradient<'a> {
    allowed: &'a Allowed,
    start: usize,
    probs: &'a [f32],
    incoming: &'a [f32],
    out: &'a mut [f32],
}

impl simd::Kernel for Gradient<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let a = self.allowed;
        let rows = self
            .out
            .chunks_exact_mut(a.l)
            .zip(self.probs.chunks_exact(a.l))
            .zip(self.incoming.chunks_exact(a.l));
        for (k, ((o, y), g)) in rows.enumerate() {
            let (i, masked, global) = a.row(self.start / a.l + k);
            if masked[i] {
                o.fill(0.0);
                continue;
            }
            let dot = row_dot(g, y);
            for (j, ((o, &y), &g)) in o.iter_mut().zip(y).zip(g).enumerate() {
                *o = if a.allows(i, j, masked, global) {
                    y * (g - dot)
                } else {
                    0.0
                };
            }
        }
    }
}

fn backward(probs: &NdArrayTensor, grad: &NdArrayTensor, allowed: &Allowed) -> NdArrayTensor {
    let (y, g) = (elements(probs), elements(grad));
    assert_eq!(
        y.shape(),
        g.shape(),
        "the gradient has the probabilities' shape"
    );
    let dim = y.raw_dim();
    let (y, g) = (
        y.as_slice().expect("standard layout"),
        g.as_slice().expect("standard layout"),
    );
    let task = rows_per_task(allowed.l) * allowed.l;
    let mut out = zeroed::<f32>(y.len());
    out.par_chunks_mut(task)
        .zip(y.par_chunks(task).zip(g.par_chunks(task)))
        .enumerate()
        .for_each(|(t, (out, (probs, incoming)))| {
            simd::vectorized(Gradient {
                allowed,
                start: t * task,
                probs,
                incoming,
                out,
            })
        });
    let array = ndarray::ArcArray::from_shape_vec(dim, out).expect("same number of elements");
    f32::wrap(array)
}

/// The autodiff node: keeps the probabilities and the key masks.
#[derive(Debug)]
struct FusedMaskedSoftmax;

impl Backward<NdArray<f32>, 1> for FusedMaskedSoftmax {
    type State = (NdArrayTensor, Allowed);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (y, allowed) = ops.state;
        unary::<NdArray<f32>, _>(ops.parents, ops.node, grads, |grad| {
            backward(&y, &grad, &allowed)
        });
    }
}

fn tracked<B: Backend>(scores: Tensor<B, 4>, allowed: Allowed) -> Tensor<B, 4> {
    let x: FloatTensor<Autodiff<NdArray<f32>>> = primitive(scores);
    let y = match FusedMaskedSoftmax
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = forward(&x.primitive, &allowed);
            prep.finish((y.clone(), allowed), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive, &allowed)),
    };
    tensor::<B, 4, _>(y)
}

#[cfg(test)]
mod tests {
    //! Against the reference's masking and softmax: the same bits, forward and backward.

    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    use super::masked_softmax;
    use crate::attention::reference::masked_probs;
    use crate::attention::AttentionMasks;
    use crate::ndarray_ops::tests::{bits, Ad, Plain};

    /// Two sequences of 24 tokens (window 4): the first with 5 padding tokens and tokens 0 and
    /// 9 global, the second unpadded with token 0 global.
    fn masks<B: burn::tensor::backend::Backend>() -> AttentionMasks<B> {
        let device = Default::default();
        let l = 24;
        let mut attention = vec![1_i64; 2 * l];
        attention[l - 5..l].fill(0);
        let mut global = vec![0_i64; 2 * l];
        global[0] = 1;
        global[9] = 1;
        global[l] = 1;
        let t = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [2, l]), &device);
        AttentionMasks::new(t(attention), t(global))
    }

    fn scores() -> TensorData {
        let device = Default::default();
        Tensor::<Plain, 4>::random([2, 3, 24, 24], Distribution::Normal(0.0, 2.0), &device)
            .into_data()
    }

    #[test]
    fn probabilities_equal_the_reference_bit_for_bit() {
        let x = Tensor::<Plain, 4>::from_data(scores(), &Default::default());
        let m = masks::<Plain>();
        let reference = masked_probs(x.clone(), &m, 4);
        let fused = masked_softmax(x, &m, 4).unwrap_or_else(|_| panic!("NdArray f32 is fused"));
        assert_eq!(bits(fused.into_data()), bits(reference.into_data()));
    }

    #[test]
    fn gradients_equal_the_reference_bit_for_bit() {
        let device = Default::default();
        let m = masks::<Ad>();
        let r = Tensor::<Ad, 4>::random([2, 3, 24, 24], Distribution::Normal(0.0, 1.0), &device);
        let data = scores();
        let mut results = Vec::new();
        for fused in [false, true] {
            let x = Tensor::<Ad, 4>::from_data(data.clone(), &device).require_grad();
            let y = if fused {
                masked_softmax(x.clone(), &m, 4).unwrap_or_else(|_| panic!("fused"))
            } else {
                masked_probs(x.clone(), &m, 4)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            results.push((
                bits(y.into_data()),
                bits(x.grad(&grads).expect("a gradient").into_data()),
            ));
        }
        assert_eq!(results[0].0, results[1].0, "probabilities");
        assert_eq!(results[0].1, results[1].1, "gradients");
    }

    // Not `NdArray<f64>`: the first tensor a process creates on a device fixes that device's
    // default float type for every test (burn 0.21 `DeviceSettings`, see `gelu.rs`).
    #[cfg(feature = "flex")]
    #[test]
    fn other_backends_are_handed_back() {
        type F = burn::backend::Flex;
        let m = masks::<F>();
        let x = Tensor::<F, 4>::zeros([2, 3, 24, 24], &Default::default());
        assert!(masked_softmax(x, &m, 4).is_err());
    }
}
