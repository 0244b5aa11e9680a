//! Strict checkpoint loading: prefix detection, missing/unexpected keys, shape mismatches, the tied
//! MLM bias, and save -> load round trips.

mod common;

use std::path::Path;

use common::{assert_close, fixture, fixture_config, Case};
use recformer_model::backend::Cpu;
use recformer_model::{
    load_checkpoint, load_checkpoint_as, load_checkpoint_with, save_safetensors, CheckpointPrefix,
    Error, MlmHead,
};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

/// Copies `pretraining.safetensors` into `dst`, passing each (key, shape, f32 values) through `edit`
/// (`None` drops the tensor), then appends `extra` tensors.
fn rewrite(
    dst: &Path,
    edit: impl Fn(&str, Vec<usize>, Vec<f32>) -> Option<(String, Vec<usize>, Vec<f32>)>,
    extra: Vec<(String, Vec<usize>, Vec<f32>)>,
) {
    let bytes = std::fs::read(fixture("pretraining.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            // position_ids (int64): keep as is under the edited name.
            if let Some((k, _, _)) = edit(&name, view.shape().to_vec(), Vec::new()) {
                out.push((k, view.shape().to_vec(), view.data().to_vec(), view.dtype()));
            }
            continue;
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some((k, s, v)) = edit(&name, view.shape().to_vec(), values) {
            out.push((
                k,
                s,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                safetensors::Dtype::F32,
            ));
        }
    }
    for (k, s, v) in extra {
        out.push((
            k,
            s,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            safetensors::Dtype::F32,
        ));
    }
    let views: Vec<(String, TensorView)> = out
        .iter()
        .map(|(k, s, b, d)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, dst).unwrap();
}

fn load_err(path: &Path) -> Error {
    load_checkpoint::<Cpu>(path, &fixture_config(), &Default::default()).unwrap_err()
}

#[test]
fn unknown_prefix_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bert.safetensors");
    rewrite(
        &path,
        |k, s, v| {
            Some((
                k.replace("longformer.", "bert.")
                    .replace("lm_head.", "cls.predictions."),
                s,
                v,
            ))
        },
        vec![],
    );
    let err = load_err(&path);
    assert!(matches!(err, Error::UnknownPrefix { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("unknown key prefix") && msg.contains("bert."),
        "{msg}"
    );
}

#[test]
fn lightning_dump_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightning.safetensors");
    rewrite(
        &path,
        |k, s, v| Some((format!("_forward_module.model.{k}"), s, v)),
        vec![],
    );
    let err = load_err(&path);
    assert!(matches!(err, Error::LightningCheckpoint { .. }), "{err}");
}

#[test]
fn wrong_expected_prefix_is_a_clear_error() {
    let err = load_checkpoint_as::<Cpu>(
        &fixture("model.bin"),
        &fixture_config(),
        &Default::default(),
        CheckpointPrefix::SeqRec,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::PrefixMismatch {
                found: CheckpointPrefix::Model,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("SeqRec") && msg.contains("Model"), "{msg}");
}

#[test]
fn missing_key_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.safetensors");
    let dropped = "longformer.encoder.layer.1.attention.self.key_global.bias";
    rewrite(
        &path,
        |k, s, v| (k != dropped).then(|| (k.to_string(), s, v)),
        vec![],
    );
    match load_err(&path) {
        Error::MissingKeys { keys, .. } => assert_eq!(keys, vec![dropped.to_string()]),
        other => panic!("expected MissingKeys, got {other}"),
    }
}

#[test]
fn missing_lm_head_in_pretraining_style_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_head.safetensors");
    rewrite(
        &path,
        |k, s, v| (!k.starts_with("lm_head.")).then(|| (k.to_string(), s, v)),
        vec![],
    );
    match load_err(&path) {
        Error::MissingKeys { keys, .. } => {
            assert!(
                keys.contains(&"lm_head.decoder.weight".to_string()),
                "{keys:?}"
            );
            assert_eq!(keys.len(), 6, "{keys:?}");
        }
        other => panic!("expected MissingKeys, got {other}"),
    }
}

#[test]
fn unexpected_key_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unexpected.safetensors");
    rewrite(
        &path,
        |k, s, v| Some((k.to_string(), s, v)),
        vec![(
            "longformer.pooler.dense.bias".into(),
            vec![32],
            vec![0.0; 32],
        )],
    );
    match load_err(&path) {
        Error::UnexpectedKeys { keys, .. } => {
            assert_eq!(keys, vec!["longformer.pooler.dense.bias".to_string()])
        }
        other => panic!("expected UnexpectedKeys, got {other}"),
    }
}

#[test]
fn shape_mismatch_is_listed() {
    // Longformer's own token type table has 1 row; RecFormer's has 4.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.safetensors");
    let key = "longformer.embeddings.token_type_embeddings.weight";
    rewrite(
        &path,
        |k, s, v| {
            if k == key {
                Some((k.to_string(), vec![1, s[1]], v[..s[1]].to_vec()))
            } else {
                Some((k.to_string(), s, v))
            }
        },
        vec![],
    );
    let err = load_err(&path);
    let msg = err.to_string();
    match err {
        Error::ShapeMismatches { mismatches, .. } => {
            assert_eq!(mismatches.len(), 1);
            assert_eq!(mismatches[0].key, key);
            assert_eq!(mismatches[0].expected, vec![4, 32]);
            assert_eq!(mismatches[0].found, vec![1, 32]);
            assert!(msg.contains(key), "{msg}");
        }
        other => panic!("expected ShapeMismatches, got {other}"),
    }
}

#[test]
fn config_mismatch_is_a_shape_error() {
    let mut config = fixture_config();
    config.intermediate_size = 48;
    let err =
        load_checkpoint::<Cpu>(&fixture("model.bin"), &config, &Default::default()).unwrap_err();
    match err {
        Error::ShapeMismatches { mismatches, .. } => assert_eq!(mismatches.len(), 2 * 3),
        other => panic!("expected ShapeMismatches, got {other}"),
    }
}

#[test]
fn untied_mlm_bias_is_an_error_and_either_copy_suffices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("untied.safetensors");
    rewrite(
        &path,
        |k, s, v| {
            let v = if k == "lm_head.decoder.bias" {
                v.iter().map(|x| x + 1.0).collect()
            } else {
                v
            };
            Some((k.to_string(), s, v))
        },
        vec![],
    );
    assert!(matches!(load_err(&path), Error::TiedBiasMismatch { .. }));

    for dropped in ["lm_head.bias", "lm_head.decoder.bias"] {
        let path = dir.path().join("one_bias.safetensors");
        rewrite(
            &path,
            |k, s, v| (k != dropped).then(|| (k.to_string(), s, v)),
            vec![],
        );
        let loaded = load_checkpoint::<Cpu>(&path, &fixture_config(), &Default::default()).unwrap();
        let reference = load_checkpoint::<Cpu>(
            &fixture("pretraining.bin"),
            &fixture_config(),
            &Default::default(),
        )
        .unwrap();
        assert_close(
            loaded.lm_head.unwrap().bias.val().to_data(),
            reference.lm_head.unwrap().bias.val().to_data(),
            0.0,
            0.0,
            dropped,
        );
    }
}

#[test]
fn skipping_the_mlm_head_loads_the_same_encoder_and_still_checks_the_head() {
    let (config, device) = (fixture_config(), Default::default());
    let path = fixture("pretraining.safetensors");
    let full = load_checkpoint::<Cpu>(&path, &config, &device).unwrap();
    let lean = load_checkpoint_with::<Cpu>(&path, &config, &device, MlmHead::Skip).unwrap();
    assert!(full.lm_head.is_some() && lean.lm_head.is_none());
    assert_eq!(
        full.model
            .embeddings
            .word_embeddings
            .weight
            .val()
            .into_data(),
        lean.model
            .embeddings
            .word_embeddings
            .weight
            .val()
            .into_data()
    );
    let (f, l) = (&full.model.encoder.layer[0], &lean.model.encoder.layer[0]);
    assert_eq!(
        f.output.dense.weight.val().into_data(),
        l.output.dense.weight.val().into_data()
    );

    // The head's keys are checked all the same: a wrong shape, an untied bias, a missing key.
    let dir = tempfile::tempdir().unwrap();
    let skip = |path: &Path| {
        load_checkpoint_with::<Cpu>(path, &config, &device, MlmHead::Skip).unwrap_err()
    };
    let bad = dir.path().join("bad_head.safetensors");
    rewrite(
        &bad,
        |k, s, v| match k {
            "lm_head.dense.weight" => Some((k.to_string(), vec![1, s[1]], v[..s[1]].to_vec())),
            _ => Some((k.to_string(), s, v)),
        },
        vec![],
    );
    assert!(matches!(skip(&bad), Error::ShapeMismatches { .. }));
    rewrite(
        &bad,
        |k, s, v| match k {
            "lm_head.decoder.bias" => Some((k.to_string(), s, v.iter().map(|x| x + 1.0).collect())),
            _ => Some((k.to_string(), s, v)),
        },
        vec![],
    );
    assert!(matches!(skip(&bad), Error::TiedBiasMismatch { .. }));
    rewrite(
        &bad,
        |k, s, v| (k != "lm_head.dense.bias").then(|| (k.to_string(), s, v)),
        vec![],
    );
    assert!(matches!(skip(&bad), Error::MissingKeys { .. }));
}

#[test]
fn model_style_with_lm_head_keys_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare_with_head.safetensors");
    rewrite(
        &path,
        |k, s, v| Some((k.trim_start_matches("longformer.").to_string(), s, v)),
        vec![],
    );
    match load_err(&path) {
        Error::UnexpectedKeys { keys, .. } => {
            assert!(
                keys.iter().all(|k| k.starts_with("lm_head.")) && keys.len() == 7,
                "{keys:?}"
            )
        }
        other => panic!("expected UnexpectedKeys, got {other}"),
    }
}

#[test]
fn unsupported_extension_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.ckpt");
    std::fs::write(&path, b"x").unwrap();
    assert!(matches!(
        load_err(&path),
        Error::UnsupportedCheckpointFormat { .. }
    ));
    assert!(matches!(
        load_err(&dir.path().join("absent.bin")),
        Error::Io { .. }
    ));
}

#[test]
fn save_then_load_round_trips_every_style() {
    let device = Default::default();
    let config = fixture_config();
    let pre = load_checkpoint::<Cpu>(&fixture("pretraining.bin"), &config, &device).unwrap();
    let seq = load_checkpoint::<Cpu>(&fixture("seqrec.bin"), &config, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = Case::load("padded");
    let reference = pre.model.forward(case.input::<Cpu>(&device));

    let cases = [
        ("model.safetensors", None, None, CheckpointPrefix::Model),
        (
            "pre.safetensors",
            pre.lm_head.as_ref(),
            None,
            CheckpointPrefix::Pretraining,
        ),
        (
            "seq.safetensors",
            None,
            seq.item_embedding.as_ref(),
            CheckpointPrefix::SeqRec,
        ),
        (
            "both.safetensors",
            pre.lm_head.as_ref(),
            seq.item_embedding.as_ref(),
            CheckpointPrefix::SeqRec,
        ),
    ];
    for (file, head, items, prefix) in cases {
        let path = dir.path().join(file);
        save_safetensors(&pre.model, head, items, &path).unwrap();
        let back = load_checkpoint::<Cpu>(&path, &config, &device).unwrap();
        assert_eq!(back.prefix, prefix, "{file}");
        // Both sides keep or both lose each optional part, so the comparisons below skip only
        // what was never saved.
        assert_eq!(back.lm_head.is_some(), head.is_some(), "{file}");
        assert_eq!(back.item_embedding.is_some(), items.is_some(), "{file}");
        let out = back.model.forward(case.input::<Cpu>(&device));
        assert_close(
            out.last_hidden_state.to_data(),
            reference.last_hidden_state.to_data(),
            0.0,
            0.0,
            file,
        );
        if let (Some(a), Some(b)) = (back.lm_head.as_ref(), head) {
            assert_close(
                a.forward(out.last_hidden_state.clone()).to_data(),
                b.forward(out.last_hidden_state).to_data(),
                0.0,
                0.0,
                file,
            );
        }
        if let (Some(a), Some(b)) = (back.item_embedding, items) {
            assert_close(a.to_data(), b.to_data(), 0.0, 0.0, file);
        }
    }
}
