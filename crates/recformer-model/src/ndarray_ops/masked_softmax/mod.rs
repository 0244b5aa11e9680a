//! The local attention's masking and softmax as one op on NdArray f32, forward and backward,
//! the rows split over rayon's threads: bit for bit the chains of Burn ops they replace, for the
//! dense scores (`attention::reference::masked_probs`) and for the sliding window's band
//! (`attention::sliding::band_probs`).
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

use super::filled::filled;
use super::softmax::{row_dot, rows_per_task, softmax_row};
use super::{elements, map_f32, primitive, simd, tensor, Float, Kind, Map};
use crate::attention::{AttentionMasks, MASK_VALUE};

mod rules;

use rules::{Allowed, Layout};

/// The attention probabilities `[batch, heads, l, l]` of `scores` (same shape) under `masks`
/// with one-sided window `w` (`attention::reference::masked_probs`), on NdArray f32 or
/// `Autodiff<NdArray<f32>>`; `Err(scores)` for every other backend and float type.
pub(crate) fn masked_softmax<B: Backend>(
    scores: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    w: usize,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let [_, h, l, cols] = scores.dims();
    fused(scores, masks, w, Layout::Dense, cols == l, h)
}

/// The band's probabilities `[batch, heads, l / w, w, 3w (+1)]` of its scores (same shape)
/// under `masks` (`attention::sliding::band_probs`), on NdArray f32 or
/// `Autodiff<NdArray<f32>>`; `Err(band_scores)` for every other backend and float type.
pub(crate) fn band_masked_softmax<B: Backend>(
    band_scores: Tensor<B, 5>,
    masks: &AttentionMasks<B>,
    w: usize,
) -> Result<Tensor<B, 5>, Tensor<B, 5>> {
    let [_, h, _, rows, cols] = band_scores.dims();
    let global_column = usize::from(masks.any_global);
    let fits = rows == w && cols == 3 * w + global_column;
    fused(band_scores, masks, w, Layout::Band, fits, h)
}

/// [`masked_softmax`] and [`band_masked_softmax`]; `fits`: the scores have the layout's shape
/// for these masks.
fn fused<B: Backend, const D: usize>(
    scores: Tensor<B, D>,
    masks: &AttentionMasks<B>,
    w: usize,
    layout: Layout,
    fits: bool,
    heads: usize,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let dims = scores.dims();
    let [b, l] = masks.is_index_masked.dims();
    let kind = Kind::of::<B>();
    let fused = fits
        && scores.dtype() == DType::F32
        && matches!(
            kind,
            Some(Kind::Plain(DType::F32) | Kind::Tracked(DType::F32))
        )
        && dims[0] == b
        && dims[..D - 1].iter().product::<usize>() == b * heads * l;
    if !fused {
        return Err(scores);
    }
    let allowed = Allowed::new(layout, l, dims[D - 1], heads, w, mask_flags(masks));
    Ok(match kind {
        Some(Kind::Tracked(_)) => tracked(scores, allowed),
        _ => tensor::<B, D, _>(forward(&primitive(scores), &allowed)),
    })
}

/// The padding and global flags of `masks`, read to the host.
fn mask_flags<B: Backend>(masks: &AttentionMasks<B>) -> [Vec<bool>; 2] {
    let flags = |t: &Tensor<B, 2, burn::tensor::Bool>| {
        t.clone()
            .into_data()
            .to_vec::<bool>()
            .expect("a boolean mask")
    };
    [
        flags(&masks.is_index_masked),
        flags(&masks.is_index_global_attn),
    ]
}

/// The masked softmax's rows, a block at a time, for the local attention in one pass
/// ([`super::band::attention`] over the band's scores, [`super::dense_attention`] over the
/// dense ones): bit for bit the ops' values.
pub(crate) struct SoftmaxRows(Allowed);

impl SoftmaxRows {
    /// The rules of the band's `[batch, heads, l / w, w, 3w (+1 when any token is global)]`
    /// scores under `masks` ([`band_masked_softmax`]).
    pub(crate) fn band<B: Backend>(masks: &AttentionMasks<B>, heads: usize, w: usize) -> Self {
        let [_, l] = masks.is_index_masked.dims();
        let cols = 3 * w + usize::from(masks.any_global);
        SoftmaxRows(Allowed::new(
            Layout::Band,
            l,
            cols,
            heads,
            w,
            mask_flags(masks),
        ))
    }

    /// The rules of the dense `[batch, heads, l, l]` scores under `masks` ([`masked_softmax`]).
    pub(crate) fn dense<B: Backend>(masks: &AttentionMasks<B>, heads: usize, w: usize) -> Self {
        let [_, l] = masks.is_index_masked.dims();
        SoftmaxRows(Allowed::new(
            Layout::Dense,
            l,
            l,
            heads,
            w,
            mask_flags(masks),
        ))
    }

    /// The probabilities of the whole rows of `scores` that start at element `start` of the
    /// op's scores, into `probs` (same length).
    #[inline(always)]
    pub(crate) fn softmax(&self, start: usize, scores: &[f32], probs: &mut [f32]) {
        Rows(&self.0).apply(start, scores, probs);
    }
}

/// The forward's loop: each row masked into a buffer, then [`softmax_row`]; padding rows 0.
struct Rows<'a>(&'a Allowed);

impl Map for Rows<'_> {
    #[inline(always)]
    fn apply(&self, start: usize, input: &[f32], out: &mut [f32]) {
        let a = self.0;
        let mut row = vec![0.0_f32; a.cols];
        for (k, (y, x)) in out
            .chunks_exact_mut(a.cols)
            .zip(input.chunks_exact(a.cols))
            .enumerate()
        {
            let rule = a.row(start / a.cols + k);
            if rule.padding {
                y.fill(0.0);
                continue;
            }
            let columns = row.iter_mut().zip(x).zip(rule.windowed).zip(rule.anywhere);
            for (c, (((r, &x), &windowed), &anywhere)) in columns.enumerate() {
                *r = if rule.allows(c, windowed, anywhere) {
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
    map_f32(
        scores,
        rows_per_task(allowed.cols) * allowed.cols,
        &Rows(allowed),
    )
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
            .chunks_exact_mut(a.cols)
            .zip(self.probs.chunks_exact(a.cols))
            .zip(self.incoming.chunks_exact(a.cols));
        for (k, ((o, y), g)) in rows.enumerate() {
            let rule = a.row(self.start / a.cols + k);
            if rule.padding {
                o.fill(0.0);
                continue;
            }
            let dot = row_dot(g, y);
            let columns = o
                .iter_mut()
                .zip(y)
                .zip(g)
                .zip(rule.windowed)
                .zip(rule.anywhere);
            for (c, ((((o, &y), &g), &windowed), &anywhere)) in columns.enumerate() {
                *o = if rule.allows(c, windowed, anywhere) {
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
    let task = rows_per_task(allowed.cols) * allowed.cols;
    let out = filled(y.len(), task, |t, out| {
        let range = t * task..t * task + out.len();
        simd::vectorized(Gradient {
            allowed,
            start: t * task,
            probs: &y[range.clone()],
            incoming: &g[range],
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

fn tracked<B: Backend, const D: usize>(scores: Tensor<B, D>, allowed: Allowed) -> Tensor<B, D> {
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
    tensor::<B, D, _>(y)
}

#[cfg(test)]
mod tests;
