//! Dense masked Longformer attention: the O(L²) oracle.
//!
//! Exactly the semantics of HF `LongformerSelfAttention` (transformers 4.28), written as a dense
//! mask (spec §1.5). Kept as the test oracle for [`super::sliding`] and used for short sequences
//! and for global patterns other than "first token only".

use crate::activation::softmax;
use crate::dropout::dropout as apply_dropout;
use burn::nn::Dropout;
use burn::tensor::{backend::Backend, Bool, Int, Tensor};

use super::{mask_value_for, AttentionMasks};
use crate::matmul::matmul;

/// `band[i, j] = |i - j| <= w` for an `[l, l]` grid.
pub(crate) fn band_mask<B: Backend>(l: usize, w: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    let idx = Tensor::<B, 1, Int>::arange(0..l as i64, device);
    let rows = idx.clone().reshape([l, 1]).expand([l, l]);
    let cols = idx.reshape([1, l]).expand([l, l]);
    (rows - cols).abs().lower_equal_elem(w as i64)
}

/// Local (windowed) attention for every query row, dense formulation.
///
/// Row `i` may attend to `j` iff (`|i-j| <= w` and `j` is neither padding nor global) or `j` is
/// global. Softmax runs over the allowed set; padding query rows get zero probabilities (so a zero
/// output), as HF does.
///
/// # Shapes
/// - query (already scaled by `1/sqrt(head_dim)`), key, value: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, seq_len, head_dim]`
pub fn local_attention_dense<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    one_sided_window: usize,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    let scores = matmul(query, key.swap_dims(2, 3));
    let attn_probs = masked_probs(scores, masks, one_sided_window);
    matmul(apply_dropout(dropout, attn_probs), value)
}

/// The probabilities of [`local_attention_dense`] from its scores: disallowed keys filled with
/// the mask value, softmax over each row, padding rows zero.
///
/// # Shapes
/// - scores: `[batch, heads, seq_len, seq_len]`; output as scores
pub fn masked_probs<B: Backend>(
    scores: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    one_sided_window: usize,
) -> Tensor<B, 4> {
    let [b, h, l, _] = scores.dims();
    let device = scores.device();
    let masked = masks.is_index_masked.clone();
    let global = masks.is_index_global_attn.clone();

    let band = band_mask::<B>(l, one_sided_window, &device)
        .reshape([1, 1, l, l])
        .expand([b, 1, l, l]);
    let key_local_ok = masked
        .clone()
        .bool_not()
        .bool_and(global.clone().bool_not())
        .reshape([b, 1, 1, l])
        .expand([b, 1, l, l]);
    let key_global = global.reshape([b, 1, 1, l]).expand([b, 1, l, l]);
    let allowed = band
        .bool_and(key_local_ok)
        .bool_or(key_global)
        .expand([b, h, l, l]);

    let mask_value = mask_value_for(scores.dtype());
    let attn_scores = scores.mask_fill(allowed.bool_not(), mask_value);
    softmax(attn_scores, 3).mask_fill(masked.reshape([b, 1, l, 1]).expand([b, h, l, l]), 0.0)
}

/// Global attention of the given query rows over every non-padding token
/// (HF `_compute_global_attn_output_from_hidden`), with the `*_global` projections.
///
/// # Shapes
/// - global_query (scaled): `[batch, heads, n_rows, head_dim]`
/// - global_key, global_value: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, n_rows, head_dim]`
pub fn global_attention<B: Backend>(
    global_query: Tensor<B, 4>,
    global_key: Tensor<B, 4>,
    global_value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    let [b, h, n, _d] = global_query.dims();
    let l = global_key.dims()[2];
    let key_masked = masks
        .is_index_masked
        .clone()
        .reshape([b, 1, 1, l])
        .expand([b, h, n, l]);
    let scores = matmul(global_query, global_key.swap_dims(2, 3));
    let mask_value = mask_value_for(scores.dtype());
    let scores = scores.mask_fill(key_masked, mask_value);
    matmul(apply_dropout(dropout, softmax(scores, 3)), global_value)
}
