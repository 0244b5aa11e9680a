//! The feed-forward block's two linear layers and the GELU between them as one op in inference
//! on NdArray f32: [`super::sgemm::feed_forward`] runs each task's rows through both layers
//! while its rows of the `[tokens, d_ff]` activation sit in its core's cache. The values are
//! those of [`super::linear_gelu`] followed by [`super::linear`], bit for bit.
//!
//! With autodiff the backward needs the intermediate activation: the layer then runs the
//! layers one by one.

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::Ix1;

use super::linear_gelu::matrix;
use super::sgemm::{feed_forward as fused, Dense};
use super::{primitive, tensor, Float, Kind};
use crate::reshape::reshape;

/// `down(gelu(up(x)))` over the last dimension, on NdArray f32 without autodiff when the
/// products run on [`super::sgemm`] (AVX-512, large enough); `Err(x)` otherwise, before any
/// work (the training path calls this too).
///
/// # Shapes
/// - x: `[..., d_model]`, up: `d_model -> d_ff`, down: `d_ff -> d_out`
/// - output: `[..., d_out]`
pub(crate) fn feed_forward<B: Backend, const D: usize>(
    up: &Linear<B>,
    down: &Linear<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if Kind::of::<B>() != Some(Kind::Plain(DType::F32)) || x.dtype() != DType::F32 {
        return Err(x);
    }
    let (Some(up_p), Some(down_p)) = (Primitives::of(up), Primitives::of(down)) else {
        return Err(x);
    };
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product();
    let x_primitive: NdArrayTensor = primitive(reshape(x.clone(), [rows, dims[D - 1]]));
    let (Some(xs), Some(up), Some(down)) = (matrix(&x_primitive), up_p.view(), down_p.view())
    else {
        return Err(x);
    };
    // Shapes that do not chain go back to the layers, which report them.
    let bias_fits = |l: &Dense<'_>| l.bias.as_ref().is_none_or(|b| b.len() == l.weight.ncols());
    let chained = xs.ncols() == up.weight.nrows() && up.weight.ncols() == down.weight.nrows();
    if !chained || !bias_fits(&up) || !bias_fits(&down) {
        return Err(x);
    }
    match fused(&xs, &up, &down) {
        Some(y) => {
            dims[D - 1] = y.ncols();
            let y = tensor::<B, 2, _>(f32::wrap(y.into_dyn().into_shared()));
            Ok(reshape(y, dims))
        }
        None => Err(x),
    }
}

/// A linear layer's f32 weight and bias as NdArray tensors.
struct Primitives {
    weight: NdArrayTensor,
    bias: Option<NdArrayTensor>,
}

impl Primitives {
    fn of<B: Backend>(layer: &Linear<B>) -> Option<Self> {
        let weight = layer.weight.val();
        let bias = layer.bias.as_ref().map(|b| b.val());
        if weight.dtype() != DType::F32 || bias.as_ref().is_some_and(|b| b.dtype() != DType::F32) {
            return None;
        }
        Some(Self {
            weight: primitive(weight),
            bias: bias.map(primitive),
        })
    }

    /// The weight and bias as arrays, if they are a matrix and a vector.
    fn view(&self) -> Option<Dense<'_>> {
        let bias = match &self.bias {
            Some(bias) => Some(f32::view(bias)?.into_dimensionality::<Ix1>().ok()?),
            None => None,
        };
        Some(Dense {
            weight: matrix(&self.weight)?,
            bias,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Against the two linear layers with the GELU between them: the same bits.

    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tensor};

    use super::feed_forward;
    use crate::activation::gelu;
    use crate::ndarray_ops::linear::linear;
    use crate::ndarray_ops::tests::{bits, random_linear, Ad, Plain};

    #[test]
    fn equals_the_two_layers_bit_for_bit() {
        let device = Default::default();
        // 300 rows: tasks of unequal height and a partial last micro-panel; 300 inputs: two
        // blocks of the up-projection's sum (the GELU only after the second); 600 = d_ff: three
        // blocks of the down-projection's sum, a partial last column panel of the intermediate;
        // 100 outputs: a partial last column panel.
        for (rows, d_model, d_ff, d_out, bias) in [
            (300, 300, 600, 100, true),
            (128, 64, 512, 64, false),
            (1100, 32, 64, 32, true),
        ] {
            // Small weights: pre-activations on both sides of `erf`'s two ranges.
            let up = random_linear::<Plain>(d_model, d_ff, bias, 0.2);
            let down = random_linear::<Plain>(d_ff, d_out, bias, 0.1);
            let x = Tensor::<Plain, 2>::random([rows, d_model], Distribution::Default, &device);
            let layer = |l, x| linear(l, x).unwrap_or_else(|_| panic!("NdArray"));
            let separate = layer(&down, gelu(layer(&up, x.clone())));
            let Ok(fused) = feed_forward(&up, &down, x) else {
                // No AVX-512 here: nothing to compare.
                assert!(
                    pulp::x86::V4::try_new().is_none(),
                    "sgemm runs with AVX-512"
                );
                continue;
            };
            assert_eq!(fused.dims(), [rows, d_out]);
            let (fused, separate) = (bits(fused.into_data()), bits(separate.into_data()));
            assert!(fused.iter().any(|&b| b != 0), "not all zero");
            assert_eq!(fused, separate, "{rows} x {d_model} -> {d_ff} -> {d_out}");
        }
    }

    #[test]
    fn small_inputs_and_autodiff_are_handed_back() {
        let device = Default::default();
        let (up, down) = (LinearConfig::new(8, 16), LinearConfig::new(16, 8));
        let (up_p, down_p) = (up.init::<Plain>(&device), down.init::<Plain>(&device));
        assert!(feed_forward(&up_p, &down_p, Tensor::<Plain, 2>::zeros([4, 8], &device)).is_err());
        let (up_a, down_a) = (
            LinearConfig::new(256, 512).init::<Ad>(&device),
            LinearConfig::new(512, 256).init::<Ad>(&device),
        );
        assert!(feed_forward(&up_a, &down_a, Tensor::<Ad, 2>::zeros([256, 256], &device)).is_err());
    }
}
