//! The exact (erf) GELU on NdArray f32 in one pass, forward and backward, with the f32 `erf` of
//! [`super::erf`], the slices split over rayon's threads.
//!
//! Burn's GELU on NdArray is five element-wise passes (`x/√2`, `erf`, `+1`, `·x`, `/2`), its
//! `erf` libm's f64 one per element, all on the calling thread; with autodiff the encoder writes
//! GELU out of primitive ops (`crate::activation`: Burn's fused backward is the tanh
//! approximation's derivative), which keeps two activation-sized tensors for the backward and
//! runs about eight more passes there. Here the forward is PyTorch's formula (ATen's CPU
//! `GeluKernel`: `x · 0.5 · (1 + erf(x · (1/√2)))`, as `(x · (erf(x · (1/√2)) + 1)) · 0.5`, the
//! same value; Burn divides by √2, and a vector division costs several multiplications), one
//! pass; the backward is the exact derivative `Φ(x) + x·φ(x)` times the incoming gradient, one pass, and only `x` is kept.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_ndarray::NdArrayTensor;

use super::erf::{erf, exp_nonpositive};
use super::{map_f32, primitive, tensor, zip_map_f32, Kind, Map, ZipMap, CHUNK};

/// `(x · (erf(x · (1/√2)) + 1)) · 0.5` on NdArray f32 or `Autodiff<NdArray<f32>>` (the module
/// [`super`]); `Err(x)` for every other backend and float type.
///
/// # Shapes
/// - any; output as input
pub(crate) fn gelu<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if x.dtype() != DType::F32 {
        return Err(x);
    }
    match Kind::of::<B>() {
        Some(Kind::Plain(DType::F32)) => {
            let x: NdArrayTensor = primitive(x);
            Ok(tensor::<B, D, _>(forward(&x)))
        }
        Some(Kind::Tracked(DType::F32)) => Ok(tracked(x)),
        _ => Err(x),
    }
}

/// One element of the forward: PyTorch's GELU formula (module docs) with our `erf`.
#[inline(always)]
pub(crate) fn gelu_value(x: f32) -> f32 {
    (x * (erf(x * core::f32::consts::FRAC_1_SQRT_2) + 1.0)) * 0.5
}

/// [`gelu_value`] on 16 lanes, op for op (the same bits for every finite input).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn gelu_lanes(simd: pulp::x86::V4, x: pulp::f32x16) -> pulp::f32x16 {
    let z = simd.mul_f32x16(x, simd.splat_f32x16(core::f32::consts::FRAC_1_SQRT_2));
    let e = simd.add_f32x16(super::erf::lanes::erf(simd, z), simd.splat_f32x16(1.0));
    simd.mul_f32x16(simd.mul_f32x16(x, e), simd.splat_f32x16(0.5))
}

/// `d gelu / dx = Φ(x) + x·φ(x)`.
#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    /// 1/√(2π)
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = (erf(x * core::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5;
    cdf + x * exp_nonpositive(-0.5 * x * x) * FRAC_1_SQRT_2PI
}

/// The forward's loop: GELU of every element.
struct GeluForward;

impl Map for GeluForward {
    #[inline(always)]
    fn apply(&self, _start: usize, input: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(input) {
            *o = gelu_value(x);
        }
    }
}

/// The backward's loop: `grad · gelu'(x)` element by element (`a`: `x`, `b`: `grad`).
struct GeluBackward;

impl ZipMap for GeluBackward {
    #[inline(always)]
    fn apply(&self, input: &[f32], incoming: &[f32], out: &mut [f32]) {
        for ((o, &x), &g) in out.iter_mut().zip(input).zip(incoming) {
            *o = g * gelu_derivative(x);
        }
    }
}

/// GELU of every element, into a new tensor of the same shape.
fn forward(x: &NdArrayTensor) -> NdArrayTensor {
    map_f32(x, CHUNK, &GeluForward)
}

/// `grad · gelu'(x)` element by element.
fn backward(x: &NdArrayTensor, grad: &NdArrayTensor) -> NdArrayTensor {
    let what = "GELU's gradient has its input's shape";
    zip_map_f32(x, grad, CHUNK, what, &GeluBackward)
}

/// The autodiff node: keeps the input, differentiates exactly.
#[derive(Debug)]
struct FusedGelu;

impl Backward<NdArray<f32>, 1> for FusedGelu {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        unary::<NdArray<f32>, _>(ops.parents, ops.node, grads, |grad| {
            let x: NdArrayTensor = checkpointer.retrieve_node_output(ops.state);
            backward(&x, &grad)
        });
    }
}

fn tracked<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x: FloatTensor<Autodiff<NdArray<f32>>> = primitive(x);
    let y = match FusedGelu
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            let y = forward(&x.primitive);
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive)),
    };
    tensor::<B, D, _>(y)
}

#[cfg(test)]
mod tests {
    //! Against Burn's own GELU (forward) and the exact derivative (backward).

    use burn::tensor::{activation, Distribution, Tensor, TensorData};

    use super::{gelu, GeluBackward, GeluForward};
    use crate::ndarray_ops::simd::tests::same_bits_on_every_width;
    use crate::ndarray_ops::tests::{map_on, zip_on, Ad, Plain};

    /// Normal samples at three scales, exact zeros, the region where the tanh approximation's
    /// derivative is worst (≈ ±2), and values far in both tails.
    fn input() -> Tensor<Plain, 3> {
        let device = Default::default();
        let mut values =
            Tensor::<Plain, 1>::random([3 * 40 * 50], Distribution::Normal(0.0, 1.0), &device)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
        for (i, v) in values.iter_mut().enumerate() {
            *v *= [0.1, 1.0, 4.0][i % 3];
        }
        values[..9].copy_from_slice(&[0.0, -0.0, -2.02, 2.02, -9.0, 9.0, -30.0, 30.0, 1.0]);
        Tensor::from_data(TensorData::new(values, [3, 40, 50]), &device)
    }

    #[test]
    fn forward_is_the_exact_gelu_up_to_the_f32_roundings() {
        let x = input();
        let xs = x.to_data().to_vec::<f32>().unwrap();
        let ours = gelu(x.clone())
            .unwrap_or_else(|_| panic!("NdArray f32 takes the fused path"))
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let burn = activation::gelu(x).into_data().to_vec::<f32>().unwrap();
        let (mut rounded, mut burn_rounded) = (0, 0);
        for ((&a, &b), &x) in ours.iter().zip(&burn).zip(&xs) {
            let x64 = f64::from(x);
            let exact = 0.5 * x64 * (1.0 + libm::erf(x64 * core::f64::consts::FRAC_1_SQRT_2));
            // erf within 1 ulp (≤ 2⁻²⁴ near ±1), its argument and `1 + erf` rounded once
            // each, all scaled by x/2: at most |x|·1.75·2⁻²⁴; then the result's own rounding.
            let e = exact as f32;
            let ulp = f64::from(f32::from_bits(e.abs().to_bits() + 1) - e.abs());
            let bound = x64.abs() * 2f64.powi(-23) + ulp;
            assert!(
                (f64::from(a) - exact).abs() <= bound,
                "at {x}: {a} vs exact {exact}"
            );
            rounded += usize::from(a == e);
            burn_rounded += usize::from(b == e);
        }
        // As often the exact value rounded to f32 as Burn's GELU (libm's f64 `erf`; both
        // ~62% on this input), give or take 2% of the points.
        assert!(
            rounded + ours.len() / 50 >= burn_rounded,
            "{rounded} correctly rounded against Burn's {burn_rounded}"
        );
    }

    #[test]
    fn gradient_is_the_exact_derivative_and_the_forward_matches_inference() {
        let plain = input();
        let x = Tensor::<Ad, 3>::from_data(plain.to_data(), &Default::default()).require_grad();
        let r = Tensor::<Ad, 3>::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device());
        let y =
            gelu(x.clone()).unwrap_or_else(|_| panic!("Autodiff<NdArray> takes the fused path"));
        let inference = gelu(plain.clone()).unwrap_or_else(|_| panic!("fused path"));
        assert_eq!(
            y.to_data(),
            inference.to_data(),
            "the same forward with and without autodiff"
        );

        let grads = (y * r.clone()).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let xs = plain.into_data().to_vec::<f32>().unwrap();
        let rs = r.into_data().to_vec::<f32>().unwrap();
        for ((&x, &r), &g) in xs.iter().zip(&rs).zip(&g) {
            let x64 = x as f64;
            let cdf = 0.5 * (1.0 + libm::erf(x64 / core::f64::consts::SQRT_2));
            let pdf = (-0.5 * x64 * x64).exp() / (2.0 * core::f64::consts::PI).sqrt();
            let exact = r as f64 * (cdf + x64 * pdf);
            assert!(
                (g as f64 - exact).abs() <= 1e-6 * (1.0 + exact.abs()),
                "gradient at {x}: {g} vs exact {exact}"
            );
        }
    }

    #[test]
    fn the_same_bits_on_every_instruction_set() {
        let x = input().into_data().to_vec::<f32>().unwrap();
        let g: Vec<f32> = x.iter().rev().copied().collect();
        same_bits_on_every_width("GELU", |arch| map_on(arch, &GeluForward, &x));
        same_bits_on_every_width("GELU'", |arch| zip_on(arch, &GeluBackward, &x, &g));
    }

    #[test]
    fn non_contiguous_input_is_read_in_its_logical_order() {
        let x = input().swap_dims(0, 2);
        let ours = gelu(x.clone()).unwrap_or_else(|_| panic!("fused path"));
        let contiguous = gelu(Tensor::<Plain, 3>::from_data(
            x.to_data(),
            &Default::default(),
        ))
        .unwrap_or_else(|_| panic!("fused path"));
        assert_eq!(ours.dims(), [50, 40, 3]);
        assert_eq!(ours.into_data(), contiguous.into_data());
    }

    // No f64 NdArray tensor in this test binary: the first tensor a process creates on a device
    // fixes that device's default float type for every test (burn 0.21 `DeviceSettings`), so an
    // f64 test could turn the others' tensors into f64. f64 keeps Burn's GELU:
    // `tests/sliding_gradients.rs` runs the whole encoder in f64.
    #[cfg(feature = "flex")]
    #[test]
    fn other_backends_are_handed_back() {
        let x = Tensor::<burn::backend::Flex, 1>::zeros([3], &Default::default());
        assert!(gelu(x).is_err(), "Flex keeps Burn's GELU");
    }

    /// The 16-lane GELU is the scalar one bit for bit: every 997th f32 of [-12, 12] (all
    /// exponents, both signs, both branches of `erf` and its clamp at 4), the edges, ±0 and
    /// ±∞; NaN stays NaN.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lanes_equal_the_scalar_gelu_bit_for_bit() {
        use pulp::{Simd, WithSimd};
        struct Lanes<'a>(pulp::x86::V4, &'a [f32], &'a mut Vec<f32>);
        impl WithSimd for Lanes<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Lanes(simd, xs, out) = self;
                for chunk in xs.chunks_exact(16) {
                    let x: [f32; 16] = chunk.try_into().unwrap();
                    let y: [f32; 16] = pulp::cast(super::gelu_lanes(simd, pulp::cast(x)));
                    out.extend_from_slice(&y);
                }
            }
        }
        let Some(simd) = pulp::x86::V4::try_new() else {
            eprintln!("no AVX-512: the 16-lane GELU does not run here");
            return;
        };
        let top = 12.0_f32.to_bits();
        let mut xs: Vec<f32> = (0..=top)
            .step_by(997)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .collect();
        xs.extend([
            1.0,
            -1.0,
            0.999_999_9,
            4.0,
            -4.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        xs.resize(xs.len().next_multiple_of(16), 0.5);
        let mut got = Vec::with_capacity(xs.len());
        Simd::vectorize(simd, Lanes(simd, &xs, &mut got));
        for (&x, &y) in xs.iter().zip(&got) {
            let want = super::gelu_value(x);
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "gelu({x:e}): {y:e} (lanes) vs {want:e} (scalar)"
            );
        }
    }
}
