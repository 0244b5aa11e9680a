//! Fused kernels for the training loop: on NdArray f32 each does in one parallel pass what Burn
//! does op by op, with the same bits, and hands its inputs back on every other backend (the
//! caller then runs Burn's own ops).

use burn::optim::AdaptiveMomentumState;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// AdamW's constants, as `burn::optim::AdamWConfig` holds them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWHyper {
    /// First moment's decay β₁.
    pub beta_1: f32,
    /// Second moment's decay β₂.
    pub beta_2: f32,
    /// Added to `√v̂` in the denominator.
    pub epsilon: f32,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f32,
}

/// The inputs of [`adamw_update`] (parameter, gradient, state), handed back when it does not
/// apply.
pub type AdamWInputs<B, const D: usize> = (
    Tensor<B, D>,
    Tensor<B, D>,
    Option<AdaptiveMomentumState<B, D>>,
);

/// One AdamW step of one parameter, bit for bit Burn 0.21's `AdamW` (no AMSGrad, no cautious
/// weight decay): the updated parameter and moments. `Err` with the inputs on every backend but
/// NdArray f32 (and for other float types, mismatched shapes or an AMSGrad state).
///
/// # Shapes
/// - `tensor`, `grad` and the moments: one shape; outputs as `tensor`
pub fn adamw_update<B: Backend, const D: usize>(
    hyper: &AdamWHyper,
    lr: f64,
    tensor: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<AdaptiveMomentumState<B, D>>,
) -> Result<(Tensor<B, D>, AdaptiveMomentumState<B, D>), AdamWInputs<B, D>> {
    #[cfg(feature = "ndarray")]
    {
        crate::ndarray_ops::adamw::adamw_update(hyper, lr, tensor, grad, state)
    }
    #[cfg(not(feature = "ndarray"))]
    {
        let _ = (hyper, lr);
        Err((tensor, grad, state))
    }
}
