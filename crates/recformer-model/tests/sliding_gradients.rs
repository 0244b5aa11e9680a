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
use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use common::{assert_close, batch_on, tiny_config};
use recformer_model::attention::reference::local_attention_dense;
use recformer_model::attention::sliding::{local_attention_sliding, BandProduct};
use recformer_model::{AttentionImpl, AttentionMasks, RecformerConfig};

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

/// Both band products against the dense oracle at the attention level: outputs and the gradients
/// with respect to query, key and value, with padding and a global first token.
#[test]
fn both_band_products_equal_the_dense_oracle_with_gradients() {
    let device = Default::default();
    let [b, h, w, d] = [2, 3, 2, 4];
    let l = 5 * w;
    A::seed(&device, 7);
    let lengths = [l, l - 3];
    let mask: Vec<i64> = lengths
        .iter()
        .flat_map(|&n| (0..l).map(move |t| (t < n) as i64))
        .collect();
    let global: Vec<i64> = (0..b)
        .flat_map(|_| (0..l).map(|t| (t == 0) as i64))
        .collect();
    let ints = |v: Vec<i64>| Tensor::<A, 2, Int>::from_data(TensorData::new(v, [b, l]), &device);
    let masks = AttentionMasks::new(ints(mask), ints(global));
    let dropout = DropoutConfig::new(0.0).init();
    let qkv = || {
        Tensor::<A, 4>::random([b, h, l, d], Distribution::Normal(0.0, 1.0), &device).require_grad()
    };
    let (q, k, v) = (qkv(), qkv(), qkv());
    let run = |product: Option<BandProduct>| {
        let (q1, k1, v1) = (q.clone(), k.clone(), v.clone());
        let local = match product {
            None => local_attention_dense(q1, k1, v1, &masks, w, &dropout),
            Some(p) => local_attention_sliding(q1, k1, v1, &masks, w, &dropout, p),
        };
        // Row 0 is global: not the band's.
        let out = local.slice([0..b, 0..h, 1..l, 0..d]);
        let grads = (out.clone() * out.clone().sin()).sum().backward();
        let g = |t: &Tensor<A, 4>| t.grad(&grads).expect("grad").into_data();
        (out.into_data(), [g(&q), g(&k), g(&v)])
    };
    let (dense, dense_grads) = run(None);
    for product in [BandProduct::Windows, BandProduct::Parts, BandProduct::Fused] {
        let (out, grads) = run(Some(product));
        assert_close(
            out,
            dense.clone(),
            1e-9,
            1e-9,
            &format!("{product:?} output"),
        );
        for (name, (g, e)) in ["query", "key", "value"]
            .iter()
            .zip(grads.into_iter().zip(dense_grads.clone()))
        {
            assert_eq!(e.dtype, DType::F64, "{name}: not computed in f64");
            assert_close(g, e, 1e-6, 1e-9, &format!("{product:?} d/d{name}"));
        }
    }
}
