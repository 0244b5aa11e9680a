//! The fast paths' gradients against their oracles', in f64: the banded attention against the
//! dense one, the first token's global attention through the `*_global` weights against the
//! projected keys and values, the pooled-only forward against the full one.
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

use burn::backend::autodiff::grads::Gradients;
use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{DropoutConfig, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use common::{assert_close, batch_on, tiny_config};
use recformer_model::attention::global::first_token_global_attention;
use recformer_model::attention::reference::{global_attention, local_attention_dense};
use recformer_model::attention::sliding::{local_attention_sliding, BandProduct};
use recformer_model::{AttentionImpl, AttentionMasks, Pooler, RecformerConfig};

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

/// Masks of right-padded rows of these real lengths in `l` positions, token 0 global.
fn first_global_masks(lengths: &[usize], l: usize) -> AttentionMasks<A> {
    let device = Default::default();
    let b = lengths.len();
    let mask: Vec<i64> = lengths
        .iter()
        .flat_map(|&n| (0..l).map(move |t| (t < n) as i64))
        .collect();
    let global: Vec<i64> = (0..b)
        .flat_map(|_| (0..l).map(|t| (t == 0) as i64))
        .collect();
    let ints = |v: Vec<i64>| Tensor::<A, 2, Int>::from_data(TensorData::new(v, [b, l]), &device);
    AttentionMasks::new(ints(mask), ints(global))
}

/// Both band products against the dense oracle at the attention level: outputs and the gradients
/// with respect to query, key and value, with padding and a global first token.
#[test]
fn both_band_products_equal_the_dense_oracle_with_gradients() {
    let device = Default::default();
    let [b, h, w, d] = [2, 3, 2, 4];
    let l = 5 * w;
    A::seed(&device, 7);
    let masks = first_global_masks(&[l, l - 3], l);
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

/// The first token's global attention computed through the `*_global` weights against the oracle
/// on projected keys and values: outputs and the gradients with respect to the query, the hidden
/// states and both layers' weights and biases, with padding.
#[test]
fn first_token_global_attention_equals_the_projected_oracle_with_gradients() {
    let device = Default::default();
    let [b, h, d, l] = [3, 4, 5, 9];
    let hidden = h * d;
    A::seed(&device, 11);
    let masks = first_global_masks(&[l, l - 4, 1], l);
    let dropout = DropoutConfig::new(0.0).init();
    let key_global = LinearConfig::new(hidden, hidden).init::<A>(&device);
    let value_global = LinearConfig::new(hidden, hidden).init::<A>(&device);
    let query = Tensor::<A, 4>::random([b, h, 1, d], Distribution::Normal(0.0, 1.0), &device)
        .require_grad();
    let states = Tensor::<A, 3>::random([b, l, hidden], Distribution::Normal(0.0, 1.0), &device)
        .require_grad();
    let heads = |x: Tensor<A, 3>| x.reshape([b, l, h, d]).swap_dims(1, 2);
    let run = |factored: bool| {
        let out = if factored {
            first_token_global_attention(
                query.clone(),
                states.clone(),
                &key_global,
                &value_global,
                &masks,
                &dropout,
            )
        } else {
            global_attention(
                query.clone(),
                heads(key_global.forward(states.clone())),
                heads(value_global.forward(states.clone())),
                &masks,
                &dropout,
            )
        };
        let grads = (out.clone() * out.clone().cos()).sum().backward();
        let grad = |name: &str, data: Option<TensorData>| (name.to_string(), data.expect(name));
        let bias = |linear: &burn::nn::Linear<A>| linear.bias.as_ref().unwrap().grad(&grads);
        let all = [
            grad("query", query.grad(&grads).map(|g| g.into_data())),
            grad("hidden_states", states.grad(&grads).map(|g| g.into_data())),
            grad(
                "key_global.weight",
                key_global.weight.grad(&grads).map(|g| g.into_data()),
            ),
            grad("key_global.bias", bias(&key_global).map(|g| g.into_data())),
            grad(
                "value_global.weight",
                value_global.weight.grad(&grads).map(|g| g.into_data()),
            ),
            grad(
                "value_global.bias",
                bias(&value_global).map(|g| g.into_data()),
            ),
        ];
        (out.into_data(), all)
    };
    let (expected, expected_grads) = run(false);
    let (out, grads) = run(true);
    assert_eq!(expected.dtype, DType::F64, "not computed in f64");
    assert_close(out, expected, 1e-9, 1e-9, "output");
    for ((name, g), (_, e)) in grads.into_iter().zip(expected_grads) {
        let scale = e.iter::<f64>().fold(0f64, |m, v| m.max(v.abs())) as f32;
        if name == "key_global.bias" {
            // `q · bk` shifts every score of a row alike: the softmax does not see it, so the
            // gradient is zero up to rounding on both paths.
            let largest = g.iter::<f64>().fold(scale as f64, |m, v| m.max(v.abs()));
            assert!(largest < 1e-12, "{name}: {largest}");
            continue;
        }
        assert!(scale > 0.0, "{name}: zero gradient");
        assert_close(g, e, 1e-9, 1e-9 * scale, &format!("d/d{name}"));
    }
}

/// Every parameter's gradient as [`Param::grad`] gives it.
struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<(ParamId, Option<TensorData>)>,
}

impl ModuleVisitor<A> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
        let grad = param.grad(self.grads).map(|g| g.into_data());
        self.out.push((param.id, grad));
    }
}

/// `forward_pooled` against `forward(..).pooler_output`: the same vectors and the same gradient
/// for every parameter, except the last layer's local projections, whose gradient through the
/// full forward is exactly zero and which the pooled forward does not use at all. Also on the
/// patterns where it must fall back to the full forward (no global token in a row, the `avg`
/// pooler).
#[test]
fn pooled_forward_equals_the_full_forward_with_gradients() {
    let device = Default::default();
    let config = RecformerConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..tiny_config(4, 3)
    };
    A::seed(&device, 5);
    let model = config.init_model::<A>(&device);
    let outside = model.params_outside_pooled();
    assert_eq!(outside.len(), 6, "query, key, value weights and biases");
    let weights = Tensor::<A, 2>::random([3, 32], Distribution::Normal(0.0, 1.0), &device);
    let cases = [
        ("cls", Pooler::Cls, false),
        ("first row not global", Pooler::Cls, true),
        ("avg", Pooler::Avg, false),
    ];
    for (what, pooler, drop_one_global) in cases {
        for imp in [AttentionImpl::Dense, AttentionImpl::Sliding] {
            let model = model.clone().with_attention_impl(imp).with_pooler(pooler);
            let mut input = batch_on::<A>(&[11, 8, 3], &config, 23);
            if drop_one_global {
                let ones = Tensor::<A, 2, Int>::ones([1, 1], &device);
                input.global_attention_mask = input
                    .global_attention_mask
                    .slice_assign([1..2, 0..1], ones.zeros_like());
            }
            let grads_of = |pooled: bool| {
                let z = if pooled {
                    model.forward_pooled(input.clone())
                } else {
                    model.forward(input.clone()).pooler_output
                };
                let grads = (z.clone() * weights.clone()).sum().backward();
                let mut visitor = CollectGrads {
                    grads: &grads,
                    out: Vec::new(),
                };
                model.visit(&mut visitor);
                (z.into_data(), visitor.out)
            };
            let label = format!("{what} {imp:?}");
            let (full, full_grads) = grads_of(false);
            let (pooled, pooled_grads) = grads_of(true);
            assert_eq!(full.dtype, DType::F64, "not computed in f64");
            assert_close(pooled, full, 1e-9, 1e-9, &format!("{label} vectors"));
            let trimmed = what == "cls";
            for ((id, p), (_, f)) in pooled_grads.into_iter().zip(full_grads) {
                match (p, f) {
                    (p, Some(f)) if trimmed && outside.contains(&id) => {
                        assert!(p.is_none(), "{label}: {id} used by the pooled forward");
                        assert!(f.iter::<f64>().all(|v| v == 0.0), "{label}: {id} not zero");
                    }
                    (Some(p), Some(f)) => {
                        let scale = f.iter::<f64>().fold(0f64, |m, v| m.max(v.abs())) as f32;
                        assert_close(p, f, 1e-9, 1e-9 * scale, &format!("{label} {id}"));
                    }
                    (p, f) => {
                        assert!(
                            p.is_none() && f.is_none(),
                            "{label}: {id} only one has a gradient"
                        )
                    }
                }
            }
        }
    }
}
