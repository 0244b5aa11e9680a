//! HF-style model directories: `config.json` + tokenizer files + weights (+ an item matrix).
//!
//! ```text
//! <model>/
//!   config.json          RecformerConfig (HF Longformer fields + RecFormer fields)
//!   tokenizer.json       or vocab.json + merges.txt (RoBERTa BPE) or vocab.txt (BERT WordPiece)
//!   model.safetensors    or one *.bin (official PyTorch checkpoints, any of the three key styles)
//!   items.safetensors    optional: the item index, `item_embeddings` [num_items, hidden] with the
//!                        item keys in its metadata (see [`crate::checkpoint::save_item_index`])
//! ```
//! A training run directory is accepted wherever a model directory is: its exported `model/`
//! sub-directory is used.

mod init;
mod spec;

pub use init::{source_tokenizer, REPORT_FILE};
pub use spec::{data_config, ModelSpec};

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use recformer_data::{RecformerDataConfig, RecformerTokenizer};
use recformer_model::{
    load_checkpoint, load_checkpoint_with, LoadedCheckpoint, MlmHead, RecformerConfig,
};

use crate::checkpoint::{load_item_index, ItemIndex};
use crate::error::{Error, Result};

/// File names inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Weights written by [`ModelDir::export`].
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Item matrix written by [`ModelDir::export`].
pub const ITEMS_FILE: &str = "items.safetensors";
/// Sub-directory of a run directory holding its exported model.
pub const RUN_MODEL_SUBDIR: &str = "model";

/// An opened model directory.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory.
    pub dir: PathBuf,
    /// The model config and its tokenizer, checked against each other.
    pub spec: ModelSpec,
    /// The weights file.
    pub weights: PathBuf,
    /// The item matrix file, if present.
    pub items: Option<PathBuf>,
}

impl ModelDir {
    /// Opens a model directory, or the `model/` export of a run directory.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = if path.join(RUN_MODEL_SUBDIR).join(CONFIG_FILE).is_file() {
            path.join(RUN_MODEL_SUBDIR)
        } else {
            path.to_path_buf()
        };
        if !dir.is_dir() {
            return Err(Error::NotAModelDir {
                dir,
                what: "no such directory".into(),
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(Error::NotAModelDir {
                dir,
                what: "config.json is missing".into(),
            });
        }
        let config = RecformerConfig::from_json_file(&config_path)?;
        let tokenizer = RecformerTokenizer::from_dir(&dir)?;
        let weights = find_weights(&dir)?;
        let items = Some(dir.join(ITEMS_FILE)).filter(|p| p.is_file());
        let spec = ModelSpec::new(config, tokenizer).map_err(|e| match e {
            Error::Spec(what) => Error::NotAModelDir {
                dir: dir.clone(),
                what,
            },
            other => other,
        })?;
        Ok(Self {
            dir,
            spec,
            weights,
            items,
        })
    }

    /// The model config.
    pub fn config(&self) -> &RecformerConfig {
        self.spec.config()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &RecformerTokenizer {
        self.spec.tokenizer()
    }

    /// The input limits (attributes, tokens, items) implied by the model config.
    pub fn data_config(&self) -> RecformerDataConfig {
        self.spec.data_config()
    }

    /// Loads the weights (strictly) on `device`, the MLM head included when the file has one.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<LoadedCheckpoint<B>> {
        Ok(load_checkpoint(&self.weights, self.config(), device)?)
    }

    /// [`ModelDir::load`] without building the MLM head (`lm_head` is `None`; its keys are still
    /// checked): what encoding, evaluation, recommendation and finetuning need.
    pub fn load_without_mlm_head<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<LoadedCheckpoint<B>> {
        Ok(load_checkpoint_with(
            &self.weights,
            self.config(),
            device,
            MlmHead::Skip,
        )?)
    }

    /// Loads the stored item index (vectors and, for files written since keys were stored, the
    /// item keys), if the directory has one.
    pub fn load_items<B: Backend>(&self, device: &B::Device) -> Result<Option<ItemIndex<B>>> {
        self.items
            .as_deref()
            .map(|p| load_item_index(p, device))
            .transpose()
    }

    /// Writes a model directory: `config.json`, `tokenizer.json`, `weights` as
    /// `model.safetensors`, and optionally an item index file as `items.safetensors`. Files are
    /// hard-linked where the file system allows (a run's best checkpoint and its export are then
    /// stored once), copied otherwise.
    pub fn export(
        dir: &Path,
        spec: &ModelSpec,
        weights: &Path,
        items: Option<&Path>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        spec.config().save_json(dir.join(CONFIG_FILE))?;
        spec.tokenizer().save(dir)?;
        link_or_copy(weights, &dir.join(WEIGHTS_FILE))?;
        if let Some(items) = items {
            link_or_copy(items, &dir.join(ITEMS_FILE))?;
        }
        Self::open(dir)
    }
}

/// Replaces `to` by a hard link to `from` (a copy where links are not possible), atomically.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if from == to {
        return Ok(());
    }
    let tmp = to.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(from, &tmp).is_err() {
        std::fs::copy(from, &tmp).map_err(|e| Error::io(from, e))?;
    }
    std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))
}

fn find_weights(dir: &Path) -> Result<PathBuf> {
    for name in [WEIGHTS_FILE, "pytorch_model.bin"] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let mut bins: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "bin" || x == "safetensors")
                && p.file_name().is_some_and(|n| n != ITEMS_FILE)
        })
        .collect();
    bins.sort();
    match bins.len() {
        1 => Ok(bins.remove(0)),
        0 => Err(Error::NotAModelDir {
            dir: dir.to_path_buf(),
            what: "no weights file".into(),
        }),
        _ => Err(Error::NotAModelDir {
            dir: dir.to_path_buf(),
            what: format!(
                "several weights files ({}); keep one or name it model.safetensors",
                bins.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}
