//! End-to-end tests of the two self-contained commands of the `recformer` binary: `bench` on
//! random weights (every precision it offers, and what it refuses) and `demo` on a generated
//! dataset.

mod common;

use common::{fails, ok, s};
use recformer_cli::synth::{generate, SynthConfig};

#[test]
fn bench_prints_a_table_row_and_rejects_unknown_presets() {
    let stdout = ok(&[
        "bench", "--preset", "tiny", "--batch", "2", "--tokens", "24", "--steps", "1", "--warmup",
        "0",
    ]);
    assert!(stdout.contains("| cpu | tiny | 2 x 24 |"), "{stdout}");
    fails(&["bench", "--preset", "huge"], "unknown preset `huge`");
    fails(&["bench", "--batch", "0"], "must be positive");
    fails(
        &["bench", "--device", "ndarray", "--precision", "bf16"],
        "precision bf16 needs a backend with half-precision tensors",
    );
    fails(
        &["bench", "--precision", "fp8"],
        "expected f32, bf16 or f16",
    );
    let stdout = ok(&[
        "bench",
        "--device",
        "flex",
        "--precision",
        "bf16",
        "--preset",
        "tiny",
        "--batch",
        "2",
        "--tokens",
        "24",
        "--steps",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(stdout.contains("| flex bf16 | tiny | 2 x 24 |"), "{stdout}");
}

#[test]
fn demo_runs_the_whole_pipeline_on_a_dataset_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&SynthConfig {
        num_items: 30,
        num_users: 40,
        min_len: 4,
        max_len: 6,
        ..SynthConfig::default()
    })
    .write_finetune_layout(&data)
    .unwrap();
    fails(
        &["demo", "--data", s(&data), "--finetune-epochs", "0"],
        "must be at least 1",
    );
    let out = dir.path().join("demo");
    let stdout = ok(&[
        "demo",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--pretrain-epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--batch-size",
        "8",
        "--quiet",
    ]);
    for row in ["RecFormer (finetuned)", "popularity", "random", "Top-5"] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["users"], 40);
    assert_eq!(summary["items"], 30);
    let ndcg = summary["recformer"]["NDCG@10"].as_f64().unwrap();
    let random = summary["random"]["NDCG@10"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ndcg), "{summary}");
    // The generated catalogue has structure the model can learn; the random baseline does not.
    assert!(
        ndcg > random,
        "finetuned {ndcg} vs random {random}: {summary}"
    );
    assert!(out.join("finetune/model/model.safetensors").is_file());
    assert!(out.join("finetune/metrics.png").is_file());
}
