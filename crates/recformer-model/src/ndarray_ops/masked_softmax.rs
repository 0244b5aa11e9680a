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

/// Where a row's columns point: the dense `[l, l]` scores, or the sliding window's band.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// `[batch, heads, l, l]`: column `j` is key `j`.
    Dense,
    /// `[batch, heads, l / w, w, 3w (+1)]` (`attention::sliding`): in query block `k`, column
    /// `c < 3w` is key `k·w + c - w`; column `3w`, when present, is token 0's global column.
    Band,
}

/// Which keys each query row may attend to: the reference's rule, from `[batch, l]` masks.
#[derive(Debug, Clone)]
struct Allowed {
    layout: Layout,
    /// Tokens per sequence.
    l: usize,
    /// Columns per score row (`l` dense; `3w` or `3w + 1` band).
    cols: usize,
    /// Score rows per sequence (`heads · l` in both layouts).
    rows_per_batch: usize,
    /// One-sided window.
    w: usize,
    /// `[batch · l]`: padding tokens.
    masked: Vec<bool>,
    /// `[batch · l]`: global tokens.
    global: Vec<bool>,
}

impl Allowed {
    /// The padding and global flags of score row `r` (row-major over the scores' leading
    /// dimensions) and its query's token index (in both layouts `r mod l`).
    #[inline(always)]
    fn row(&self, r: usize) -> (usize, &[bool], &[bool]) {
        let start = r / self.rows_per_batch * self.l;
        let keys = start..start + self.l;
        (r % self.l, &self.masked[keys.clone()], &self.global[keys])
    }

    /// Query `i` may attend to column `c`.
    ///
    /// Dense (the reference's `(band ∧ ¬masked ∧ ¬global) ∨ global`): a global key, or a
    /// non-padding key within `w`. Band (`attention::sliding::band_probs`): the global column
    /// when token 0 is global; else a key inside the sequence, within `w` of the query, neither
    /// padding nor global (a global key's score is its column's).
    #[inline(always)]
    fn allows(&self, i: usize, c: usize, masked: &[bool], global: &[bool]) -> bool {
        match self.layout {
            Layout::Dense => global[c] || (i.abs_diff(c) <= self.w && !masked[c]),
            Layout::Band => {
                let w = self.w;
                if c == 3 * w {
                    return global[0];
                }
                // Column `c` of the block holding `i` is key `padded - w`.
                let (offset, padded) = (i % w, i - i % w + c);
                c >= offset
                    && c - offset <= 2 * w
                    && (w..self.l + w).contains(&padded)
                    && !masked[padded - w]
                    && !global[padded - w]
            }
        }
    }
}

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
    let flags = |t: &Tensor<B, 2, burn::tensor::Bool>| {
        t.clone()
            .into_data()
            .to_vec::<bool>()
            .expect("a boolean mask")
    };
    let allowed = Allowed {
        layout,
        l,
        cols: dims[D - 1],
        rows_per_batch: heads * l,
        w,
        masked: flags(&masks.is_index_masked),
        global: flags(&masks.is_index_global_attn),
    };
    Ok(match kind {
        Some(Kind::Tracked(_)) => tracked(scores, allowed),
        _ => tensor::<B, D, _>(forward(&primitive(scores), &allowed)),
    })
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
            let (i, masked, global) = a.row(start / a.cols + k);
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
            let (i, masked, global) = a.row(self.start / a.cols + k);
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
mod tests {
    //! Against the reference's masking and softmax: the same bits, forward and backward.

    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    use super::{band_masked_softmax, masked_softmax};
    use crate::attention::reference::masked_probs;
    use crate::attention::sliding::band_probs;
    use crate::attention::AttentionMasks;
    use crate::ndarray_ops::tests::{bits, Ad, Plain};

    /// Two sequences of 24 tokens (window 4): the first with 5 padding tokens and tokens 0 and
    /// 9 global, the second unpadded with token 0 global.
    fn masks<B: burn::tensor::backend::Backend>() -> AttentionMasks<B> {
        masks_with::<B>(&[0, 9, 24])
    }

    /// The same two sequences with the tokens at flat positions `global` (of `2 · 24`) global.
    fn masks_with<B: burn::tensor::backend::Backend>(global_at: &[usize]) -> AttentionMasks<B> {
        let device = Default::default();
        let l = 24;
        let mut attention = vec![1_i64; 2 * l];
        attention[l - 5..l].fill(0);
        let mut global = vec![0_i64; 2 * l];
        for &g in global_at {
            global[g] = 1;
        }
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

    /// Band scores `[2, 3, 24 / 4, 4, 12 (+1)]` for window 4.
    fn band_scores(global_column: bool) -> TensorData {
        let cols = 12 + usize::from(global_column);
        Tensor::<Plain, 5>::random(
            [2, 3, 6, 4, cols],
            Distribution::Normal(0.0, 2.0),
            &Default::default(),
        )
        .into_data()
    }

    /// Token 0 global in the first sequence only (the second's global column is masked), in
    /// both (the model's pattern), with a global key inside the band, and with none (no column).
    const BAND_GLOBALS: [&[usize]; 4] = [&[0], &[0, 24], &[0, 9, 24], &[]];

    #[test]
    fn band_probabilities_equal_the_chain_bit_for_bit() {
        for global in BAND_GLOBALS {
            let m = masks_with::<Plain>(global);
            let x = Tensor::<Plain, 5>::from_data(band_scores(m.any_global), &Default::default());
            let reference = band_probs(x.clone(), &m, 4);
            let fused = band_masked_softmax(x, &m, 4).unwrap_or_else(|_| panic!("fused"));
            let (fused, reference) = (bits(fused.into_data()), bits(reference.into_data()));
            assert!(reference.contains(&0), "some entries masked");
            assert_eq!(fused, reference, "global tokens at {global:?}");
        }
    }

    #[test]
    fn band_gradients_equal_the_chain_bit_for_bit() {
        let device = Default::default();
        for global in BAND_GLOBALS {
            let m = masks_with::<Ad>(global);
            let data = band_scores(m.any_global);
            let r = Tensor::<Ad, 5>::random(data.shape.clone(), Distribution::Default, &device);
            let mut results = Vec::new();
            for fused in [false, true] {
                let x = Tensor::<Ad, 5>::from_data(data.clone(), &device).require_grad();
                let y = if fused {
                    band_masked_softmax(x.clone(), &m, 4).unwrap_or_else(|_| panic!("fused"))
                } else {
                    band_probs(x.clone(), &m, 4)
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                results.push((
                    bits(y.into_data()),
                    bits(x.grad(&grads).expect("a gradient").into_data()),
                ));
            }
            assert_eq!(
                results[0].0, results[1].0,
                "probabilities, globals {global:?}"
            );
            assert_eq!(results[0].1, results[1].1, "gradients, globals {global:?}");
        }
    }

    #[test]
    fn band_scores_of_another_shape_are_handed_back() {
        // A global column without global tokens, and a block height other than the window.
        let m = masks_with::<Plain>(&[]);
        let device = Default::default();
        let extra = Tensor::<Plain, 5>::zeros([2, 3, 6, 4, 13], &device);
        assert!(band_masked_softmax(extra, &m, 4).is_err());
        let tall = Tensor::<Plain, 5>::zeros([2, 3, 3, 8, 12], &device);
        assert!(band_masked_softmax(tall, &m, 4).is_err());
    }
}
