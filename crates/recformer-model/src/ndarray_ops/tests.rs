//! What the tests of the NdArray kernels share: [`super::linear`], [`super::linear_gelu`],
//! [`super::matmul`] and [`super::gelu`] (random layers, bit patterns, a map compiled for one
//! instruction set), and the one-pass attentions (split heads, masks, bit-for-bit checks).

use burn::tensor::TensorData;

use super::simd::tests::{on, Arch};
use super::{Map, MapSlice, ZipMap, ZipSlice};

pub(crate) type Ad = burn_autodiff::Autodiff<burn::backend::NdArray>;
pub(crate) type Plain = burn::backend::NdArray;

/// A linear layer with weights drawn from N(0, `weight_std`²) and (if `bias`) a bias from
/// N(0, 1), never the initialiser's zeros.
pub(crate) fn random_linear<B: burn::tensor::backend::Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    weight_std: f64,
) -> burn::nn::Linear<B> {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    let device = Default::default();
    let mut layer = burn::nn::LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .init::<B>(&device);
    let normal = |std| Distribution::Normal(0.0, std);
    layer.weight = Param::from_tensor(Tensor::random([d_in, d_out], normal(weight_std), &device));
    if bias {
        layer.bias = Some(Param::from_tensor(Tensor::random(
            [d_out],
            normal(1.0),
            &device,
        )));
    }
    layer
}

/// A tensor of N(0, 1) values.
pub(crate) fn random<B: burn::tensor::backend::Backend, const D: usize>(
    shape: [usize; D],
) -> burn::tensor::Tensor<B, D> {
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    burn::tensor::Tensor::random(shape, normal, &Default::default())
}

/// `[b, heads, l, d]` laid out as the attention's split heads: a `[b, l, heads, d]` tensor
/// with its middle axes swapped (rows contiguous, heads strided).
pub(crate) fn heads<B: burn::tensor::backend::Backend>(
    b: usize,
    h: usize,
    l: usize,
    d: usize,
) -> burn::tensor::Tensor<B, 4> {
    random::<B, 4>([b, l, h, d]).swap_dims(1, 2)
}

/// Attention masks for `padding.len()` rows of `l` tokens: row `i` has `padding[i]` padding
/// tokens at its end, and the tokens `global[i]` are global.
pub(crate) fn masks<B: burn::tensor::backend::Backend>(
    l: usize,
    padding: &[usize],
    global: &[Vec<usize>],
) -> crate::attention::AttentionMasks<B> {
    use burn::tensor::{Int, Tensor};
    let b = padding.len();
    let ints = |v: Vec<i64>| {
        Tensor::<B, 2, Int>::from_data(TensorData::new(v, [b, l]), &Default::default())
    };
    let attention = (0..b * l)
        .map(|i| i64::from(i % l < l - padding[i / l]))
        .collect();
    let global = (0..b * l)
        .map(|i| i64::from(global[i / l].contains(&(i % l))))
        .collect();
    crate::attention::AttentionMasks::new(ints(attention), ints(global))
}

/// Asserts that two tensors hold the same f32 bits, and that `want` is not all zeros.
pub(crate) fn same_bits<B: burn::tensor::backend::Backend, const D: usize>(
    got: burn::tensor::Tensor<B, D>,
    want: burn::tensor::Tensor<B, D>,
    case: &str,
) {
    let (got, want) = (bits(got.into_data()), bits(want.into_data()));
    assert!(want.iter().any(|&x| x != 0), "{case}: all zeros");
    let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{case}: {differing} of {} differ", got.len());
}

/// The f32 values' bit patterns (to compare with `==`, NaN and signed zeros included).
pub(crate) fn bits(data: TensorData) -> Vec<u32> {
    data.to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// `map` over all of `input` as one slice, compiled for `arch`.
pub(crate) fn map_on(arch: Arch, map: &impl Map, input: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0_f32; input.len()];
    on(
        arch,
        MapSlice {
            map,
            start: 0,
            input,
            out: &mut out,
        },
    );
    out
}

/// `map` over all of `a` and `b` as one pair of slices, compiled for `arch`.
pub(crate) fn zip_on(arch: Arch, map: &impl ZipMap, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0_f32; a.len()];
    on(
        arch,
        ZipSlice {
            map,
            a,
            b,
            out: &mut out,
        },
    );
    out
}

/// [`super::standard`] copies every layout (permuted, sliced, reversed, with one or many
/// indices on the first axis) into ndarray's own standard-layout copy, element for element.
#[test]
fn standard_equals_ndarrays_standard_layout() {
    use ndarray::{s, Array, ArrayD, IxDyn};
    let array = |shape: &[usize]| -> ArrayD<u32> {
        Array::from_iter(0..shape.iter().product::<usize>() as u32)
            .into_shape_with_order(IxDyn(shape))
            .expect("shape")
    };
    let heads = array(&[64, 12, 64, 32]);
    let wide = array(&[3, 5, 7]);
    let one = array(&[1, 9, 4]);
    let views = [
        // The attention's merge of heads: [b, h, l, d] -> [b, l, h, d].
        heads.view().permuted_axes(IxDyn(&[0, 2, 1, 3])),
        // Every axis permuted: no lane contiguous.
        heads.view().permuted_axes(IxDyn(&[3, 1, 2, 0])),
        heads.slice(s![..;3, 1.., ..;-1, 5..]).into_dyn(),
        wide.view().reversed_axes(),
        wide.view(),
        one.view().permuted_axes(IxDyn(&[2, 1, 0])),
        one.view(),
    ];
    for view in views {
        let got = super::standard(&view);
        assert!(got.is_standard_layout());
        assert_eq!(
            got,
            view.as_standard_layout().into_owned(),
            "{:?}",
            view.shape()
        );
    }
}

/// A one-pass attention's output is `[b, h, l, d]` over a token-major array
/// (`one_pass::per_pair`): with heads and tokens swapped it is in standard layout, so the merge
/// of heads after it copies nothing.
pub(crate) fn token_major(out: &burn::tensor::Tensor<Plain, 4>) {
    use super::{primitive, Float};
    let merged: burn_ndarray::NdArrayTensor = primitive(out.clone().swap_dims(1, 2));
    let view = f32::view(&merged).expect("f32");
    assert!(view.is_standard_layout(), "strides {:?}", view.strides());
}
