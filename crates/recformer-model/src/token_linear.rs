//! Linear layers applied to every token, as one 2-D matmul.
//!
//! Burn's `Linear::forward` on a rank-3 input runs a *batched* matmul with the weight broadcast to
//! every sequence. The CPU backends then pack the weight again for every sequence (NdArray:
//! `matrixmultiply::packing` was 10% of an item-encoding profile, docs/performance.md), and the
//! backward builds one `[d_input, d_output]` weight gradient per sequence before summing them.
//! Flattening the tokens first gives one `[batch·seq_len, d_input] × [d_input, d_output]` GEMM
//! forward and one per gradient. The products are the same; only the order in which the weight
//! gradient's terms are summed changes.
//!
//! On NdArray the 2-D linear layer itself goes through `ndarray_ops`: the same GEMM called on
//! strided views, so that the backward's transposed operands are not copied first.

use crate::precision::cast_to;
use crate::reshape::reshape;
use burn::nn::Linear;
use burn::tensor::{backend::Backend, Tensor};

/// `layer` on every token.
///
/// # Shapes
/// - x: `[batch, seq_len, d_input]`
/// - output: `[batch, seq_len, d_output]`
pub(crate) fn per_token<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq_len, d_input] = x.dims();
    let y = rows(layer, reshape(x, [batch * seq_len, d_input]));
    let d_output = y.dims()[1];
    reshape(y, [batch, seq_len, d_output])
}

/// `down(gelu(up(x)))` on every token (the FFN without its residual): one op on NdArray f32
/// in inference (`ndarray_ops::feed_forward`, the same bits), else [`per_token_gelu`] then
/// [`per_token`].
///
/// # Shapes
/// - x: `[batch, seq_len, d_model]`
/// - output: `[batch, seq_len, d_out]`
pub(crate) fn per_token_feed_forward<B: Backend>(
    up: &Linear<B>,
    down: &Linear<B>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::feed_forward::feed_forward(up, down, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    per_token(down, per_token_gelu(up, x))
}

/// `gelu(layer(x))` on every token (the FFN's up-projection and activation): one op on NdArray
/// f32 in inference (`ndarray_ops::linear_gelu`, the same bits), else [`per_token`] then
/// [`gelu`](crate::activation::gelu).
///
/// # Shapes
/// - x: `[batch, seq_len, d_input]`
/// - output: `[batch, seq_len, d_output]`
pub(crate) fn per_token_gelu<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq_len, d_input] = x.dims();
    let x = reshape(x, [batch * seq_len, d_input]);
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::linear_gelu::linear_gelu(layer, x) {
        Ok(y) => {
            let d_output = y.dims()[1];
            return reshape(y, [batch, seq_len, d_output]);
        }
        Err(x) => x,
    };
    let y = crate::activation::gelu(rows(layer, x));
    let d_output = y.dims()[1];
    reshape(y, [batch, seq_len, d_output])
}

/// `layer` on every row: `x · W + b`, the same function as `Linear::forward`.
///
/// # Shapes
/// - x: `[rows, d_input]`
/// - output: `[rows, d_output]`
pub(crate) fn rows<B: Backend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let dtype = x.dtype();
    if layer.weight.val().dtype() != dtype {
        // Mixed precision (`crate::precision`): the f32 parameters cast to the activations' type.
        let y = x.matmul(cast_to(layer.weight.val(), dtype));
        return match &layer.bias {
            Some(bias) => y + cast_to(bias.val(), dtype).unsqueeze(),
            None => y,
        };
    }
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::linear::linear(layer, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    layer.forward(x)
}
