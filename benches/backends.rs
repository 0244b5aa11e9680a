//! Criterion benches of the hot paths on every compiled backend, random weights, offline:
//!
//! | group | work |
//! |---|---|
//! | `forward` | sequence vectors of full-length sequences (`forward_pooled`, no autodiff) |
//! | `encode_items` | [`recformer_train::encode_all_items`] over a synthetic catalogue (items of 30-45 tokens) |
//! | `finetune_step` | forward + full-softmax loss over a 4,344-item matrix + backward + AdamW |
//! | `pretrain_step` | two forwards (histories, target items) for IIC + two masked passes with the masked-only MLM loss, backward, AdamW |
//! | `rank` | full ranking of 256 user vectors against 4,344 items ([`recformer_train::evaluate::rank_batch`]) |
//!
//! ```text
//! cargo bench --bench backends                                # CPU backends, minilm + mini shapes
//! RECFORMER_BENCH_SHAPES=minilm,mini,base cargo bench --bench backends -- forward
//! CUDARC_CUDA_VERSION=13000 cargo bench --features cuda --bench backends
//! ```
//! Shapes (`RECFORMER_BENCH_SHAPES`, comma-separated; default `minilm,mini`): `minilm` (6 × 384,
//! the Scientific recipe's model, 64 tokens), `mini` (6 × 256, 512 tokens), `base` (12 × 768, 1024
//! tokens; slow on CPU, so opt-in). Batch sizes per shape are in [`Shape::batch`].

use std::time::Duration;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use recformer_data::ItemTokens;
use recformer_model::{l2_normalize, RecformerConfig, RecformerForPretraining};
use recformer_train::evaluate::rank_batch;
use recformer_train::loss::{finetune_loss, iic_loss, mlm_loss_lean};
use recformer_train::optim::FusedAdamW;
use recformer_train::throughput::{preset, synthetic_input};
use recformer_train::{encode_all_items, InputBuilder, NoProgress};

/// The binary's allocator setup (mimalloc, freed memory kept), so the benches measure what
/// `recformer` runs.
#[path = "../crates/recformer-cli/src/alloc.rs"]
mod alloc;

/// Items in the synthetic catalogue of `finetune_step` and `rank` (Scientific's size).
const CATALOGUE: usize = 4344;
/// Items encoded by `encode_items`.
const ENCODED_ITEMS: usize = 256;

#[derive(Debug, Clone, Copy)]
enum Shape {
    MiniLm,
    Mini,
    Base,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::MiniLm => "minilm",
            Shape::Mini => "mini",
            Shape::Base => "base",
        }
    }

    /// Tokens per sequence.
    fn tokens(self) -> usize {
        match self {
            Shape::MiniLm => 64,
            Shape::Mini => 512,
            Shape::Base => 1024,
        }
    }

    /// Sequences per batch: the recipe's encode batch for `minilm`, the issue's CPU table for
    /// `mini`, one sequence for `base` (seconds per forward on CPU).
    fn batch(self) -> usize {
        match self {
            Shape::MiniLm => 64,
            Shape::Mini => 8,
            Shape::Base => 1,
        }
    }

    fn config(self) -> RecformerConfig {
        preset(self.name(), self.tokens()).expect("a valid preset")
    }
}

fn shapes() -> Vec<Shape> {
    let spec = std::env::var("RECFORMER_BENCH_SHAPES").unwrap_or_else(|_| "minilm,mini".into());
    spec.split(',')
        .map(|s| match s.trim() {
            "minilm" => Shape::MiniLm,
            "mini" => Shape::Mini,
            "base" => Shape::Base,
            other => panic!("RECFORMER_BENCH_SHAPES: unknown shape {other:?} (minilm, mini, base)"),
        })
        .collect()
}

/// A synthetic catalogue: items of 30-45 tokens (Scientific's items are ~40), key/value types.
fn catalogue(config: &RecformerConfig, n: usize) -> Vec<ItemTokens> {
    (0..n)
        .map(|i| {
            let len = 30 + (i * 7) % 16;
            ItemTokens {
                input_ids: (0..len)
                    .map(|t| (1000 + (i * 31 + t * 17) % (config.vocab_size - 1000)) as u32)
                    .collect(),
                token_type_ids: (0..len).map(|t| if t % 8 < 2 { 1 } else { 2 }).collect(),
            }
        })
        .collect()
}

fn builder(config: &RecformerConfig) -> InputBuilder {
    InputBuilder {
        cls_token_id: 101,
        pad_token_id: config.pad_token_id as u32,
        data_config: recformer_train::model_dir::data_config(config),
    }
}

fn optimizer<B: AutodiffBackend>() -> impl Optimizer<RecformerForPretraining<B>, B> {
    // The training loop's optimizer (fused on NdArray, Burn's AdamW elsewhere).
    FusedAdamW::new(0.01, 1e-8).init()
}

/// Registers every group for backend `B` under the name `backend`.
fn bench_backend<B: AutodiffBackend>(c: &mut Criterion, backend: &str, device: B::Device) {
    for shape in shapes() {
        let config = shape.config();
        let (batch, tokens) = (shape.batch(), shape.tokens());
        let id = |what: &str| BenchmarkId::new(what, backend);
        let mut group = c.benchmark_group(format!("{} {batch}x{tokens}", shape.name()));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));

        let model = RecformerForPretraining::<B>::init(&config, &device);
        let infer = model.valid();
        let input = synthetic_input::<B::InnerBackend>(&config, batch, tokens, &device);
        group.bench_function(id("forward"), |b| {
            b.iter(|| infer.longformer.forward_pooled(input.clone()).into_data())
        });

        let items = catalogue(&config, ENCODED_ITEMS);
        let build = builder(&config);
        group.bench_function(id("encode_items"), |b| {
            b.iter(|| {
                encode_all_items(&infer.longformer, &items, &build, 64, &device, &NoProgress)
                    .into_data()
            })
        });

        let matrix = l2_normalize(Tensor::<B, 2>::random(
            [CATALOGUE, config.hidden_size],
            Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let labels: Vec<usize> = (0..batch).map(|i| (i * 997) % CATALOGUE).collect();
        let train_input = synthetic_input::<B>(&config, batch, tokens, &device);
        let mut optim = optimizer::<B>();
        let mut current = Some(model.clone());
        group.bench_function(id("finetune_step"), |b| {
            b.iter(|| {
                let m = current.take().expect("model");
                let z = m.longformer.forward_pooled(train_input.clone());
                let loss = finetune_loss(z, matrix.clone(), &labels, config.temp, 4096);
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                current = Some(optim.step(5e-5, m, grads));
            })
        });

        // IIC between histories and single items, then the masked-only MLM of both sides.
        let item_input = synthetic_input::<B>(&config, batch, tokens.min(64), &device);
        let mlm_labels = |len: usize| -> Vec<i64> {
            (0..batch * len)
                .map(|i| {
                    if i % 7 == 3 {
                        1000 + (i % 500) as i64
                    } else {
                        -100
                    }
                })
                .collect()
        };
        let (labels_a, labels_b) = (mlm_labels(tokens), mlm_labels(tokens.min(64)));
        let mut optim = optimizer::<B>();
        group.bench_function(id("pretrain_step"), |b| {
            b.iter(|| {
                let m = current.take().expect("model");
                let z1 = m.longformer.forward_pooled(train_input.clone());
                let z2 = m.longformer.forward_pooled(item_input.clone());
                let iic = iic_loss(z1, z2, config.temp).loss;
                let ha = m.longformer.forward(train_input.clone()).last_hidden_state;
                let hb = m.longformer.forward(item_input.clone()).last_hidden_state;
                let mlm = mlm_loss_lean(&m.lm_head, ha, &labels_a)
                    + mlm_loss_lean(&m.lm_head, hb, &labels_b);
                let loss = iic + mlm.mul_scalar(0.1);
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                current = Some(optim.step(5e-5, m, grads));
            })
        });

        let users = Tensor::<B::InnerBackend, 2>::random(
            [256, config.hidden_size],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let items_n = matrix.clone().inner();
        let user_labels: Vec<usize> = (0..256).map(|i| (i * 31) % CATALOGUE).collect();
        group.bench_function(id("rank"), |b| {
            b.iter(|| rank_batch(users.clone(), &items_n, &user_labels, None, config.temp))
        });
        group.finish();
    }
}

fn backends(c: &mut Criterion) {
    alloc::keep_freed_memory();
    #[cfg(feature = "ndarray")]
    bench_backend::<recformer_model::backend::NdArrayAutodiff>(c, "ndarray", Default::default());
    #[cfg(feature = "flex")]
    bench_backend::<recformer_model::backend::FlexAutodiff>(c, "flex", Default::default());
    #[cfg(feature = "wgpu")]
    bench_backend::<recformer_model::backend::WgpuAutodiff>(c, "wgpu", Default::default());
    #[cfg(feature = "cuda")]
    bench_backend::<recformer_model::backend::CudaAutodiff>(c, "cuda", Default::default());
}

criterion_group!(benches, backends);
criterion_main!(benches);
