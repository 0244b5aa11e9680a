//! The same fixture gives the same numbers on two backends: Flex vs NdArray (default features),
//! and `--features wgpu` / `--features cuda` vs the CPU backend.

#![cfg(any(
    feature = "wgpu",
    feature = "cuda",
    all(feature = "ndarray", feature = "flex")
))]

mod common;

use burn::tensor::backend::Backend;
use common::{assert_close, fixture, fixture_config, max_diff, Case, CASES};
use recformer_model::backend::Cpu;
use recformer_model::{load_checkpoint, AttentionImpl};

/// Hidden states, pooled outputs and MLM logits of every fixture case on backend `O` must match the
/// default CPU backend (and PyTorch) element-wise to `rtol·|e| + atol`, where
/// `atol = atol_of_max · max|e|` of each tensor. The largest differences are printed (`--nocapture`).
fn compare_with_cpu<O: Backend>(device: O::Device, rtol: f32, atol_of_max: f32) {
    let cpu_device = Default::default();
    let config = fixture_config();
    let cpu = load_checkpoint::<Cpu>(&fixture("pretraining.bin"), &config, &cpu_device).unwrap();
    let other = load_checkpoint::<O>(&fixture("pretraining.bin"), &config, &device).unwrap();
    for imp in [AttentionImpl::Dense, AttentionImpl::Sliding] {
        for name in CASES {
            let case = Case::load(name);
            let a = cpu
                .model
                .clone()
                .with_attention_impl(imp)
                .forward(case.input::<Cpu>(&cpu_device));
            let b = other
                .model
                .clone()
                .with_attention_impl(imp)
                .forward(case.input::<O>(&device));
            let what = format!("{name} {imp:?}");
            let atol = |e: &burn::tensor::TensorData| {
                let m = e.iter::<f32>().map(f32::abs).fold(0.0, f32::max);
                (atol_of_max * m).max(1e-5)
            };
            let (abs, rel) = max_diff(
                &b.last_hidden_state.to_data(),
                &a.last_hidden_state.to_data(),
            );
            println!("{what}: last_hidden_state max |diff| {abs:.2e} ({rel:.2e} of max |value|)");
            let e = a.last_hidden_state.to_data();
            assert_close(
                b.last_hidden_state.to_data(),
                e.clone(),
                rtol,
                atol(&e),
                &what,
            );
            let e = a.pooler_output.to_data();
            assert_close(b.pooler_output.to_data(), e.clone(), rtol, atol(&e), &what);
            // The pooled-only forward (last layer for token 0 only) on this backend.
            let pooled = other
                .model
                .clone()
                .with_attention_impl(imp)
                .forward_pooled(case.input::<O>(&device));
            let what_pooled = format!("{what} forward_pooled");
            assert_close(pooled.to_data(), e.clone(), rtol, atol(&e), &what_pooled);
            let la = cpu.lm_head.as_ref().unwrap().forward(a.last_hidden_state);
            let lb = other.lm_head.as_ref().unwrap().forward(b.last_hidden_state);
            let e = la.to_data();
            let (abs, rel) = max_diff(&lb.to_data(), &e);
            println!("{what}: mlm_logits max |diff| {abs:.2e} ({rel:.2e} of max |value|)");
            assert_close(lb.to_data(), e.clone(), rtol, atol(&e), &what);
            // And both match PyTorch.
            let e = case.expected("mlm_logits");
            assert_close(lb.to_data(), e.clone(), rtol, atol(&e), &what);
        }
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_cpu() {
    compare_with_cpu::<recformer_model::backend::Wgpu>(Default::default(), 1e-4, 0.0);
}

/// `Cpu` is NdArray when both CPU features are on (the default).
#[cfg(all(feature = "ndarray", feature = "flex"))]
#[test]
fn flex_matches_ndarray() {
    compare_with_cpu::<recformer_model::backend::Flex>(Default::default(), 1e-4, 0.0);
}

/// CUDA f32 matmuls may run on TF32 tensor cores (10-bit mantissa), so the check is scale-relative:
/// every element within 1 % of the tensor's largest magnitude (measured on an H100: ~2e-3, see
/// docs/parity.md). A wrong mask or weight gives O(1) differences.
#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_cpu() {
    compare_with_cpu::<recformer_model::backend::Cuda>(Default::default(), 0.0, 1e-2);
}
