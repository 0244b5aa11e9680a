//! `recformer init` on a real pretrained encoder: `../shared/data/minilm-l6-v2`
//! (sentence-transformers/all-MiniLM-L6-v2, HF `BertModel`) converted and compared with HF's own
//! hidden states on real Scientific items. Expected values: `tests/fixtures/minilm_scientific.json`,
//! written by `crates/recformer-model/scripts/gen_pretrained_fixtures.py` (transformers 4.28).

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use recformer::data::{FinetuneDataset, RecformerTokenizer};
use recformer::model::backend::Cpu;
use recformer::model::pretrained::FromPretrainedConfig;
use recformer::model::{AttentionImpl, Pooler, RecformerInput};
use recformer::ModelDir;

/// The shared data directory with all-MiniLM-L6-v2 and the Scientific dataset, or `None` (the
/// test is skipped and says so) when it is absent and was not asked for.
fn data_dir() -> Option<PathBuf> {
    recformer::data::shared_data::test_data_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["minilm-l6-v2/config.json", "scientific-recformer"],
    )
}

#[derive(serde::Deserialize)]
struct Expected {
    items: Vec<ExpectedItem>,
}

#[derive(serde::Deserialize)]
struct ExpectedItem {
    item: String,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    cls: Vec<f32>,
    mean: Vec<f32>,
}

fn expected() -> Expected {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_scientific.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0f32, f32::max);
    eprintln!("{what}: worst |ours - HF| {worst:.3e}");
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "{what}: max |diff| {worst} (scale {scale})"
    );
}

#[test]
fn converted_minilm_reproduces_hf_vectors_on_scientific_items() {
    let Some(data) = data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    // A window of 128 (one-sided 64) holds a whole item (at most 97 tokens) in full attention,
    // where the conversion is exact.
    let options = FromPretrainedConfig {
        attention_window: 128,
        ..Default::default()
    };
    let (md, report) =
        ModelDir::from_pretrained(&data.join("minilm-l6-v2"), out.path(), &options).unwrap();
    assert!(!report.source_had_mlm_head());
    assert_eq!(md.config().pad_token_id, 0);
    assert_eq!(md.config().hidden_size, 384);
    assert_eq!(md.config().max_token_num, 512);

    let dataset = FinetuneDataset::load(&data.join("scientific-recformer")).unwrap();
    let device = Default::default();
    let model = md
        .load::<Cpu>(&device)
        .unwrap()
        .model
        .with_attention_impl(AttentionImpl::Dense);
    let expected = expected();
    assert_eq!(expected.items.len(), 4);
    for item in &expected.items {
        // Tokens: the converted directory's tokenizer (MiniLM's tokenizer.json, its padding to 128
        // and truncation switched off) flattens the item as the official encode_item does.
        let iid = dataset
            .item_keys
            .iter()
            .position(|k| k == &item.item)
            .unwrap();
        let tokens = md
            .tokenizer()
            .encode_catalogue(std::slice::from_ref(&dataset.items[iid]), &md.data_config())
            .unwrap()
            .remove(0);
        let mut ids = vec![md.tokenizer().cls_token_id()];
        ids.extend(&tokens.input_ids);
        let mut types = vec![0];
        types.extend(&tokens.token_type_ids);
        assert_eq!(ids, item.input_ids, "item {} ids", item.item);
        assert_eq!(types, item.token_type_ids, "item {} types", item.item);

        let l = ids.len();
        let int =
            |v: Vec<i64>| Tensor::<Cpu, 2, Int>::from_data(TensorData::new(v, [1, l]), &device);
        let input = RecformerInput::with_cls_global(
            int(ids.iter().map(|&i| i as i64).collect()),
            int(vec![1; l]),
            int(types.iter().map(|&t| t as i64).collect()),
            int((0..l).map(|i| (i > 0) as i64).collect()),
        );
        for (pooler, reference) in [(Pooler::Cls, &item.cls), (Pooler::Avg, &item.mean)] {
            let model = model.clone().with_pooler(pooler);
            let out = model.forward(input.clone());
            let v: Vec<f32> = out.pooler_output.to_data().iter::<f32>().collect();
            assert_close(&v, reference, &format!("item {} {pooler:?}", item.item));
            let pooled: Vec<f32> = model
                .forward_pooled(input.clone())
                .to_data()
                .to_vec()
                .unwrap();
            assert_close(
                &pooled,
                reference,
                &format!("item {} {pooler:?} pooled", item.item),
            );
        }
    }
}

#[test]
fn minilm_tokenizer_json_padding_and_truncation_are_off() {
    let Some(data) = data_dir() else { return };
    let raw = std::fs::read_to_string(data.join("minilm-l6-v2/tokenizer.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert!(
        !json["padding"].is_null() && !json["truncation"].is_null(),
        "the file pads and truncates"
    );
    let source = recformer::train::model_dir::source_tokenizer(&data.join("minilm-l6-v2")).unwrap();
    let out = tempfile::tempdir().unwrap();
    source.save(out.path()).unwrap();
    let saved = RecformerTokenizer::from_dir(out.path()).unwrap();
    let text = "steel ".repeat(200);
    for tok in [&source, &saved] {
        let ids = tok.tokenize_plain(&text).unwrap();
        assert_eq!(ids.len(), 200, "no truncation at 128");
        assert!(ids.iter().all(|&i| i != tok.pad_token_id()), "no padding");
        let short = tok.tokenize_plain("title").unwrap();
        assert_eq!(short.len(), 1, "no padding to 128: {short:?}");
    }
}

#[test]
fn pad_id_disagreeing_with_the_config_is_an_error() {
    let Some(data) = data_dir() else { return };
    let src = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(data.join("minilm-l6-v2").join(f), src.path().join(f)).unwrap();
    }
    let cfg_path = src.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["pad_token_id"] = 1.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let e = ModelDir::from_pretrained(src.path(), out.path(), &Default::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("pad_token_id"),
        "{msg}"
    );
}

/// The tiny BERT fixture of `recformer-model` (no real data needed).
fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/recformer-model/tests/fixtures/pretrained/bert")
}

#[test]
fn tokenizer_larger_than_the_embedding_table_is_an_error() {
    let src = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny_bert()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, src.path().join(p.file_name().unwrap())).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let (md, _) = ModelDir::from_pretrained(src.path(), out.path(), &Default::default()).unwrap();
    assert_eq!(md.tokenizer().vocab_size(), 44);
    assert!(out
        .path()
        .join(recformer::train::model_dir::REPORT_FILE)
        .is_file());
    let vocab = src.path().join("vocab.txt");
    let mut text = std::fs::read_to_string(&vocab).unwrap();
    text.push_str("extra\nmore\n");
    std::fs::write(&vocab, text).unwrap();
    let e = ModelDir::from_pretrained(src.path(), out.path(), &Default::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("vocab.txt") && msg.contains("46 tokens") && msg.contains("vocab_size"),
        "{msg}"
    );
}
