//! End-to-end tests of the `recformer` binary around pretrained models and evaluation baselines:
//! `init` from an HF checkpoint, `baselines`, and the cold-start split of `evaluate`.

mod common;

use std::path::Path;

use common::{fails, ok, recformer, s};
use recformer_cli::synth::{generate, SynthConfig};

#[test]
fn init_converts_an_hf_model_that_pretrain_and_evaluate_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let world = generate(&SynthConfig {
        num_items: 30,
        num_users: 24,
        min_len: 4,
        max_len: 5,
        ..SynthConfig::default()
    });
    world.write_finetune_layout(&data).unwrap();
    let corpus = dir.path().join("corpus");
    world.write_pretrain_layout(&corpus).unwrap();
    let hf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recformer-model/tests/fixtures/pretrained/bert");

    let model = dir.path().join("init");
    let out = recformer(&[
        "init",
        "--from",
        s(&hf),
        "--out",
        s(&model),
        "--attention-window",
        "8",
        "--pooler",
        "avg",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("copied") && stderr.contains("dropped  cls.predictions.decoder.bias"),
        "{stderr}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["attention_window"][0], 8);
    assert_eq!(config["pooler_type"], "avg");
    assert_eq!(config["pad_token_id"], 0);

    let zero_shot = ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--zero-shot",
        "--quiet",
    ]);
    let m: serde_json::Value = serde_json::from_str(zero_shot.trim()).unwrap();
    assert_eq!(m["users"].as_u64(), Some(24), "{zero_shot}");

    let pt = dir.path().join("pt");
    let stdout = ok(&[
        "pretrain",
        "--model",
        s(&model),
        "--data",
        s(&corpus),
        "--out",
        s(&pt),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--set",
        "val_check_interval=0",
        "--quiet",
    ]);
    assert!(stdout.contains("pretraining done"), "{stdout}");

    // A fresh model with explicitly frozen (random) word embeddings is refused.
    let tok = dir.path().join("tok");
    ok(&[
        "tokenizer",
        "train",
        "--data",
        s(&data),
        "--vocab-size",
        "200",
        "--out",
        s(&tok),
    ]);
    fails(
        &[
            "pretrain",
            "--data",
            s(&corpus),
            "--tokenizer",
            s(&tok),
            "--preset",
            "tiny",
            "--out",
            s(&dir.path().join("fresh")),
            "--set",
            "fix_word_embedding=true",
        ],
        "freeze random word embeddings",
    );
    // Unknown source architectures are refused with the key named.
    let gpt = dir.path().join("gpt");
    std::fs::create_dir_all(&gpt).unwrap();
    std::fs::write(
        gpt.join("config.json"),
        r#"{"model_type": "gpt2", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8}"#,
    )
    .unwrap();
    fails(
        &["init", "--from", s(&gpt), "--out", s(&dir.path().join("x"))],
        "`model_type`: `gpt2` cannot be converted",
    );
}

#[test]
fn baselines_and_cold_start_split_of_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let world = generate(&SynthConfig {
        num_items: 160,
        num_users: 60,
        min_len: 4,
        max_len: 6,
        ..SynthConfig::default()
    });
    world.write_finetune_layout(&data).unwrap();
    let hf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recformer-model/tests/fixtures/pretrained/bert");
    let model = dir.path().join("m");
    ok(&["init", "--from", s(&hf), "--out", s(&model)]);

    let num = |v: &serde_json::Value, key: &str| -> f64 {
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no number {key} in {v}"))
    };
    let users = |v: &serde_json::Value| v["users"].as_u64().expect("users") as f64;
    // users-weighted mean of the groups = the whole, for every per-user mean metric
    let check_groups = |whole: &serde_json::Value| {
        let (a, b) = (&whole["in_set"], &whole["cold"]);
        assert_eq!(users(a) + users(b), users(whole), "{whole}");
        for key in ["NDCG@10", "Recall@10", "NDCG@50", "Recall@50", "MRR"] {
            let mix = (num(a, key) * users(a) + num(b, key) * users(b)) / users(whole);
            assert!((mix - num(whole, key)).abs() < 1e-9, "{key}: {whole}");
        }
    };

    let stdout = ok(&[
        "baselines",
        "--data",
        s(&data),
        "--model",
        s(&model),
        "--cold-start",
        "--quiet",
    ]);
    let b: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for name in ["popularity", "random", "text_newest_item"] {
        let m = &b[name];
        assert_eq!(users(m), 60.0, "{name}: {stdout}");
        for key in ["NDCG@10", "Recall@10", "NDCG@50", "Recall@50", "MRR"] {
            assert!((0.0..=1.0).contains(&num(m, key)), "{name} {key}: {stdout}");
        }
        check_groups(m);
    }
    assert!(
        num(&b["popularity"], "NDCG@10") > num(&b["random"], "NDCG@10"),
        "{stdout}"
    );

    // without a model: no text baseline; the same popularity numbers; a markdown table on stderr
    let out = recformer(&["baselines", "--data", s(&data), "--max-users", "10"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("| popularity | 10 |"), "{stderr}");
    let small: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(small.get("text_newest_item").is_none() && small.get("in_set").is_none());
    assert_eq!(users(&small["random"]), 10.0);

    let stdout = ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--zero-shot",
        "--cold-start",
        "--quiet",
    ]);
    let e: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(users(&e), 60.0, "{stdout}");
    check_groups(&e);
    // the cold group is the same set of users for every method
    assert_eq!(
        users(&e["cold"]),
        users(&b["popularity"]["cold"]),
        "{stdout}"
    );
    assert!(
        users(&e["cold"]) > 0.0 && users(&e["in_set"]) > 0.0,
        "{stdout}"
    );
}
