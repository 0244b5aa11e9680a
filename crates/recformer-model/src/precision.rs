//! Mixed precision: the matrix products in bf16 or f16, the reductions and the parameters in f32.
//!
//! The precision travels with the activations' float type. [`crate::RecformerModel`] casts the
//! embedding output to [`Precision::dtype`]; every product casts its f32 parameters to the
//! activations' type (autodiff's cast hands their gradients back in f32); LayerNorm and softmax
//! compute in f32 and return the activations' type; the attention masks use the most negative
//! finite value of the scores' type; the model's outputs (hidden states, sequence vectors, MLM
//! logits) are f32. Parameters, the optimizer's state (master weights) and the losses stay f32,
//! as under PyTorch's `torch.autocast(dtype=torch.bfloat16)`.
//!
//! With [`Precision::F32`] (the default) no cast is inserted anywhere: the same operations as
//! without this module. Half precision needs a backend with half-precision tensors: bf16 and
//! f16 on Flex and CUDA, f16 on wgpu (`backend::DeviceKind::supports`); NdArray computes in f32
//! and f64 only.

use burn::tensor::{backend::Backend, DType, Tensor};
use serde::{Deserialize, Serialize};

/// The float type of the matrix products and of the activations between them (in files and on
/// the command line: `f32`, `bf16`, `f16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// No cast anywhere: everything in the parameters' own type, f32 (the official code's
    /// precision). Default.
    #[default]
    F32,
    /// bfloat16 products and activations: f32's range, 8 bits of mantissa.
    Bf16,
    /// IEEE half products and activations: 11 bits of mantissa, range up to 65,504.
    F16,
}

impl Precision {
    /// The activations' float type.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    /// The precision of a name: `f32`, `bf16` or `f16`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            "f16" => Some(Precision::F16),
            _ => None,
        }
    }

    /// The name [`from_name`](Self::from_name) reads.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}

/// `x` in float type `dtype`; `x` itself when it already is (no cast op recorded).
///
/// # Shapes
/// - any; output as input
pub(crate) fn cast_to<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        x
    } else {
        x.cast(dtype)
    }
}

/// `x` in f32 when it is in half precision, else unchanged (f32, or f64 in the f64 tests): the
/// model's outputs.
///
/// # Shapes
/// - any; output as input
pub(crate) fn full<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match x.dtype() {
        DType::F16 | DType::BF16 => x.cast(DType::F32),
        _ => x,
    }
}

/// `f` computed in f32 on `x`, the result handed back in `x`'s float type (LayerNorm, softmax).
///
/// # Shapes
/// - any; output as `f`'s
pub(crate) fn in_f32<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    if dtype == DType::F32 || dtype == DType::F64 {
        f(x)
    } else {
        cast_to(f(x.cast(DType::F32)), dtype)
    }
}
