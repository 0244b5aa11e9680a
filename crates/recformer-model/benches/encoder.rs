//! Encoder forward of the Recformer-mini config on 8 × 512 tokens (random init, synthetic ids):
//! dense attention oracle vs banded fast path, on Flex and NdArray (both default features).
//!
//! `cargo bench -p recformer-model --bench encoder`

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use recformer_model::{AttentionImpl, RecformerConfig, RecformerInput};

const BATCH: usize = 8;
const SEQ_LEN: usize = 512;

fn input<B: Backend>(config: &RecformerConfig, device: &B::Device) -> RecformerInput<B> {
    let n = BATCH * SEQ_LEN;
    let ids: Vec<i64> = (0..n)
        .map(|i| {
            if i % SEQ_LEN == 0 {
                101
            } else {
                1000 + (i * 7919 % 20000) as i64
            }
        })
        .collect();
    let types: Vec<i64> = (0..n)
        .map(|i| {
            if i % SEQ_LEN == 0 {
                0
            } else {
                1 + (i % 2) as i64
            }
        })
        .collect();
    let items: Vec<i64> = (0..n)
        .map(|i| {
            (i % SEQ_LEN)
                .div_ceil(64)
                .min(config.max_item_embeddings - 1) as i64
        })
        .collect();
    let t =
        |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [BATCH, SEQ_LEN]), device);
    RecformerInput::with_cls_global(
        t(ids),
        Tensor::ones([BATCH, SEQ_LEN], device),
        t(types),
        t(items),
    )
}

fn bench_backend<B: Backend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let config = RecformerConfig::mini();
    let model = config.init_model::<B>(&device);
    let x = input::<B>(&config, &device);
    let mut group = c.benchmark_group(format!("encoder/mini_b{BATCH}_l{SEQ_LEN}"));
    group.sample_size(10);
    for imp in [AttentionImpl::Dense, AttentionImpl::Sliding] {
        let model = model.clone().with_attention_impl(imp);
        group.bench_function(format!("{backend}/{imp:?}"), |b| {
            b.iter(|| {
                let out = model.forward(black_box(x.clone()));
                // Force the computation to finish (lazy backends).
                black_box(out.pooler_output.into_data())
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    #[cfg(feature = "flex")]
    bench_backend::<burn::backend::Flex>(c, "flex");
    #[cfg(feature = "ndarray")]
    bench_backend::<burn::backend::NdArray>(c, "ndarray");
}

criterion_group!(encoder, benches);
criterion_main!(encoder);
