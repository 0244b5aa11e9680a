//! End-to-end test of the issue-11 recipe's finetuning step: `finetune --config
//! configs/finetune-item-matrix.toml` from an `init`-converted model, with its progress as plain
//! lines when stderr is not a terminal, and an exported model that `evaluate` reproduces.

mod common;

use std::path::Path;

use common::{ok, recformer, s};
use recformer_cli::synth::{generate, SynthConfig};

#[test]
fn item_matrix_recipe_config_trains_and_exports_a_model_that_evaluate_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&SynthConfig {
        num_items: 30,
        num_users: 24,
        min_len: 4,
        max_len: 6,
        ..SynthConfig::default()
    })
    .write_finetune_layout(&data)
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let hf = root.join("crates/recformer-model/tests/fixtures/pretrained/bert");
    let model = dir.path().join("init");
    ok(&[
        "init",
        "--from",
        s(&hf),
        "--out",
        s(&model),
        "--max-tokens",
        "64",
        "--pooler",
        "avg",
        "--quiet",
    ]);

    let ft = dir.path().join("ft");
    let out = recformer(&[
        "finetune",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--out",
        s(&ft),
        "--config",
        s(&root.join("configs/finetune-item-matrix.toml")),
        "--epochs",
        "3",
        "--lr",
        "1e-2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // stderr is a pipe here: every task and every evaluation is a plain line
    for line in [
        "encode items: 30/30",
        "encode contexts: ",
        "[items] eval after epoch 2",
    ] {
        assert!(stderr.contains(line), "{line:?} missing in:\n{stderr}");
    }
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("finetune prints JSON");
    assert_eq!(result["variant"], "item-matrix");
    assert!(
        result["zero_shot_test"].is_null(),
        "the recipe reads test once"
    );
    assert!(result["optimizer_steps"].as_u64().unwrap() > 0);

    // the exported model (unchanged encoder + trained matrix) gives the run's own test numbers
    let m: serde_json::Value = serde_json::from_str(
        ok(&[
            "evaluate",
            "--model",
            s(&ft.join("model")),
            "--data",
            s(&data),
            "--quiet",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(m["item_matrix"], "stored");
    let (a, b) = (
        m["NDCG@10"].as_f64().unwrap(),
        result["test"]["NDCG@10"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "evaluate {a} vs finetune {b}");
}
