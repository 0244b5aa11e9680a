//! The exact (erf) GELU of PyTorch's `nn.GELU()` / HF `"gelu"`, with its exact gradient.
//!
//! Burn 0.21's fused `gelu` differentiates with the *tanh approximation's* derivative on every
//! backend but Flex (`ActivationOps::gelu_backward`'s default, used by NdArray, CUDA and wgpu):
//! up to 8.7e-4 off the exact `Φ(x) + x·φ(x)` (at x ≈ -2.02; mean 2.4e-4 over [-6, 6]), a
//! systematic error in every encoder layer's gradient that PyTorch does not have. So when the
//! backend records gradients, GELU is written with primitive ops whose derivatives are exact
//! (`erf`'s is `2/√π·e^{-x²}`): with `t = x/√2`, `gelu(x) = t·(1 + erf(t))/√2`. Autodiff then
//! keeps `t` and `1 + erf(t)` for the backward, one activation-sized tensor more than the fused
//! op (which keeps `x`), and the forward values may differ from the fused op's in the last bit.
//! Without autodiff (inference, item encoding), the fused op runs.
//!
//! On NdArray f32 (with or without autodiff) both are replaced by one fused kernel
//! (`ndarray_ops::gelu`): PyTorch's formula (`x · (1/√2)` where Burn divides by √2) with a
//! vectorised f32 `erf` (within 1 ulp; the values are the exact GELU rounded to f32 as often as
//! Burn's are, within `|x|·2⁻²³` plus one rounding of it), the exact derivative, one kept tensor.

use crate::precision::in_f32;
use burn::tensor::{activation, backend::Backend, Tensor};

/// `x · (1 + erf(x / √2)) / 2`, differentiated exactly.
///
/// # Shapes
/// - any; output as input
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::gelu::gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    if B::ad_enabled(&x.device()) {
        let t = x.mul_scalar(core::f32::consts::FRAC_1_SQRT_2);
        let cdf2 = t.clone().erf().add_scalar(1.0);
        t.mul(cdf2).mul_scalar(core::f32::consts::FRAC_1_SQRT_2)
    } else {
        activation::gelu(x)
    }
}

/// Softmax over dimension `dim`: Burn's, computed on NdArray f32 along the last dimension by
/// one fused kernel (`ndarray_ops::softmax`: one pass per row, a vectorised `exp` within 2 ulp
/// of libm's, masked scores exactly 0, a one-pass backward that keeps only the output).
///
/// # Shapes
/// - any; output as input
pub fn softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    in_f32(x, |x| softmax_f32(x, dim))
}

fn softmax_f32<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::softmax::softmax(x, dim) {
        Ok(y) => return y,
        Err(x) => x,
    };
    activation::softmax(x, dim)
}
