//! The layer normalisation every encoder block and the MLM head apply.

use burn::nn::LayerNorm;
use burn::tensor::{backend::Backend, Tensor};

use crate::precision::in_f32;

/// `module.forward(x)`, where `epsilon` is the one `module` was built with (burn-nn 0.21 keeps
/// it private, so the modules store it beside it): on NdArray f32, with and without autodiff, one
/// fused pass per row forward and backward (`ndarray_ops::layer_norm`); elsewhere Burn's. Half
/// precision activations are normalised in f32 and handed back in their type (`crate::precision`).
///
/// # Shapes
/// - x: `[..., d]`; output as x
pub(crate) fn layer_norm<B: Backend, const D: usize>(
    module: &LayerNorm<B>,
    epsilon: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    in_f32(x, |x| layer_norm_f32(module, epsilon, x))
}

/// `layer_norm(module, epsilon, x + residual)`, the residual sum and the normalisation as one
/// pass per row on NdArray f32 in inference (`ndarray_ops::add_layer_norm`, the same bits).
///
/// # Shapes
/// - x, residual: `[..., d]` (the same); output as x
pub(crate) fn add_layer_norm<B: Backend, const D: usize>(
    module: &LayerNorm<B>,
    epsilon: f64,
    x: Tensor<B, D>,
    residual: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    let (x, residual) = match &module.beta {
        Some(beta) => match crate::ndarray_ops::add_layer_norm::add_layer_norm(
            x,
            residual,
            &module.gamma.val(),
            &beta.val(),
            epsilon,
        ) {
            Ok(y) => return y,
            Err(unfused) => unfused,
        },
        None => (x, residual),
    };
    layer_norm(module, epsilon, x + residual)
}

fn layer_norm_f32<B: Backend, const D: usize>(
    module: &LayerNorm<B>,
    epsilon: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    let x = match &module.beta {
        Some(beta) => match crate::ndarray_ops::layer_norm::layer_norm(
            x,
            module.gamma.val(),
            beta.val(),
            epsilon,
        ) {
            Ok(y) => return y,
            Err((x, _, _)) => x,
        },
        None => x,
    };
    #[cfg(not(feature = "ndarray"))]
    let _ = epsilon;
    module.forward(x)
}
