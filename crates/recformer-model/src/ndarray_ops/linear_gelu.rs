//! The FFN's up-projection and its GELU as one op in inference on NdArray f32: the GELU is
//! applied in the GEMM's last epilogue ([`super::sgemm::Then::Gelu`]) while each tile is in
//! registers, instead of a pass of its own over a `[tokens, d_ff]` activation (a new array
//! zeroed, read and written: the largest of a layer). The values are those of
//! [`super::linear`] followed by [`super::gelu`], bit for bit: the same product, bias addition
//! and per-element GELU.
//!
//! With autodiff the GELU's backward needs its input, which this op does not keep: the layer
//! then runs the two ops.

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArrayView1, ArrayView2, Ix1, Ix2};

use super::sgemm::{product, Then};
use super::{primitive, tensor, Float, Kind};

/// `gelu(x · W + b)` on NdArray f32 without autodiff when the product runs on [`super::sgemm`]
/// (AVX-512, large enough); `Err(x)` otherwise (the caller runs the linear layer and the GELU).
///
/// # Shapes
/// - x: `[rows, d_input]`
/// - output: `[rows, d_output]`
pub(crate) fn linear_gelu<B: Backend>(
    layer: &Linear<B>,
    x: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
    if Kind::of::<B>() != Some(Kind::Plain(DType::F32)) {
        return Err(x);
    }
    let weight = layer.weight.val();
    let bias = layer.bias.as_ref().map(|b| b.val());
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || bias.as_ref().is_some_and(|b| b.dtype() != DType::F32)
    {
        return Err(x);
    }
    let (weight, bias): (NdArrayTensor, Option<NdArrayTensor>) =
        (primitive(weight), bias.map(primitive));
    let x_primitive: NdArrayTensor = primitive(x.clone());
    let (Some(xs), Some(w)) = (matrix(&x_primitive), matrix(&weight)) else {
        return Err(x);
    };
    let bias: Option<ArrayView1<'_, f32>> = match &bias {
        Some(bias) => match f32::view(bias).and_then(|b| b.into_dimensionality::<Ix1>().ok()) {
            Some(bias) => Some(bias),
            None => return Err(x),
        },
        None => None,
    };
    match product(&xs, &w, bias.as_ref(), Then::Gelu) {
        Some(y) => Ok(tensor::<B, 2, _>(f32::wrap(y.into_dyn().into_shared()))),
        None => Err(x),
    }
}

/// The tensor as an f32 matrix, if it is one.
pub(super) fn matrix(tensor: &NdArrayTensor) -> Option<ArrayView2<'_, f32>> {
    f32::view(tensor)?.into_dimensionality::<Ix2>().ok()
}

#[cfg(test)]
mod tests {
    //! Against the linear layer followed by the GELU: the same bits.

    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tensor};

    use super::linear_gelu;
    use crate::activation::gelu;
    use crate::ndarray_ops::linear::linear;
    use crate::ndarray_ops::tests::{bits, random_linear, Ad, Plain};

    #[test]
    fn equals_the_linear_layer_then_gelu_bit_for_bit() {
        let device = Default::default();
        // 300 rows: a partial last micro-panel; 100 outputs: a partial last column panel;
        // 300 inputs: two blocks of the sum (the GELU only after the second).
        for (rows, d_in, d_out, bias) in [(300, 300, 100, true), (128, 64, 512, false)] {
            // Small weights: pre-activations on both sides of `erf`'s two ranges.
            let layer = random_linear::<Plain>(d_in, d_out, bias, 0.2);
            let x = Tensor::<Plain, 2>::random([rows, d_in], Distribution::Default, &device);
            let separate = gelu(linear(&layer, x.clone()).unwrap_or_else(|_| panic!("NdArray")));
            let Ok(fused) = linear_gelu(&layer, x) else {
                // No AVX-512 here: nothing to compare.
                assert!(
                    pulp::x86::V4::try_new().is_none(),
                    "sgemm runs with AVX-512"
                );
                continue;
            };
            let (fused, separate) = (bits(fused.into_data()), bits(separate.into_data()));
            assert!(fused.iter().any(|&b| b != 0), "not all zero");
            assert_eq!(fused, separate, "{rows} x {d_in} -> {d_out}");
        }
    }

    #[test]
    fn small_products_and_autodiff_are_handed_back() {
        let device = Default::default();
        let small = LinearConfig::new(8, 8).init::<Plain>(&device);
        assert!(linear_gelu(&small, Tensor::zeros([4, 8], &device)).is_err());
        let tracked = LinearConfig::new(256, 256).init::<Ad>(&device);
        assert!(linear_gelu(&tracked, Tensor::zeros([256, 256], &device)).is_err());
    }
}
