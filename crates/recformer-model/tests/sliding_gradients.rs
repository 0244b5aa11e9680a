//! The banded attention's gradients against the dense oracle's, in f64.
//!
//! Its own test binary on purpose: Burn 0.21 keeps the default float dtype per device in
//! process-wide state, and `NdArray<f32>` and `NdArray<f64>` share the CPU device. Once any f32
//! test has run in the process, an "f64" model silently computes in f32 (seen: the gradients came
//! back as F32). In f32 the two paths' sums round differently, and with the tiny model's large
//! weights (std 0.3) the cancellations in the query gradient leave differences of 1-7% of its
//! largest value, too much for a test that must catch a wrong window. Keep f32 tests out of this
//! file.
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use common::{assert_close, batch_on, tiny_config};
use recformer_model::{AttentionImpl, RecformerConfig};

type A = Autodiff<NdArray<f64>>;

/// Dropout off; the first layer's attention projections and the word embeddings; lengths on and
/// off the window multiple; several random models.
#[test]
fn sliding_gradients_equal_dense_oracle_gradients() {
    let device = Default::default();
    let config = RecformerConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..tiny_config(4, 2)
    };
    for seed in 0..3 {
        A::seed(&device, seed);
        let model = config.init_model::<A>(&device);
        let input = batch_on::<A>(&[11, 8, 3], &config, 17 + seed);
        let grads_of = |imp: AttentionImpl| {
            let m = model.clone().with_attention_impl(imp);
            let out = m.forward(input.clone());
            let loss = out.last_hidden_state.powi_scalar(2).sum() + out.pooler_output.sum();
            let grads = loss.backward();
            let attn = &m.encoder.layer[0].attention.self_attn;
            [
                ("query", &attn.query.weight),
                ("key", &attn.key.weight),
                ("value", &attn.value.weight),
                ("key_global", &attn.key_global.weight),
                ("value_global", &attn.value_global.weight),
                ("word_embeddings", &m.embeddings.word_embeddings.weight),
            ]
            .map(|(name, p)| (name, p.grad(&grads).expect(name).into_data()))
        };
        let dense = grads_of(AttentionImpl::Dense);
        let sliding = grads_of(AttentionImpl::Sliding);
        for ((name, d), (_, s)) in dense.into_iter().zip(sliding) {
            assert_eq!(d.dtype, DType::F64, "{name}: not computed in f64");
            let scale = d.iter::<f64>().fold(0f64, |m, v| m.max(v.abs())) as f32;
            assert!(scale > 0.0, "{name}: zero gradient");
            assert_close(s, d, 1e-6, 1e-6 * scale, &format!("seed {seed} {name}"));
        }
    }
}
