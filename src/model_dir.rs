//! HF-style model directories: `config.json` + tokenizer files + weights (+ an item matrix).
//!
//! ```text
//! <model>/
//!   config.json          RecformerConfig (HF Longformer fields + RecFormer fields)
//!   tokenizer.json       or vocab.json + merges.txt (RoBERTa BPE) or vocab.txt (BERT WordPiece)
//!   model.safetensors    or one *.bin (official PyTorch checkpoints, any of the three key styles)
//!   items.safetensors    optional: the item matrix `item_embeddings` [num_items, hidden]
//! ```
//! A training run directory is accepted wherever a model directory is: its exported `model/`
//! sub-directory is used.

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor};
use recformer_data::{RecformerDataConfig, RecformerTokenizer};
use recformer_model::{load_checkpoint, LoadedCheckpoint, RecformerConfig};

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
    /// The model configuration.
    pub config: RecformerConfig,
    /// The tokenizer.
    pub tokenizer: RecformerTokenizer,
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
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::NotAModelDir {
                dir,
                what: format!(
                    "the tokenizer has {} tokens but config.json's vocab_size is {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        Ok(Self {
            dir,
            config,
            tokenizer,
            weights,
            items,
        })
    }

    /// The input limits (attributes, tokens, items) implied by the model config.
    pub fn data_config(&self) -> RecformerDataConfig {
        data_config(&self.config)
    }

    /// Loads the weights (strictly) on `device`.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<LoadedCheckpoint<B>> {
        Ok(load_checkpoint(&self.weights, &self.config, device)?)
    }

    /// Loads the stored item matrix, if the directory has one.
    pub fn load_items<B: Backend>(&self, device: &B::Device) -> Result<Option<Tensor<B, 2>>> {
        match &self.items {
            Some(p) => Ok(Some(recformer_train::checkpoint::load_item_matrix(
                p, device,
            )?)),
            None => Ok(None),
        }
    }

    /// Writes a model directory: `config.json`, `tokenizer.json`, a copy of `weights` as
    /// `model.safetensors`, and optionally a copy of an item matrix file.
    pub fn export(
        dir: &Path,
        config: &RecformerConfig,
        tokenizer: &RecformerTokenizer,
        weights: &Path,
        items: Option<&Path>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        config.save_json(dir.join(CONFIG_FILE))?;
        tokenizer.save(dir)?;
        copy(weights, &dir.join(WEIGHTS_FILE))?;
        if let Some(items) = items {
            copy(items, &dir.join(ITEMS_FILE))?;
        }
        Self::open(dir)
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if from == to {
        return Ok(());
    }
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(|e| Error::io(from, e))?;
    std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))
}

/// The data-side limits of a model config.
pub fn data_config(c: &RecformerConfig) -> RecformerDataConfig {
    RecformerDataConfig {
        max_attr_num: c.max_attr_num,
        max_attr_length: c.max_attr_length,
        max_item_embeddings: c.max_item_embeddings,
        max_token_num: c.max_token_num,
    }
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
