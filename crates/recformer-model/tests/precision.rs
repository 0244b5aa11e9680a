//! Mixed precision (`recformer_model::precision`) on Flex, the CPU backend with half-precision
//! tensors: bf16 / f16 products against the same model in f32, on the PyTorch fixtures' weights
//! and inputs. The outputs are f32, close to f32's and not equal to them (the products did run
//! in half precision); the gradients are f32 and point the same way; an AdamW step keeps the
//! parameters f32.
#![cfg(feature = "flex")]

mod common;

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{DType, Tensor, TensorData};
use common::{fixture, fixture_config, Case, CASES};
use recformer_model::{load_checkpoint, AttentionImpl, Precision, RecformerConfig, RecformerModel};

type A = Autodiff<Flex>;

/// Largest |a − e| over the largest |e|.
fn relative_error(actual: &TensorData, expected: &TensorData) -> f32 {
    let a: Vec<f32> = actual.iter::<f32>().collect();
    let e: Vec<f32> = expected.iter::<f32>().collect();
    assert_eq!(a.len(), e.len());
    let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(&e)
        .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
    worst / scale
}

/// The fixture checkpoint, dropout off (so that two forwards with autodiff compute the same).
fn model() -> RecformerModel<A> {
    let device = Default::default();
    let config = RecformerConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..fixture_config()
    };
    load_checkpoint::<A>(&fixture("pretraining.bin"), &config, &device)
        .expect("fixture checkpoint")
        .model
}

#[test]
fn half_precision_outputs_are_f32_and_close_to_f32s() {
    let device = Default::default();
    let kept = model().with_precision(Precision::Bf16).valid().precision;
    assert_eq!(kept, Precision::Bf16, "valid() keeps the precision");
    let f32_model = model().valid();
    for (precision, tolerance) in [(Precision::Bf16, 5e-2), (Precision::F16, 5e-3)] {
        for imp in [AttentionImpl::Dense, AttentionImpl::Sliding] {
            let reference = f32_model.clone().with_attention_impl(imp);
            let half = reference.clone().with_precision(precision);
            for name in CASES {
                let case = Case::load(name);
                let what = format!("{precision:?} {imp:?} {name}");
                let expected = reference.forward(case.input(&device));
                let out = half.forward(case.input(&device));
                let pooled = half.forward_pooled(case.input(&device));
                for (label, actual, e) in [
                    (
                        "last_hidden_state",
                        out.last_hidden_state,
                        &expected.last_hidden_state,
                    ),
                    (
                        "pooler_output",
                        out.pooler_output.unsqueeze(),
                        &expected.pooler_output.clone().unsqueeze(),
                    ),
                    (
                        "forward_pooled",
                        pooled.unsqueeze(),
                        &expected.pooler_output.clone().unsqueeze(),
                    ),
                ] {
                    let (actual, e): (TensorData, TensorData) =
                        (actual.into_data(), e.clone().into_data());
                    assert_eq!(actual.dtype, DType::F32, "{what} {label}: not f32");
                    let err = relative_error(&actual, &e);
                    println!("{what} {label}: {err:.2e} of max");
                    assert!(
                        err > 0.0,
                        "{what} {label}: identical to f32, no half-precision product ran"
                    );
                    assert!(err < tolerance, "{what} {label}: {err:.2e} of max");
                }
            }
        }
    }
}

/// Every parameter's gradient as [`Param::grad`] gives it, with the parameter's module path.
struct CollectGrads<'a> {
    grads: &'a <A as burn::tensor::backend::AutodiffBackend>::Gradients,
    path: Vec<String>,
    out: Vec<(String, ParamId, Option<TensorData>)>,
}

impl ModuleVisitor<A> for CollectGrads<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
        let grad = param.grad(self.grads).map(|g| g.into_data());
        self.out.push((self.path.join("."), param.id, grad));
    }
}

/// Every parameter's value type.
struct ParamTypes(Vec<DType>);

impl ModuleVisitor<A> for ParamTypes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
        self.0.push(param.val().dtype());
    }
}

fn cosine(a: &TensorData, b: &TensorData) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter::<f32>().zip(b.iter::<f32>()) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

#[test]
fn bf16_gradients_are_f32_and_agree_with_f32s_and_adamw_keeps_f32_parameters() {
    let device = Default::default();
    let case = Case::load(CASES[0]);
    let base = model().with_attention_impl(AttentionImpl::Sliding);
    // A fixed loss, so that the test computes the same on every run.
    let weights = Tensor::<A, 2>::from_floats([[0.7]], &device);
    let grads_of = |model: &RecformerModel<A>| {
        let z = model.forward_pooled(case.input(&device));
        let loss = (z.clone() * weights.clone().expand(z.dims())).sin().sum();
        let grads = loss.backward();
        let mut visitor = CollectGrads {
            grads: &grads,
            path: Vec::new(),
            out: Vec::new(),
        };
        model.visit(&mut visitor);
        visitor.out
    };
    let full = grads_of(&base);
    let half_model = base.clone().with_precision(Precision::Bf16);
    let half = grads_of(&half_model);
    // A key bias adds q_i·b_k to every score of query i's softmax row, local (`key.bias`) and
    // global (`key_global.bias`) alike, which the softmax does not see: its gradient is zero in
    // exact arithmetic and rounding noise in both precisions, with no direction to compare.
    let shift_only: Vec<ParamId> = base
        .encoder
        .layer
        .iter()
        .flat_map(|l| {
            let attn = &l.attention.self_attn;
            [&attn.key.bias, &attn.key_global.bias]
        })
        .filter_map(|b| b.as_ref().map(|b| b.id))
        .collect();
    let mut compared = 0;
    for ((name, id, h), (_, _, f)) in half.into_iter().zip(full) {
        match (h, f) {
            (Some(h), Some(f)) => {
                assert_eq!(h.dtype, DType::F32, "{id}: gradient not f32");
                let norm: f64 = f.iter::<f32>().map(|v| (v as f64).powi(2)).sum();
                if norm > 1e-12 && !shift_only.contains(&id) {
                    let c = cosine(&h, &f);
                    assert!(c > 0.99, "{name}: cosine {c} with the f32 gradient");
                    compared += 1;
                }
            }
            (None, None) => {}
            (h, f) => panic!(
                "{id}: gradient in one precision only ({} / {})",
                h.is_some(),
                f.is_some()
            ),
        }
    }
    assert!(compared > 20, "only {compared} gradients compared");

    let z = half_model.forward_pooled(case.input(&device));
    let grads = GradientsParams::from_grads(z.sum().backward(), &half_model);
    let mut optim = AdamWConfig::new().init::<A, RecformerModel<A>>();
    let stepped = optim.step(1e-3, half_model, grads);
    let mut types = ParamTypes(Vec::new());
    stepped.visit(&mut types);
    assert!(!types.0.is_empty());
    assert!(types.0.iter().all(|&t| t == DType::F32), "{:?}", types.0);
}
