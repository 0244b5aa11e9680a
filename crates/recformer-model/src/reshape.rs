//! The reshape the encoder's activations go through.

use burn::tensor::{backend::Backend, Tensor};

/// `x.reshape(shape)`: on NdArray without copying a standard-layout tensor (`ndarray_ops`;
/// burn-ndarray 0.21 copies every reshape), elsewhere Burn's.
///
/// # Shapes
/// - x: any shape with as many elements as `shape`
/// - output: `shape`
pub(crate) fn reshape<B: Backend, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Tensor<B, D2> {
    #[cfg(feature = "ndarray")]
    let x = match crate::ndarray_ops::reshape::reshape(x, shape) {
        Ok(y) => return y,
        Err(x) => x,
    };
    x.reshape(shape)
}
