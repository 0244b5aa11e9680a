//! The dense local attention as the model runs it (sequences too short for the band to pay
//! off): [`reference::local_attention_dense`]'s products, its masking and softmax fused into one
//! op on NdArray f32 (`ndarray_ops::masked_softmax`, the same bits, forward and backward), and
//! for inference on NdArray f32 with AVX-512 all three in one pass per batch-and-head pair
//! (`ndarray_ops::dense_attention`, the same bits); elsewhere the reference itself.

use burn::nn::Dropout;
use burn::tensor::{backend::Backend, Tensor};

use super::{reference, AttentionMasks};
use crate::dropout::dropout as apply_dropout;
use crate::matmul::matmul;

/// [`reference::local_attention_dense`], with the fused masking and softmax where the backend
/// has them.
///
/// # Shapes
/// - query (already scaled by `1/sqrt(head_dim)`), key, value: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, seq_len, head_dim]`
pub(crate) fn local_attention_dense<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    one_sided_window: usize,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    // Inference on NdArray f32: the three steps below in one pass per block of queries.
    #[cfg(all(feature = "ndarray", target_arch = "x86_64"))]
    let (query, key, value) = match crate::ndarray_ops::dense_attention::attention(
        query,
        key,
        value,
        masks,
        one_sided_window,
    ) {
        Ok(context) => return context,
        Err(operands) => operands,
    };
    let scores = matmul(query, key.swap_dims(2, 3));
    #[cfg(feature = "ndarray")]
    let probs =
        match crate::ndarray_ops::masked_softmax::masked_softmax(scores, masks, one_sided_window) {
            Ok(probs) => probs,
            Err(scores) => reference::masked_probs(scores, masks, one_sided_window),
        };
    #[cfg(not(feature = "ndarray"))]
    let probs = reference::masked_probs(scores, masks, one_sided_window);
    matmul(apply_dropout(dropout, probs), value)
}
