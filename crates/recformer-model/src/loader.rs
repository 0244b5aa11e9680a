//! Strict loading of official RecFormer checkpoints, and saving ours in the same key naming.
//!
//! Files: PyTorch `torch.save` zips (`.bin`, `.pt`, `.pth`, read by burn-store's `PytorchStore`
//! without Python) and `.safetensors`. Keys follow HF naming in one of three prefix styles,
//! detected automatically ([`CheckpointPrefix`]):
//!
//! | style | keys | official file |
//! |---|---|---|
//! | `Pretraining` | `longformer.embeddings.*`, `longformer.encoder.*`, `lm_head.*` | `longformer-base-4096.bin`, `seqrec_pretrain_ckpt.bin` |
//! | `Model` | `embeddings.*`, `encoder.*` | `recformer_pretrain_ckpt.bin` |
//! | `SeqRec` | `longformer.*`, `item_embedding.weight` (and optionally `lm_head.*`) | finetuned `best_model.bin` |
//!
//! Key renaming (see [`crate::keys`]): `.LayerNorm.` -> `.layer_norm.`, `.attention.self.` ->
//! `.attention.self_attn.`; burn-store's `PyTorchToBurnAdapter` transposes linear weights
//! (`[out, in]` -> `[in, out]`) and maps LayerNorm `weight/bias` -> `gamma/beta`.
//!
//! Strictness: any missing key, unexpected key or shape mismatch is an error listing the keys.
//! Tolerated: the `embeddings.position_ids` buffer, and `lm_head.decoder.bias` next to `lm_head.bias`
//! (one tied parameter; both must then be equal).

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use burn::module::ParamId;
use burn::tensor::{backend::Backend, DType, Tensor};
use burn_store::{ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, TensorSnapshot};

use crate::config::RecformerConfig;
use crate::error::{Error, Result, ShapeMismatch};
use crate::heads::LongformerLMHead;
use crate::keys::{burn_param_path, lm_head_key_shapes, model_key_shapes};
use crate::model::RecformerModel;

/// Key prefix convention of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPrefix {
    /// `longformer.*` + `lm_head.*` (`RecformerForPretraining`).
    Pretraining,
    /// Bare `embeddings.*` + `encoder.*` (`RecformerModel`).
    Model,
    /// `longformer.*` + `item_embedding.weight` (`RecformerForSeqRec`).
    SeqRec,
}

impl CheckpointPrefix {
    fn model_prefix(self) -> &'static str {
        match self {
            CheckpointPrefix::Model => "",
            CheckpointPrefix::Pretraining | CheckpointPrefix::SeqRec => "longformer.",
        }
    }
}

/// What a checkpoint contained.
#[derive(Debug)]
pub struct LoadedCheckpoint<B: Backend> {
    /// The encoder.
    pub model: RecformerModel<B>,
    /// The MLM head, if the file has `lm_head.*` keys and it was asked for ([`MlmHead::Load`]).
    pub lm_head: Option<LongformerLMHead<B>>,
    /// The finetuned item table `[item_num, hidden]`, if the file has `item_embedding.weight`.
    pub item_embedding: Option<Tensor<B, 2>>,
    /// The detected prefix style.
    pub prefix: CheckpointPrefix,
}

const POSITION_IDS: &str = "embeddings.position_ids";
pub(crate) const ITEM_EMBEDDING: &str = "item_embedding.weight";

pub(crate) fn read_snapshots(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !path.is_file() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint file not found"),
        });
    }
    match ext.as_str() {
        "safetensors" => crate::safetensors_file::read_lazily(path),
        "bin" | "pt" | "pth" => PytorchStore::from_file(path)
            .get_all_snapshots()
            .cloned()
            .map_err(|source| Error::Pytorch {
                path: path.to_path_buf(),
                source,
            }),
        _ => Err(Error::UnsupportedCheckpointFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Detects the prefix style from the key set.
pub fn detect_prefix<'a>(
    keys: impl IntoIterator<Item = &'a str> + Clone,
    path: &Path,
) -> Result<CheckpointPrefix> {
    let any = |f: &dyn Fn(&str) -> bool| keys.clone().into_iter().any(f);
    if any(&|k| k.starts_with("_forward_module.")) {
        return Err(Error::LightningCheckpoint {
            path: path.to_path_buf(),
        });
    }
    let is_bare = |k: &str| k.starts_with("embeddings.") || k.starts_with("encoder.");
    let has_longformer = any(&|k| k.starts_with("longformer."));
    let has_bare = any(&is_bare);
    match (has_longformer, has_bare) {
        (true, true) => Err(Error::MixedPrefixes {
            path: path.to_path_buf(),
            keys: keys
                .into_iter()
                .filter(|k| is_bare(k))
                .take(5)
                .map(String::from)
                .collect(),
        }),
        (true, false) if any(&|k| k == ITEM_EMBEDDING) => Ok(CheckpointPrefix::SeqRec),
        (true, false) => Ok(CheckpointPrefix::Pretraining),
        (false, true) => Ok(CheckpointPrefix::Model),
        (false, false) => Err(Error::UnknownPrefix {
            path: path.to_path_buf(),
            sample_keys: keys.into_iter().take(5).map(String::from).collect(),
        }),
    }
}

fn dims(s: &TensorSnapshot) -> Vec<usize> {
    s.shape.iter().copied().collect()
}

fn tensors_equal(a: &TensorSnapshot, b: &TensorSnapshot, path: &Path) -> Result<bool> {
    let data = |s: &TensorSnapshot| -> Result<Vec<f32>> {
        s.to_data()
            .map_err(|e| Error::BadTensor {
                path: path.to_path_buf(),
                key: s.full_path(),
                reason: format!("{e:?}"),
            })
            .map(|d| d.convert::<f32>().iter::<f32>().collect())
    };
    Ok(dims(a) == dims(b) && data(a)? == data(b)?)
}

/// A copy of `snapshot` under a new (Burn) path, converted to `dtype` if needed.
fn renamed(snapshot: &TensorSnapshot, burn_path: &str, dtype: DType) -> TensorSnapshot {
    let source = snapshot.clone_data_fn();
    let convert = snapshot.dtype != dtype;
    let data_fn = Rc::new(move || {
        let data = source()?;
        Ok(if convert {
            data.convert_dtype(dtype)
        } else {
            data
        })
    });
    TensorSnapshot::from_closure(
        data_fn,
        dtype,
        snapshot.shape.clone(),
        burn_path.split('.').map(String::from).collect(),
        Vec::new(),
        ParamId::new(),
    )
}

/// Applies `(burn_path, snapshot)` pairs to a module with the PyTorch adapter; every module tensor
/// must be set.
fn apply_all<B: Backend, M: ModuleSnapshot<B>>(
    module: &mut M,
    snapshots: Vec<TensorSnapshot>,
    path: &Path,
) -> Result<()> {
    let result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), false);
    if let Some(e) = result.errors.first() {
        return Err(Error::BadTensor {
            path: path.to_path_buf(),
            key: String::new(),
            reason: e.to_string(),
        });
    }
    if !result.missing.is_empty() {
        return Err(Error::MissingKeys {
            path: path.to_path_buf(),
            keys: result.missing.into_iter().map(|(p, _)| p).collect(),
        });
    }
    if !result.unused.is_empty() {
        return Err(Error::UnexpectedKeys {
            path: path.to_path_buf(),
            keys: result.unused,
        });
    }
    Ok(())
}

/// Whether [`load_checkpoint_with`] builds the MLM head of a checkpoint that has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlmHead {
    /// Build it (`LoadedCheckpoint::lm_head` is `Some` when the file has `lm_head.*` keys):
    /// pretraining goes on with it.
    Load,
    /// Check its keys, shapes and tied bias as strictly as [`MlmHead::Load`], but do not read
    /// its weights (`lm_head` is `None`): encoding, evaluation, recommendation and finetuning
    /// never use it, and its decoder (`vocab × hidden`: 47 MB for a BERT vocabulary at 384)
    /// would only add to the process's memory.
    Skip,
}

/// Loads a checkpoint of any of the three prefix styles (detected from the keys), strictly.
///
/// # Errors
/// Unreadable file, unknown/mixed prefix, missing or unexpected keys, shape mismatches (each error
/// lists the keys concerned), or a tied-bias mismatch.
pub fn load_checkpoint<B: Backend>(
    path: &Path,
    config: &RecformerConfig,
    device: &B::Device,
) -> Result<LoadedCheckpoint<B>> {
    load_checkpoint_with(path, config, device, MlmHead::Load)
}

/// [`load_checkpoint`], building the MLM head or not ([`MlmHead`]); the checks are the same.
///
/// # Errors
/// As [`load_checkpoint`].
pub fn load_checkpoint_with<B: Backend>(
    path: &Path,
    config: &RecformerConfig,
    device: &B::Device,
    mlm_head: MlmHead,
) -> Result<LoadedCheckpoint<B>> {
    config.validate()?;
    let snapshots = read_snapshots(path)?;
    load_snapshots(snapshots, config, device, path, None, mlm_head)
}

/// [`load_checkpoint_with`] on tensors already read (`path` names their origin in errors). With
/// `expected`, the detected prefix style must be that one.
pub(crate) fn load_snapshots<B: Backend>(
    snapshots: BTreeMap<String, TensorSnapshot>,
    config: &RecformerConfig,
    device: &B::Device,
    path: &Path,
    expected: Option<CheckpointPrefix>,
    mlm_head: MlmHead,
) -> Result<LoadedCheckpoint<B>> {
    config.validate()?;
    let prefix = detect_prefix(snapshots.keys().map(String::as_str), path)?;
    if let Some(expected) = expected.filter(|e| *e != prefix) {
        return Err(Error::PrefixMismatch {
            path: path.to_path_buf(),
            expected,
            found: prefix,
        });
    }
    let model_prefix = prefix.model_prefix();
    let model_shapes = model_key_shapes(config);
    let lm_shapes = lm_head_key_shapes(config);

    let mut model_entries: BTreeMap<&str, &TensorSnapshot> = BTreeMap::new();
    let mut lm_entries: BTreeMap<&str, &TensorSnapshot> = BTreeMap::new();
    let mut item_entry: Option<&TensorSnapshot> = None;
    let mut unexpected = Vec::new();
    for (key, snapshot) in &snapshots {
        let model_key = key
            .strip_prefix(model_prefix)
            .filter(|rest| model_shapes.contains_key(*rest) || *rest == POSITION_IDS);
        let lm_key = key.strip_prefix("lm_head.").filter(|rest| {
            prefix != CheckpointPrefix::Model
                && (lm_shapes.contains_key(*rest) || *rest == "decoder.bias")
        });
        if let Some(rest) = model_key {
            if rest != POSITION_IDS {
                model_entries.insert(rest, snapshot);
            }
        } else if let Some(rest) = lm_key {
            lm_entries.insert(rest, snapshot);
        } else if key == ITEM_EMBEDDING && prefix == CheckpointPrefix::SeqRec {
            item_entry = Some(snapshot);
        } else {
            unexpected.push(key.clone());
        }
    }
    if !unexpected.is_empty() {
        return Err(Error::UnexpectedKeys {
            path: path.to_path_buf(),
            keys: unexpected,
        });
    }

    // The tied MLM bias: keep one copy.
    if let Some(decoder_bias) = lm_entries.remove("decoder.bias") {
        let bias = *lm_entries.entry("bias").or_insert(decoder_bias);
        if !tensors_equal(bias, decoder_bias, path)? {
            return Err(Error::TiedBiasMismatch {
                path: path.to_path_buf(),
            });
        }
    }

    let want_lm = prefix == CheckpointPrefix::Pretraining || !lm_entries.is_empty();
    let mut missing: Vec<String> = model_shapes
        .keys()
        .filter(|k| !model_entries.contains_key(k.as_str()))
        .map(|k| format!("{model_prefix}{k}"))
        .collect();
    if want_lm {
        missing.extend(
            lm_shapes
                .keys()
                .filter(|k| !lm_entries.contains_key(k.as_str()))
                .map(|k| format!("lm_head.{k}")),
        );
    }
    if !missing.is_empty() {
        return Err(Error::MissingKeys {
            path: path.to_path_buf(),
            keys: missing,
        });
    }

    let mut mismatches = Vec::new();
    let mut check = |key: String, expected: &Vec<usize>, snapshot: &TensorSnapshot| {
        let found = dims(snapshot);
        if &found != expected {
            mismatches.push(ShapeMismatch {
                key,
                expected: expected.clone(),
                found,
            });
        }
    };
    for (k, s) in &model_entries {
        check(format!("{model_prefix}{k}"), &model_shapes[*k], s);
    }
    for (k, s) in &lm_entries {
        check(format!("lm_head.{k}"), &lm_shapes[*k], s);
    }
    if let Some(s) = item_entry {
        let found = dims(s);
        if found.len() != 2 || found[1] != config.hidden_size {
            mismatches.push(ShapeMismatch {
                key: ITEM_EMBEDDING.into(),
                expected: vec![found.first().copied().unwrap_or(0), config.hidden_size],
                found,
            });
        }
    }
    if !mismatches.is_empty() {
        return Err(Error::ShapeMismatches {
            path: path.to_path_buf(),
            mismatches,
        });
    }

    let mut model = RecformerModel::<B>::init_lazy(config, device);
    // The parameters' float type, without drawing a lazy parameter (`val()` would).
    let dtype = Tensor::<B, 1>::zeros([1], device).dtype();
    let model_snapshots = model_entries
        .iter()
        .map(|(k, s)| renamed(s, &burn_param_path(k), dtype))
        .collect();
    apply_all(&mut model, model_snapshots, path)?;

    let lm_head = if want_lm && mlm_head == MlmHead::Load {
        let mut head = LongformerLMHead::<B>::init_lazy(config, device);
        let lm_snapshots = lm_entries
            .iter()
            .map(|(k, s)| renamed(s, &burn_param_path(k), dtype))
            .collect();
        apply_all(&mut head, lm_snapshots, path)?;
        Some(head)
    } else {
        None
    };

    let item_embedding = match item_entry {
        Some(s) => {
            let data = s.to_data().map_err(|e| Error::BadTensor {
                path: path.to_path_buf(),
                key: ITEM_EMBEDDING.into(),
                reason: format!("{e:?}"),
            })?;
            Some(Tensor::<B, 2>::from_data(data.convert_dtype(dtype), device))
        }
        None => None,
    };

    log::info!(
        "loaded {} ({prefix:?} style, {} model tensors, lm_head: {}, item_embedding: {})",
        path.display(),
        model_entries.len(),
        lm_head.is_some(),
        item_embedding.is_some()
    );
    Ok(LoadedCheckpoint {
        model,
        lm_head,
        item_embedding,
        prefix,
    })
}

/// Like [`load_checkpoint`], but the file must have the `expected` prefix style.
pub fn load_checkpoint_as<B: Backend>(
    path: &Path,
    config: &RecformerConfig,
    device: &B::Device,
    expected: CheckpointPrefix,
) -> Result<LoadedCheckpoint<B>> {
    let snapshots = read_snapshots(path)?;
    load_snapshots(
        snapshots,
        config,
        device,
        path,
        Some(expected),
        MlmHead::Load,
    )
}
