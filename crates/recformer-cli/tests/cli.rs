//! End-to-end tests of the `recformer` binary on small data: every subcommand, plus bad
//! arguments that must fail with a helpful message and a non-zero exit.

mod common;

use std::io::Write;
use std::path::Path;

use common::{fails, ok, s};
use recformer_cli::synth::{generate, SynthConfig};

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
    // The index keeps the item keys, and evaluate reads it back with --items.
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert!(meta["item_keys"].contains(&world.items[0].key), "{meta:?}");
    let fed = ok(&[
        "evaluate",
        "--model",
        s(&ft),
        "--data",
        s(&data),
        "--items",
        s(&items),
        "--quiet",
    ]);
    let fed: serde_json::Value = serde_json::from_str(fed.trim()).unwrap();
    assert_eq!(fed["item_matrix"], "stored");
    assert_eq!(fed["users"].as_u64(), Some(48));

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
    // A finetuned model directory serves by itself (no --data); the history is left out by
    // default, and --include-history keeps its items as candidates.
    let two = format!("{k0},{k1}");
    let serve = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "recommend",
            "--model",
            s(&ft),
            "--history",
            &two,
            "--k",
            "40",
            "--json",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let out: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        out[0]["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect()
    };
    let without = serve(&[]);
    assert_eq!(without.len(), 38);
    assert!(!without.contains(&k0) && !without.contains(&k1));
    let with = serve(&["--include-history"]);
    assert_eq!(with.len(), 40);
    assert!(with.contains(&k0) && with.contains(&k1));
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
