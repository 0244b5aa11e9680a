//! The matrix product every attention score, attention output and similarity goes through.

use burn::tensor::{backend::Backend, Tensor};

/// `a · b` over the last two dimensions: `Tensor::matmul`, computed on NdArray by strided GEMM
/// without copying the operands (`ndarray_ops`; the same values, bit for bit).
///
/// # Shapes
/// - a: `[..., m, k]`, b: `[..., k, n]`
/// - output: `[..., m, n]`
pub(crate) fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    let (a, b) = match crate::ndarray_ops::matmul::matmul(a, b) {
        Ok(product) => return product,
        Err(operands) => operands,
    };
    a.matmul(b)
}
