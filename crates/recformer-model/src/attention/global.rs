//! The global attention of the first token, computed through the `*_global` weights instead of
//! the projected keys and values.
//!
//! HF (`_compute_global_attn_output_from_hidden`) projects every token with `key_global` and
//! `value_global`: two `[b·l, H] × [H, H]` products per layer, ~14% of a layer's FLOPs, only for
//! the global rows to read them. With one global row per sequence (RecFormer's `<s>`), the
//! products move to the query's side. Per head, with `q` the scaled global query of token 0:
//!
//! ```text
//! score_j = q · (x_j Wk + bk)         = x_j · (Wk q) + q · bk
//! out     = Σ_j p_j (x_j Wv + bv)     = (Σ_j p_j x_j) Wv + (Σ_j p_j) bv
//! ```
//!
//! (`p` after dropout, so `Σ_j p_j` is not always 1). The cost falls from `O(b·l·H²)` to
//! `O(b·h·l·H)`. The function is the same; the sums run in another order, so results agree with
//! [`super::reference::global_attention`] (the oracle, used when other tokens are global too) to
//! rounding, not bit for bit.

use burn::nn::{Dropout, Linear};
use burn::tensor::{backend::Backend, Tensor};

use super::{mask_value_for, AttentionMasks};
use crate::activation::softmax;
use crate::dropout::dropout as apply_dropout;
use crate::matmul::matmul;
use crate::precision::cast_to;
use crate::reshape::reshape;

/// Global attention of token 0 over every non-padding token, with the `key_global` /
/// `value_global` layers applied through their weights (module docs).
///
/// # Shapes
/// - first_query (`query_global` of token 0, scaled by `1/sqrt(head_dim)`): `[batch, heads, 1, head_dim]`
/// - hidden_states (the layer's input): `[batch, seq_len, hidden]`
/// - output: `[batch, heads, 1, head_dim]`
pub fn first_token_global_attention<B: Backend>(
    first_query: Tensor<B, 4>,
    hidden_states: Tensor<B, 3>,
    key_global: &Linear<B>,
    value_global: &Linear<B>,
    masks: &AttentionMasks<B>,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    let [b, h, _, d] = first_query.dims();
    let [_, l, hidden] = hidden_states.dims();
    let dtype = hidden_states.dtype();
    let query = reshape(first_query, [b, h, d]);
    // Mixed precision (`crate::precision`): the f32 parameters in the activations' type.
    let param = |p: &burn::module::Param<Tensor<B, 2>>| cast_to(p.val(), dtype);
    let bias = |p: &burn::module::Param<Tensor<B, 1>>| cast_to(p.val(), dtype).reshape([1, h, d]);

    // Wk q per head: [h, b, d] x [h, d, hidden] -> [h, b, hidden].
    let key_weight = param(&key_global.weight)
        .reshape([hidden, h, d])
        .permute([1, 2, 0]);
    let folded_query = matmul(query.clone().swap_dims(0, 1), key_weight).swap_dims(0, 1);
    // [b, h, hidden] x [b, hidden, l] -> [b, h, l]
    let mut scores = matmul(folded_query, hidden_states.clone().swap_dims(1, 2));
    if let Some(key_bias) = &key_global.bias {
        scores = scores + (query * bias(key_bias)).sum_dim(2);
    }
    let mask_value = mask_value_for(scores.dtype());
    let key_masked = masks
        .is_index_masked
        .clone()
        .reshape([b, 1, l])
        .expand([b, h, l]);
    let probs = apply_dropout(
        dropout,
        softmax(scores.mask_fill(key_masked, mask_value), 2),
    );

    // Σ_j p_j x_j: [b, h, l] x [b, l, hidden] -> [b, h, hidden]; then through Wv per head.
    let mixed = matmul(probs.clone(), hidden_states);
    let value_weight = param(&value_global.weight)
        .reshape([hidden, h, d])
        .swap_dims(0, 1);
    let mut out = matmul(mixed.swap_dims(0, 1), value_weight).swap_dims(0, 1);
    if let Some(value_bias) = &value_global.bias {
        out = out + probs.sum_dim(2) * bias(value_bias);
    }
    reshape(out, [b, h, 1, d])
}
