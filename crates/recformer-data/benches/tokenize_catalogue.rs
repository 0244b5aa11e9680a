//! Tokenising the whole Scientific catalogue (4,344 items) with `encode_catalogue` (rayon),
//! RoBERTa byte-level BPE and BERT WordPiece. Needs the shared data (`$RECFORMER_DATA_DIR` or
//! `../shared/data`). `encode_item_par` is the same work without the de-duplication of repeated
//! brand/category strings that `encode_catalogue` does.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use recformer_data::{FinetuneDataset, RecformerDataConfig, RecformerTokenizer};

fn data_dir() -> PathBuf {
    let dir = recformer_data::shared_data::shared_data_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    );
    assert!(
        dir.join("scientific-recformer").is_dir(),
        "shared data not found at {}: set RECFORMER_DATA_DIR",
        dir.display()
    );
    dir
}

fn bench(c: &mut Criterion) {
    let data = data_dir();
    let ds = FinetuneDataset::load(&data.join("scientific-recformer")).unwrap();
    let mut group = c.benchmark_group("tokenize_catalogue_scientific");
    group.throughput(Throughput::Elements(ds.items.len() as u64));
    group.sample_size(20);
    for (name, dir, cfg) in [
        (
            "roberta-base",
            "tokenizers/roberta-base",
            RecformerDataConfig::base(),
        ),
        (
            "bert-base-uncased",
            "tokenizers/bert-base-uncased",
            RecformerDataConfig::mini(),
        ),
    ] {
        let tok = RecformerTokenizer::from_dir(&data.join(dir)).unwrap();
        group.bench_function(format!("{name}/encode_catalogue"), |b| {
            b.iter(|| tok.encode_catalogue(&ds.items, &cfg).unwrap())
        });
        // Without the de-duplication of repeated strings: encode_item per item, in parallel.
        group.bench_function(format!("{name}/encode_item_par"), |b| {
            b.iter(|| {
                ds.items
                    .par_iter()
                    .map(|item| tok.encode_item(item, &cfg).unwrap())
                    .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
