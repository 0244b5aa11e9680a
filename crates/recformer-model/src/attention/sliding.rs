//! Banded (chunked sliding-window) local attention: O(L·w) instead of O(L²).
//!
//! Queries are cut into blocks of `w` (the one-sided window); block `k` covers queries
//! `[k·w, (k+1)·w)` and needs keys `[k·w - w, (k+1)·w + w)`, i.e. a window of `3w` keys: the
//! previous, the same and the next block of the key tensor zero-padded by `w` on both sides
//! (`padded_blocks`, `window_part`), each multiplied as its own part. Inside a block, query `r`
//! may see window key `s` iff `r <= s <= r + 2w` (that is `|i - j| <= w`). The global token (index 0
//! only; the caller checks this) is one extra score column computed with the *local* key and value of
//! token 0, exactly like HF `_concat_with_global_key_attn_probs`.
//!
//! Tested equal to [`super::reference::local_attention_dense`].

use crate::activation::softmax;
use crate::dropout::dropout as apply_dropout;
use burn::nn::Dropout;
use burn::tensor::{backend::Backend, Bool, Int, Tensor};

use super::{mask_value_for, AttentionMasks};
use crate::matmul::matmul;
use crate::precision::cast_to;
use crate::reshape::reshape;

/// `allowed[r, s] = r <= s <= r + 2w` for a block of `w` queries against `3w` window keys.
fn block_band<B: Backend>(w: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    let win = 3 * w;
    let r = Tensor::<B, 1, Int>::arange(0..w as i64, device)
        .reshape([w, 1])
        .expand([w, win]);
    let s = Tensor::<B, 1, Int>::arange(0..win as i64, device)
        .reshape([1, win])
        .expand([w, win]);
    let diff = s - r;
    diff.clone()
        .greater_equal_elem(0)
        .bool_and(diff.lower_equal_elem(2 * w as i64))
}

/// `x` zero-padded by one block of `w` rows on both sides and cut into blocks:
/// `[b, h, l, d] -> [b, h, l/w + 2, w, d]`. Block `k + 1` holds rows `[k·w, (k+1)·w)` of `x`.
///
/// # Shapes
/// - x: `[batch, heads, seq_len, head_dim]`, `seq_len % w == 0`
/// - output: `[batch, heads, seq_len / w + 2, w, head_dim]`
pub(crate) fn padded_blocks<B: Backend>(x: Tensor<B, 4>, w: usize) -> Tensor<B, 5> {
    let [b, h, l, d] = x.dims();
    let zeros = cast_to(Tensor::<B, 4>::zeros([b, h, w, d], &x.device()), x.dtype());
    reshape(
        Tensor::cat(vec![zeros.clone(), x, zeros], 2),
        [b, h, l / w + 2, w, d],
    )
}

/// Part `s` (0: previous, 1: same, 2: next block) of every query block's `3w`-row window: a view
/// of [`padded_blocks`], `[b, h, nb + 2, w, d] -> [b, h, nb, w, d]`.
///
/// The band is computed part by part against these views rather than against windows
/// materialised with `Tensor::unfold` or a concatenation: burn-autodiff 0.21 differentiates
/// `unfold` with a loop over the windows (a slice, a permuted copy and a `slice_assign` of the
/// whole gradient per window; a quarter of the single-threaded time of a Flex training step), and
/// materialised windows are three copies of the keys and values that autodiff keeps for the
/// backward (measured +125 MiB peak on mini 8 × 512, docs/performance.md).
pub(crate) fn window_part<B: Backend>(blocks: &Tensor<B, 5>, s: usize) -> Tensor<B, 5> {
    let [b, h, nb2, w, d] = blocks.dims();
    blocks
        .clone()
        .slice([0..b, 0..h, s..s + nb2 - 2, 0..w, 0..d])
}

/// How the band's two products (scores against keys, probabilities against values) are computed:
/// the same values up to rounding (summation order), chosen per backend by speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandProduct {
    /// Against `3w`-row windows materialised by concatenating the three `window_part`s: one
    /// product per side. Autodiff keeps the windows for the backward (three copies of the keys
    /// and of the values).
    Windows,
    /// Part by part against views of the padded blocks: three products per side, added (the
    /// scores concatenated); nothing materialised.
    Parts,
    /// One op per side that writes every part's product in place, forward and backward, on the
    /// keys and values where they lie (`ndarray_ops::band`: NdArray only); [`Parts`](Self::Parts)
    /// on every other backend.
    Fused,
}

impl BandProduct {
    /// The one to use on backend `B`: [`Fused`](Self::Fused), which is
    /// [`Parts`](Self::Parts) outside NdArray. Flex: parts give a 12% faster training step and
    /// 100 MiB less peak memory than windows; NdArray: the fused op removes the concatenations,
    /// copies and zero-filled slice gradients of parts (docs/performance.md).
    pub fn for_backend<B: Backend>() -> Self {
        BandProduct::Fused
    }
}

/// Whether the banded path can run: the sequence length must be a multiple of `w`.
pub fn supports(seq_len: usize, one_sided_window: usize) -> bool {
    one_sided_window > 0 && seq_len.is_multiple_of(one_sided_window)
}

/// Local attention with a band of `one_sided_window` on each side plus, when any token is global
/// (`masks.any_global`; the caller checks that only token 0 can be), the global column of token 0
/// (for the rows whose token 0 is global).
///
/// # Shapes
/// - query (scaled), key, value: `[batch, heads, seq_len, head_dim]`, `seq_len % w == 0`
/// - output: `[batch, heads, seq_len, head_dim]`
///
/// # Panics
/// If `seq_len` is not a multiple of `one_sided_window`.
pub fn local_attention_sliding<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    one_sided_window: usize,
    dropout: &Dropout,
    product: BandProduct,
) -> Tensor<B, 4> {
    let with_global_first = masks.any_global;
    let l = query.dims()[2];
    let w = one_sided_window;
    assert!(
        supports(l, w),
        "seq_len {l} is not a multiple of the one-sided window {w}"
    );
    // Inference on NdArray f32: the three steps below in one pass per block of queries.
    #[cfg(all(feature = "ndarray", target_arch = "x86_64"))]
    let (query, key, value) = match product {
        BandProduct::Fused => {
            match crate::ndarray_ops::band::attention(query, key, value, masks, w) {
                Ok(context) => return context,
                Err(operands) => operands,
            }
        }
        _ => (query, key, value),
    };
    let band_scores = band_scores(query, key, w, with_global_first, product);
    #[cfg(feature = "ndarray")]
    let attn_probs =
        match crate::ndarray_ops::masked_softmax::band_masked_softmax(band_scores, masks, w) {
            Ok(probs) => probs,
            Err(band_scores) => band_probs(band_scores, masks, w),
        };
    #[cfg(not(feature = "ndarray"))]
    let attn_probs = band_probs(band_scores, masks, w);
    let attn_probs = apply_dropout(dropout, attn_probs);

    band_context(attn_probs, value, w, with_global_first, product)
}

/// The band's probabilities: scores outside the window, at padding keys and at global keys
/// (whose column is the extra one) filled with the mask value, the softmax over each row, then
/// the rows of padding queries zeroed (HF `_sliding_chunks_query_key_matmul`'s callers). Built
/// from Burn's ops; on NdArray f32 `ndarray_ops::masked_softmax::band_masked_softmax` computes
/// the same bits in one op, and this chain is its oracle.
///
/// # Shapes
/// - band_scores: `[batch, heads, seq_len / w, w, 3w]`, plus token 0's global column when
///   `masks.any_global`
/// - output: the same
pub fn band_probs<B: Backend>(
    band_scores: Tensor<B, 5>,
    masks: &AttentionMasks<B>,
    w: usize,
) -> Tensor<B, 5> {
    let [b, h, nb, _, cols] = band_scores.dims();
    let win = 3 * w;
    let device = band_scores.device();
    let masked = masks.is_index_masked.clone();
    let global = masks.is_index_global_attn.clone();
    // Keys usable in the band: not padding, not global, inside [0, l).
    let key_ok = masked
        .clone()
        .bool_not()
        .bool_and(global.clone().bool_not())
        .float();
    let pad = Tensor::<B, 2>::zeros([b, w], &device);
    let key_ok_windows: Tensor<B, 3> =
        Tensor::cat(vec![pad.clone(), key_ok, pad], 1).unfold(1, win, w);
    let allowed = block_band::<B>(w, &device)
        .reshape([1, 1, 1, w, win])
        .expand([b, 1, nb, w, win])
        .bool_and(
            key_ok_windows
                .greater_elem(0.5)
                .reshape([b, 1, nb, 1, win])
                .expand([b, 1, nb, w, win]),
        );
    let allowed = if cols > win {
        // Token 0's column: usable where token 0 is global.
        let global_first = global.slice([0..b, 0..1]).reshape([b, 1, 1, 1, 1]);
        Tensor::cat(vec![allowed, global_first.expand([b, 1, nb, w, 1])], 4)
    } else {
        allowed
    };
    let mask_value = mask_value_for(band_scores.dtype());
    let attn_scores =
        band_scores.mask_fill(allowed.expand([b, h, nb, w, cols]).bool_not(), mask_value);
    softmax(attn_scores, 4).mask_fill(
        masked.reshape([b, 1, nb, w, 1]).expand([b, h, nb, w, cols]),
        0.0,
    )
}

/// The band's scores (see [`local_attention_sliding`]): for query block `k`, columns
/// `[s·w, (s+1)·w)` against key block `k + s - 1` (0 outside the sequence) and, when `global`,
/// column `3w` against key row 0; not masked.
///
/// # Shapes
/// - query, key: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, seq_len / w, w, 3w (+1 when global)]`
pub(crate) fn band_scores<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    w: usize,
    global: bool,
    product: BandProduct,
) -> Tensor<B, 5> {
    #[cfg(feature = "ndarray")]
    let (query, key) = match product {
        BandProduct::Fused => match crate::ndarray_ops::band::scores(query, key, w, global) {
            Ok(scores) => return scores,
            Err(operands) => operands,
        },
        _ => (query, key),
    };
    let [b, h, l, d] = query.dims();
    let nb = l / w;
    let key_blocks = padded_blocks(key.clone(), w);
    let query_blocks = reshape(query.clone(), [b, h, nb, w, d]);
    let band = match product {
        BandProduct::Windows => {
            let parts = (0..3).map(|s| window_part(&key_blocks, s)).collect();
            matmul(query_blocks, Tensor::cat(parts, 3).swap_dims(3, 4))
        }
        BandProduct::Parts | BandProduct::Fused => Tensor::cat(
            (0..3)
                .map(|s| {
                    matmul(
                        query_blocks.clone(),
                        window_part(&key_blocks, s).swap_dims(3, 4),
                    )
                })
                .collect(),
            4,
        ),
    };
    if !global {
        return band;
    }
    let key_first = key.slice([0..b, 0..h, 0..1, 0..d]); // [b, h, 1, d]
    let global_scores = reshape(matmul(query, key_first.swap_dims(2, 3)), [b, h, nb, w, 1]);
    Tensor::cat(vec![band, global_scores], 4)
}

/// The band's context (see [`local_attention_sliding`]): for query block `k`, the probabilities
/// of part `s` times value block `k + s - 1` (none outside the sequence), summed, plus, when
/// `global`, column `3w` times value row 0.
///
/// # Shapes
/// - probs: `[batch, heads, seq_len / w, w, 3w (+1 when global)]`
/// - value: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, seq_len, head_dim]`
fn band_context<B: Backend>(
    probs: Tensor<B, 5>,
    value: Tensor<B, 4>,
    w: usize,
    global: bool,
    product: BandProduct,
) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let (probs, value) = match product {
        BandProduct::Fused => match crate::ndarray_ops::band::context(probs, value, w, global) {
            Ok(context) => return context,
            Err(operands) => operands,
        },
        _ => (probs, value),
    };
    let [b, h, l, d] = value.dims();
    let (nb, win) = (l / w, 3 * w);
    let value_blocks = padded_blocks(value.clone(), w);
    let probs_part =
        |cols: core::ops::Range<usize>| probs.clone().slice([0..b, 0..h, 0..nb, 0..w, cols]);
    let mut output = match product {
        BandProduct::Windows => {
            let parts = (0..3).map(|s| window_part(&value_blocks, s)).collect();
            matmul(probs_part(0..win), Tensor::cat(parts, 3))
        }
        BandProduct::Parts | BandProduct::Fused => (0..3)
            .map(|s| {
                matmul(
                    probs_part(s * w..(s + 1) * w),
                    window_part(&value_blocks, s),
                )
            })
            .reduce(|sum, part| sum + part)
            .expect("three parts"),
    };
    if global {
        let value_first = value
            .slice([0..b, 0..h, 0..1, 0..d])
            .reshape([b, h, 1, 1, d])
            .expand([b, h, nb, 1, d]);
        output = output + matmul(probs_part(win..win + 1), value_first);
    }
    reshape(output, [b, h, l, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::{Distribution, Tensor};

    /// [`window_part`] `s` of [`padded_blocks`] holds exactly part `s` of what `unfold` over
    /// the zero-padded tensor gives.
    #[test]
    fn window_parts_equal_unfold_over_the_padded_keys() {
        let device = Default::default();
        for (l, w) in [(8, 2), (12, 4), (4, 4)] {
            let [b, h, d] = [2, 3, 5];
            let x = Tensor::<Cpu, 4>::random([b, h, l, d], Distribution::Default, &device);
            let zeros = Tensor::<Cpu, 4>::zeros([b, h, w, d], &device);
            let unfolded: Tensor<Cpu, 5> = Tensor::cat(vec![zeros.clone(), x.clone(), zeros], 2)
                .unfold::<5, _>(2, 3 * w, w)
                .swap_dims(3, 4);
            let blocks = padded_blocks(x, w);
            for s in 0..3 {
                let ours = window_part(&blocks, s);
                let expected =
                    unfolded
                        .clone()
                        .slice([0..b, 0..h, 0..l / w, s * w..(s + 1) * w, 0..d]);
                assert_eq!(ours.dims(), [b, h, l / w, w, d]);
                assert_eq!(
                    ours.into_data().to_vec::<f32>().unwrap(),
                    expected.into_data().to_vec::<f32>().unwrap(),
                    "l {l} w {w} part {s}"
                );
            }
        }
    }
}
