//! The same fixture gives the same numbers on two backends: Flex vs NdArray (default features),
//! and `--features wgpu` / `--features cuda` vs the CPU backend.

#![cfg(any(
    feature = "wgpu",
    feature = "cuda",
    all(feature = "ndarray", feature = "flex")
))]

mod common;

use burn::tensor::backend::Backend;
use common::{assert_close, fixture, fixture_config, Case, CASES};
use recformer_model::backend::Cpu;
use recformer_model::{load_checkpoint, AttentionImpl};

/// Hidden states, pooled outputs and MLM logits of every fixture case on backend `O` must match the
/// default CPU backend to 1e-4 (relative) / 1e-5 (absolute).
fn compare_with_cpu<O: Backend>(device: O::Device) {
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
            assert_close(
                b.last_hidden_state.to_data(),
                a.last_hidden_state.to_data(),
                1e-4,
                1e-5,
                &what,
            );
            assert_close(
                b.pooler_output.to_data(),
                a.pooler_output.to_data(),
                1e-4,
                1e-5,
                &what,
            );
            let la = cpu.lm_head.as_ref().unwrap().forward(a.last_hidden_state);
            let lb = other.lm_head.as_ref().unwrap().forward(b.last_hidden_state);
            assert_close(lb.to_data(), la.to_data(), 1e-4, 1e-5, &what);
            // And both match PyTorch.
            assert_close(lb.to_data(), case.expected("mlm_logits"), 1e-4, 1e-5, &what);
        }
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_cpu() {
    compare_with_cpu::<recformer_model::backend::Wgpu>(Default::default());
}

/// `Cpu` is NdArray when both CPU features are on (the default).
#[cfg(all(feature = "ndarray", feature = "flex"))]
#[test]
fn flex_matches_ndarray() {
    compare_with_cpu::<recformer_model::backend::Flex>(Default::default());
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_cpu() {
    compare_with_cpu::<recformer_model::backend::Cuda>(Default::default());
}
