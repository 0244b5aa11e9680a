//! The encoder's GELU differentiates exactly (PyTorch's erf GELU), on every CPU backend.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{activation, Tensor, TensorData};
use recformer_model::activation::gelu;

/// Points where the tanh approximation's derivative is off the most (around ±2) and elsewhere.
fn points() -> Vec<f32> {
    (-300..=300).map(|i| i as f32 / 50.0).collect()
}

/// `d/dx [x·Φ(x)] = Φ(x) + x·φ(x)`, in f64.
fn exact_derivative(x: f64) -> f64 {
    let cdf = 0.5 * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    cdf + x * pdf
}

/// erf in f64 by its Taylor series (|x| < 3) or the continued fraction of erfc (|x| ≥ 3):
/// accurate to ~1e-15 here, independent of any backend's erf.
fn libm_erf(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < 3.0 {
        let mut term = a;
        let mut sum = a;
        for n in 1..200 {
            term *= -a * a / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (a + f);
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
    };
    v.copysign(x)
}

/// Largest |autodiff gradient - exact derivative| of `f` over [`points`].
fn max_grad_error<B: AutodiffBackend>(f: impl Fn(Tensor<B, 1>) -> Tensor<B, 1>) -> f64 {
    let device = Default::default();
    let xs = points();
    let x = Tensor::<B, 1>::from_data(TensorData::from(xs.as_slice()), &device).require_grad();
    let grads = f(x.clone()).sum().backward();
    let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    xs.iter()
        .zip(g)
        .map(|(&x, g)| (g as f64 - exact_derivative(x as f64)).abs())
        .fold(0.0, f64::max)
}

fn check<B: AutodiffBackend>(name: &str) {
    let ours = max_grad_error::<B>(gelu);
    assert!(ours < 2e-6, "{name}: GELU gradient off by {ours:e}");
    // Forward values: the fused op's (the inference path) up to f32 rounding.
    let device = Default::default();
    let x = Tensor::<B, 1>::from_data(TensorData::from(points().as_slice()), &device);
    let diff = (gelu(x.clone()) - activation::gelu(x))
        .abs()
        .max()
        .into_scalar();
    assert!(
        burn::tensor::ElementConversion::elem::<f32>(diff) < 2e-6,
        "{name}: forward differs"
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_gelu_gradient_is_exact() {
    use recformer_model::backend::NdArrayAutodiff;
    check::<NdArrayAutodiff>("ndarray");
    // Why the module exists: Burn's fused gelu differentiates with the tanh approximation here.
    let fused = max_grad_error::<NdArrayAutodiff>(activation::gelu);
    assert!(
        fused > 5e-4,
        "burn's fused gelu gradient is now exact ({fused:e}): simplify"
    );
}

#[cfg(feature = "flex")]
#[test]
fn flex_gelu_gradient_is_exact() {
    check::<recformer_model::backend::FlexAutodiff>("flex");
}
