//! End-to-end tests of the `recformer` binary on small data: every subcommand, plus bad
//! arguments that must fail with a helpful message and a non-zero exit.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use recformer::demo::synth::{generate, SynthConfig};

fn recformer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recformer"))
        .args(args)
        .output()
        .expect("run the recformer binary")
}

fn ok(args: &[&str]) -> String {
    let out = recformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "recformer {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn fails(args: &[&str], expected: &str) {
    let out = recformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "recformer {args:?} should fail");
    assert!(
        stderr.contains(expected),
        "recformer {args:?}: expected {expected:?} in:\n{stderr}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn help_lists_every_subcommand() {
    let help = ok(&["--help"]);
    for cmd in [
        "init",
        "prepare",
        "tokenizer",
        "pretrain",
        "finetune",
        "evaluate",
        "baselines",
        "encode-items",
        "recommend",
        "plot",
        "demo",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}:\n{help}");
    }
    assert!(help.contains("Examples:"));
}

#[test]
fn bad_arguments_fail_with_a_helpful_message() {
    fails(&["frobnicate"], "unrecognized subcommand");
    fails(&["evaluate", "--model", "x"], "--data");
    fails(
        &[
            "evaluate", "--model", "x", "--data", "y", "--split", "train",
        ],
        "possible values: val, test",
    );
    fails(
        &[
            "encode-items",
            "--model",
            "/nonexistent/model",
            "--data",
            "x",
            "--out",
            "y",
            "--device",
            "tpu",
        ],
        "tpu",
    );
    if !cfg!(feature = "cuda") {
        fails(&["demo", "--device", "cuda"], "cuda");
    }
    fails(
        &[
            "encode-items",
            "--model",
            "/nonexistent/model",
            "--data",
            "x",
            "--out",
            "y",
        ],
        "/nonexistent/model",
    );
    fails(&["plot", "/nonexistent/run"], "metrics.jsonl");
    fails(&["recommend", "--model", "m", "--data", "d"], "--history");
    fails(
        &[
            "finetune",
            "--model",
            "m",
            "--data",
            "d",
            "--out",
            "o",
            "--set",
            "no_such_field=1",
        ],
        "no_such_field",
    );
}

#[test]
fn prepare_writes_the_official_layouts_and_reports_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = dir.path().join("Cat_5.json");
    let meta = dir.path().join("meta_Cat.json.gz");
    let mut r = String::new();
    for u in 0..5 {
        for k in 0..5 {
            r.push_str(&format!(
                "{{\"reviewerID\": \"U{u}\", \"asin\": \"A{}\", \"unixReviewTime\": {}}}\n",
                (u + k) % 6,
                100 + k
            ));
        }
    }
    r.push_str("{not json\n");
    std::fs::write(&reviews, r).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..6 {
        writeln!(gz, "{{\"asin\": \"A{i}\", \"title\": \"Item {i}\", \"brand\": \"B\", \"category\": [\"C\", \"D\"]}}").unwrap();
    }
    writeln!(gz, "{{\"asin\": \"A9\", \"brand\": \"no title\"}}").unwrap();
    std::fs::write(&meta, gz.finish().unwrap()).unwrap();
    let out = dir.path().join("ft");
    let stdout = ok(&[
        "prepare",
        "finetune",
        "--reviews",
        s(&reviews),
        "--meta",
        s(&meta),
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains("users:        5"), "{stdout}");
    assert!(
        stdout.contains("Cat_5.json:26"),
        "bad JSON line must be reported with file:line:\n{stdout}"
    );
    assert!(
        stdout.contains("meta_Cat.json.gz:7"),
        "missing title must be reported:\n{stdout}"
    );
    for f in [
        "meta_data.json",
        "smap.json",
        "umap.json",
        "train.json",
        "val.json",
        "test.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let pt = dir.path().join("pt");
    let stdout = ok(&[
        "prepare",
        "pretrain",
        "--reviews",
        s(&reviews),
        "--meta",
        s(&meta),
        "--dev-reviews",
        s(&reviews),
        "--dev-meta",
        s(&meta),
        "--out",
        s(&pt),
    ]);
    assert!(stdout.contains("items:"), "{stdout}");
    for f in ["meta_data.json", "train.json", "dev.json"] {
        assert!(pt.join(f).is_file(), "{f} missing");
    }
    let truncated = dir.path().join("trunc.json.gz");
    let bytes = std::fs::read(&meta).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &[
            "prepare",
            "finetune",
            "--reviews",
            s(&reviews),
            "--meta",
            s(&truncated),
            "--out",
            s(&dir.path().join("x")),
        ],
        "trunc.json.gz",
    );
}

#[test]
fn tokenizer_pretrain_finetune_evaluate_encode_recommend_plot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let world = generate(&SynthConfig {
        num_items: 40,
        num_users: 48,
        min_len: 4,
        max_len: 6,
        ..SynthConfig::default()
    });
    world.write_finetune_layout(&data).unwrap();
    let corpus = dir.path().join("corpus");
    world.write_pretrain_layout(&corpus).unwrap();

    let tok = dir.path().join("tok");
    let stdout = ok(&[
        "tokenizer",
        "train",
        "--data",
        s(&data),
        "--vocab-size",
        "300",
        "--out",
        s(&tok),
    ]);
    assert!(stdout.contains("WordPiece"), "{stdout}");

    let pt = dir.path().join("pt");
    let stdout = ok(&[
        "pretrain",
        "--data",
        s(&corpus),
        "--tokenizer",
        s(&tok),
        "--preset",
        "tiny",
        "--out",
        s(&pt),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--accumulation",
        "1",
        "--set",
        "val_check_interval=0",
        "--quiet",
    ]);
    assert!(stdout.contains("pretraining done"), "{stdout}");
    assert!(pt.join("model/config.json").is_file() && pt.join("model/model.safetensors").is_file());

    let ft = dir.path().join("ft");
    let stdout = ok(&[
        "finetune",
        "--model",
        s(&pt),
        "--data",
        s(&data),
        "--out",
        s(&ft),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--accumulation",
        "1",
        "--set",
        "verbose=1",
        "--set",
        "warmup_steps=1",
        "--quiet",
    ]);
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("finetune prints JSON");
    assert!(result["test"]["NDCG@10"].is_number(), "{stdout}");
    assert!(ft.join("model/items.safetensors").is_file());
    assert!(ft.join("metrics.jsonl").is_file());

    for split in ["val", "test"] {
        let out = ok(&[
            "evaluate",
            "--model",
            s(&ft),
            "--data",
            s(&data),
            "--split",
            split,
            "--quiet",
        ]);
        let m: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        for key in ["NDCG@10", "Recall@10", "NDCG@50", "Recall@50", "MRR"] {
            let v = m[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} missing in {out}"));
            assert!((0.0..=1.0).contains(&v), "{key}={v}");
        }
        assert_eq!(m["users"].as_u64(), Some(48));
        assert_eq!(m["item_matrix"], "stored");
        if split == "test" {
            // The stored item matrix of the best checkpoint gives the run's own test numbers.
            let a = m["NDCG@10"].as_f64().unwrap();
            let b = result["test"]["NDCG@10"].as_f64().unwrap();
            assert!((a - b).abs() < 1e-5, "evaluate {a} vs finetune {b}");
        }
    }
    let zs = ok(&[
        "evaluate",
        "--model",
        s(&pt),
        "--data",
        s(&data),
        "--zero-shot",
        "--quiet",
    ]);
    let zs: serde_json::Value = serde_json::from_str(zs.trim()).unwrap();
    assert_eq!(zs["item_matrix"], "encoded");

    let items = dir.path().join("items.safetensors");
    ok(&[
        "encode-items",
        "--model",
        s(&ft),
        "--data",
        s(&data),
        "--out",
        s(&items),
        "--quiet",
    ]);
    let bytes = std::fs::read(&items).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("item_embeddings").unwrap();
    assert_eq!(t.shape()[0], 40);

    let new_items = dir.path().join("new.json");
    std::fs::write(&new_items, r#"{"NEW1": {"title": "Acmelab Compact beaker ACM-1", "brand": "Acmelab", "category": ["Industrial & Scientific", "Lab Glassware"]}}"#).unwrap();
    let k0 = world.items[0].key.clone();
    let k1 = world.items[1].key.clone();
    let hist = format!("{k0},{k1},NEW1");
    let out = ok(&[
        "recommend",
        "--model",
        s(&ft),
        "--data",
        s(&data),
        "--history",
        &hist,
        "--k",
        "5",
        "--json",
        "--exclude-history",
        "--new-items",
        s(&new_items),
        "--quiet",
    ]);
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    let recs = rec[0]["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 5);
    for r in recs {
        assert!(
            ![k0.as_str(), k1.as_str(), "NEW1"].contains(&r["key"].as_str().unwrap()),
            "history item recommended"
        );
    }
    let scores: Vec<f64> = recs.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "scores not sorted: {scores:?}"
    );
    fails(
        &[
            "recommend",
            "--model",
            s(&ft),
            "--data",
            s(&data),
            "--history",
            "NOPE",
            "--quiet",
        ],
        "NOPE",
    );
    let bad_new = dir.path().join("bad.json");
    std::fs::write(&bad_new, r#"{"X": {"brand": "b"}}"#).unwrap();
    fails(
        &[
            "recommend",
            "--model",
            s(&ft),
            "--data",
            s(&data),
            "--history",
            &k0,
            "--new-items",
            s(&bad_new),
            "--quiet",
        ],
        "missing field `title`",
    );

    if Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists()
        || std::env::var_os("RECFORMER_FONT").is_some()
    {
        let png = dir.path().join("m.png");
        ok(&["plot", s(&ft), "--out", s(&png)]);
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn bench_prints_a_table_row_and_rejects_unknown_presets() {
    let stdout = ok(&[
        "bench", "--preset", "tiny", "--batch", "2", "--tokens", "24", "--steps", "1", "--warmup",
        "0",
    ]);
    assert!(stdout.contains("| cpu | tiny | 2 x 24 |"), "{stdout}");
    fails(&["bench", "--preset", "huge"], "unknown preset `huge`");
    fails(&["bench", "--batch", "0"], "must be positive");
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
    assert!((0.0..=1.0).contains(&ndcg), "{summary}");
    assert!(out.join("finetune/model/model.safetensors").is_file());
    assert!(out.join("finetune/metrics.png").is_file());
}

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
        .join("crates/recformer-model/tests/fixtures/pretrained/bert");

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
        .join("crates/recformer-model/tests/fixtures/pretrained/bert");
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
