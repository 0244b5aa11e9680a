//! `recformer_model::pretrained`: HF BERT / RoBERTa / Longformer → RecFormer, function-preserving.
//!
//! Fixtures: tiny random HF models with perturbed weights and their own hidden states / MLM logits,
//! written by `scripts/gen_pretrained_fixtures.py` (HF transformers 4.28).

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use common::{assert_close, fixture, read_tensors, ATOL, RTOL};
use recformer_model::backend::Cpu;
use recformer_model::pretrained::{convert, FromPretrainedConfig, Origin, SourceKind};
use recformer_model::{
    load_checkpoint, AttentionImpl, Error, RecformerForPretraining, RecformerInput,
};

fn source(name: &str) -> PathBuf {
    fixture(&format!("pretrained/{name}"))
}

/// RecFormer inputs for the fixture's ids: token types and item positions as RecFormer would
/// produce them for one item (they must not matter: every type row is the source's type-0 row,
/// item positions start at zero).
fn input(ids: &TensorData, device: &burn::tensor::Device<Cpu>) -> RecformerInput<Cpu> {
    let ids: Tensor<Cpu, 2, Int> = Tensor::from_data(ids.clone().convert::<i64>(), device);
    let [b, l] = ids.dims();
    let types: Vec<i64> = (0..b * l)
        .map(|i| match i % l {
            0 => 0,
            1 | 4 => 1,
            _ => 2,
        })
        .collect();
    let items: Vec<i64> = (0..b * l).map(|i| (i % l).min(1) as i64).collect();
    RecformerInput::with_cls_global(
        ids,
        Tensor::ones([b, l], device),
        Tensor::from_data(TensorData::new(types, [b, l]), device),
        Tensor::from_data(TensorData::new(items, [b, l]), device),
    )
}

fn check_source(name: &str, kind: SourceKind, has_mlm: bool) {
    let device = Default::default();
    let expected = read_tensors(&format!("pretrained/{name}/expected.safetensors"));
    let (model, config, report) = RecformerForPretraining::<Cpu>::from_pretrained(
        &source(name),
        &FromPretrainedConfig::default(),
        &device,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(report.kind, kind);
    assert_eq!(config.attention_window, vec![64; config.num_hidden_layers]);
    for attention_impl in [
        AttentionImpl::Dense,
        AttentionImpl::Sliding,
        AttentionImpl::Auto,
    ] {
        let encoder = model.longformer.clone().with_attention_impl(attention_impl);
        let out = encoder.forward(input(&expected["input_ids"], &device));
        let what = format!("{name} {attention_impl:?}");
        assert_close(
            out.last_hidden_state.to_data(),
            expected["last_hidden_state"].clone(),
            RTOL,
            ATOL,
            &format!("{what} last_hidden_state"),
        );
        if has_mlm {
            let logits = model.lm_head.forward(out.last_hidden_state);
            assert_close(
                logits.to_data(),
                expected["mlm_logits"].clone(),
                RTOL,
                ATOL,
                &format!("{what} mlm_logits"),
            );
        }
    }
    assert_eq!(report.source_had_mlm_head(), has_mlm, "{name}");
}

#[test]
fn bert_masked_lm_bin_reproduces_hidden_states_and_logits() {
    check_source("bert", SourceKind::Bert, true);
    let c = convert(&source("bert"), &FromPretrainedConfig::default()).unwrap();
    // `cls.predictions.decoder.weight` is absent (tied): the decoder is the word embeddings.
    let decoder = c.report.row("lm_head.decoder.weight").unwrap();
    assert_eq!(decoder.origin, Origin::Derived);
    assert_eq!(
        c.tensors["lm_head.decoder.weight"],
        c.tensors["longformer.embeddings.word_embeddings.weight"]
    );
    let dropped: Vec<&str> = c.report.dropped.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        dropped.contains(&"cls.predictions.decoder.bias"),
        "{dropped:?}"
    );
    assert!(dropped.contains(&"embeddings.position_ids"), "{dropped:?}");
    // Geometry from the source config, not from RecFormer defaults.
    assert_eq!(c.config.pad_token_id, 0);
    assert_eq!(c.config.layer_norm_eps, 1e-12);
    assert_eq!(c.config.vocab_size, 44);
    assert_eq!(c.config.max_token_num, 40);
    assert_eq!(c.config.max_position_embeddings, 41);
}

#[test]
fn roberta_model_safetensors_reproduces_hidden_states_and_gets_a_new_head() {
    check_source("roberta", SourceKind::Roberta, false);
    let c = convert(&source("roberta"), &FromPretrainedConfig::default()).unwrap();
    let dropped: Vec<&str> = c.report.dropped.iter().map(|(k, _)| k.as_str()).collect();
    assert!(dropped.contains(&"pooler.dense.weight"), "{dropped:?}");
    assert!(dropped.contains(&"pooler.dense.bias"), "{dropped:?}");
    assert_eq!(
        c.report.row("lm_head.dense.weight").unwrap().origin,
        Origin::Fresh
    );
    assert_eq!(
        c.tensors["lm_head.decoder.weight"],
        c.tensors["longformer.embeddings.word_embeddings.weight"]
    );
    // Global projections are copies of the local ones.
    let g = c
        .report
        .row("longformer.encoder.layer.1.attention.self.key_global.weight")
        .unwrap();
    assert_eq!(g.origin, Origin::Derived);
    assert_eq!(
        c.tensors["longformer.encoder.layer.1.attention.self.key_global.weight"],
        c.tensors["longformer.encoder.layer.1.attention.self.key.weight"]
    );
    // RoBERTa positions are RecFormer's: the table is copied as is.
    assert_eq!(c.config.pad_token_id, 1);
    assert_eq!(c.config.max_position_embeddings, 42);
    assert_eq!(c.config.layer_norm_eps, 1e-5);
}

#[test]
fn longformer_masked_lm_keeps_its_own_global_projections() {
    check_source("longformer", SourceKind::Longformer, true);
    let c = convert(&source("longformer"), &FromPretrainedConfig::default()).unwrap();
    let g = c
        .report
        .row("longformer.encoder.layer.0.attention.self.query_global.weight")
        .unwrap();
    assert_eq!(g.origin, Origin::Copied);
    assert_ne!(
        c.tensors["longformer.encoder.layer.0.attention.self.query_global.weight"],
        c.tensors["longformer.encoder.layer.0.attention.self.query.weight"]
    );
    assert_eq!(
        c.report.row("lm_head.dense.weight").unwrap().origin,
        Origin::Copied
    );
    assert_eq!(
        c.report.count(Origin::Fresh),
        1,
        "only item positions are fresh"
    );
}

#[test]
fn converted_weights_round_trip_through_the_strict_loader() {
    let dir = tempfile::tempdir().unwrap();
    let c = convert(&source("bert"), &FromPretrainedConfig::default()).unwrap();
    let path = dir.path().join("model.safetensors");
    c.save_safetensors(&path).unwrap();
    let device = Default::default();
    let loaded = load_checkpoint::<Cpu>(&path, &c.config, &device).unwrap();
    let built = c.into_model::<Cpu>(&device).unwrap();
    let expected = read_tensors("pretrained/bert/expected.safetensors");
    let a = loaded.model.forward(input(&expected["input_ids"], &device));
    let b = built
        .longformer
        .forward(input(&expected["input_ids"], &device));
    assert_eq!(a.last_hidden_state.to_data(), b.last_hidden_state.to_data());
}

#[test]
fn bert_positions_are_shifted_and_extended_by_repetition() {
    let options = FromPretrainedConfig {
        max_token_num: Some(100),
        ..Default::default()
    };
    let c = convert(&source("bert"), &options).unwrap();
    assert_eq!(c.config.max_token_num, 100);
    assert_eq!(c.config.max_position_embeddings, 101);
    let table = &c.tensors["longformer.embeddings.position_embeddings.weight"];
    let original = convert(&source("bert"), &FromPretrainedConfig::default()).unwrap();
    let first = &original.tensors["longformer.embeddings.position_embeddings.weight"];
    // Row 0 is the padding position; RecFormer position 1 + i holds BERT position i mod 40.
    assert!(table.row(0).iter().all(|v| *v == 0.0));
    for i in 0..100 {
        assert_eq!(table.row(1 + i), first.row(1 + i % 40), "position {i}");
    }
    assert_ne!(table.row(1), table.row(2));
    let detail = &c
        .report
        .row("longformer.embeddings.position_embeddings.weight")
        .unwrap()
        .detail;
    assert!(detail.contains("extended from 40 to 100"), "{detail}");
}

/// Copies a fixture source into a temporary directory and lets the test edit it.
fn edited(name: &str, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(source(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    edit(dir.path());
    dir
}

fn edit_config(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json[key] = value;
    std::fs::write(&path, json.to_string()).unwrap();
}

/// Rewrites the roberta fixture's weights with `edit` applied to its tensor list.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = file
        .tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(k, v)| {
            let data = v
                .data()
                .chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (k, v.shape().to_vec(), data)
        })
        .collect();
    edit(&mut tensors);
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&raw)
        .map(|((k, s, _), r)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), r)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

fn convert_err(dir: &Path) -> Error {
    convert(dir, &FromPretrainedConfig::default()).expect_err("conversion must fail")
}

#[test]
fn unknown_key_is_an_error_naming_file_and_key() {
    let dir = edited("roberta", |d| {
        edit_weights(d, |t| {
            t.push((
                "encoder.layer.0.attention.self.extra.weight".into(),
                vec![2],
                vec![0.0; 2],
            ))
        })
    });
    let e = convert_err(dir.path());
    assert!(matches!(e, Error::UnexpectedKeys { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("attention.self.extra.weight"),
        "{msg}"
    );
}

#[test]
fn missing_key_is_an_error_naming_file_and_key() {
    let dir = edited("roberta", |d| {
        edit_weights(d, |t| {
            t.retain(|(k, _, _)| k != "encoder.layer.1.output.dense.bias")
        })
    });
    let e = convert_err(dir.path());
    assert!(matches!(e, Error::MissingKeys { .. }), "{e}");
    assert!(
        e.to_string().contains("encoder.layer.1.output.dense.bias"),
        "{e}"
    );
}

#[test]
fn wrong_shape_is_an_error_naming_the_key() {
    // The config says FFN 48 while the weights have 64.
    let dir = edited("roberta", |d| {
        edit_config(d, "intermediate_size", 48.into())
    });
    let e = convert_err(dir.path());
    let Error::ShapeMismatches { mismatches, .. } = &e else {
        panic!("expected a shape error, got {e}");
    };
    assert!(mismatches
        .iter()
        .any(|m| m.key == "encoder.layer.0.intermediate.dense.weight"
            && m.expected == vec![48, 32]
            && m.found == vec![64, 32]));
}

#[test]
fn unknown_model_type_and_activation_are_errors_naming_the_key() {
    let dir = edited("roberta", |d| edit_config(d, "model_type", "gpt2".into()));
    let e = convert_err(dir.path());
    assert!(
        matches!(
            e,
            Error::ConversionConfig {
                key: "model_type",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("config.json") && e.to_string().contains("gpt2"),
        "{e}"
    );
    let dir = edited("bert", |d| edit_config(d, "hidden_act", "relu".into()));
    let e = convert_err(dir.path());
    assert!(
        matches!(
            e,
            Error::ConversionConfig {
                key: "hidden_act",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn conversion_is_deterministic() {
    let a = convert(&source("roberta"), &FromPretrainedConfig::default()).unwrap();
    let b = convert(&source("roberta"), &FromPretrainedConfig::default()).unwrap();
    assert_eq!(a.tensors, b.tensors);
    let fresh = &a.tensors["lm_head.dense.weight"];
    let std = (fresh.data.iter().map(|v| v * v).sum::<f32>() / fresh.data.len() as f32).sqrt();
    assert!((0.01..0.03).contains(&std), "fresh head std {std}");
}
