//! The dropout every encoder layer applies.

use burn::nn::Dropout;
use burn::tensor::{backend::Backend, Tensor};

/// `module.forward(x)` (identity without autodiff or at probability 0): on `Autodiff<NdArray>`
/// f32 one fused pass whose mask comes from a counter-based hash keyed by the backend's
/// generator and is recomputed in the backward rather than kept (`ndarray_ops::dropout`; other
/// masks than Burn's sampler draws, the same formulas); elsewhere Burn's.
///
/// # Shapes
/// - any; output as input
pub(crate) fn dropout<B: Backend, const D: usize>(
    module: &Dropout,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || module.prob == 0.0 {
        return x;
    }
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::dropout::dropout(x, module.prob) {
        Ok(y) => return y,
        Err(x) => x,
    };
    module.forward(x)
}
