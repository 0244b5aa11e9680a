//! The source side of a conversion: an HF model directory's `config.json` and state dict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::DType;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::loader::read_snapshots;

/// The architecture family of an HF source model (`config.json :: model_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `bert` (BERT, MiniLM, ...): positions `0..L`, `[CLS]` at position 0, MLM head `cls.predictions.*`.
    Bert,
    /// `roberta`: positions `pad + 1 + i` (RecFormer's convention), MLM head `lm_head.*`.
    Roberta,
    /// `longformer`: RoBERTa conventions plus its own global projections `*_global`.
    Longformer,
}

impl SourceKind {
    /// The `model_type` string.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Bert => "bert",
            SourceKind::Roberta => "roberta",
            SourceKind::Longformer => "longformer",
        }
    }

    /// The key prefix of the encoder in the `*ForMaskedLM` / `*ForPreTraining` classes.
    pub fn encoder_prefix(self) -> &'static str {
        match self {
            SourceKind::Bert => "bert.",
            SourceKind::Roberta => "roberta.",
            SourceKind::Longformer => "longformer.",
        }
    }

    /// First learnt row of the source position table: 0 for BERT, `pad + 1` for RoBERTa-style
    /// models (whose position ids are `cumsum(id != pad) * (id != pad) + pad`).
    pub fn first_position_row(self, pad_token_id: usize) -> usize {
        match self {
            SourceKind::Bert => 0,
            SourceKind::Roberta | SourceKind::Longformer => pad_token_id + 1,
        }
    }
}

/// The fields of an HF `BertConfig` / `RobertaConfig` / `LongformerConfig` that a conversion reads.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    /// `model_type`.
    pub model_type: Option<String>,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `hidden_size`.
    pub hidden_size: usize,
    /// `num_hidden_layers`.
    pub num_hidden_layers: usize,
    /// `num_attention_heads`.
    pub num_attention_heads: usize,
    /// `intermediate_size`.
    pub intermediate_size: usize,
    /// `hidden_act` (HF default `gelu`).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// `layer_norm_eps` (HF default 1e-12).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// `max_position_embeddings`.
    pub max_position_embeddings: usize,
    /// `type_vocab_size` (HF default 2).
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    /// `pad_token_id` (HF `BertConfig` default 0; RoBERTa/Longformer configs set 1).
    pub pad_token_id: Option<usize>,
    /// `hidden_dropout_prob` (HF default 0.1).
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// `attention_probs_dropout_prob` (HF default 0.1).
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// `initializer_range` (HF default 0.02).
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    /// `position_embedding_type` (only `absolute` can be converted).
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_types() -> usize {
    2
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init() -> f64 {
    0.02
}

/// A parsed source `config.json`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The config file.
    pub config_path: PathBuf,
    /// The weights file.
    pub weights_path: PathBuf,
    /// The family.
    pub kind: SourceKind,
    /// The fields read.
    pub config: SourceConfig,
    /// The padding token id (from the config; BERT's default 0 when absent).
    pub pad_token_id: usize,
}

impl Source {
    /// Reads `dir/config.json` and finds the weights (`model.safetensors` or `pytorch_model.bin`).
    pub fn open(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|source| Error::Io {
            path: config_path.clone(),
            source,
        })?;
        let config: SourceConfig = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: config_path.clone(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
        let bad = |key: &'static str, reason: String| Error::ConversionConfig {
            path: config_path.clone(),
            key,
            reason,
        };
        let kind = match config.model_type.as_deref() {
            Some("bert") => SourceKind::Bert,
            Some("roberta") => SourceKind::Roberta,
            Some("longformer") => SourceKind::Longformer,
            Some(other) => {
                return Err(bad(
                    "model_type",
                    format!("`{other}` cannot be converted (expected bert, roberta or longformer)"),
                ))
            }
            None => {
                return Err(bad(
                    "model_type",
                    "missing (expected bert, roberta or longformer)".into(),
                ))
            }
        };
        if config.hidden_act != "gelu" {
            return Err(bad(
                "hidden_act",
                format!(
                    "`{}` is not supported (RecFormer's layers use exact `gelu`)",
                    config.hidden_act
                ),
            ));
        }
        if let Some(p) = config.position_embedding_type.as_deref() {
            if p != "absolute" {
                return Err(bad(
                    "position_embedding_type",
                    format!("`{p}` is not supported (only `absolute`)"),
                ));
            }
        }
        let pad_token_id = match (kind, config.pad_token_id) {
            (_, Some(p)) => p,
            (SourceKind::Bert, None) => 0,
            (_, None) => return Err(bad("pad_token_id", "missing".into())),
        };
        let first = kind.first_position_row(pad_token_id);
        if config.max_position_embeddings <= first {
            return Err(bad(
                "max_position_embeddings",
                format!(
                    "{} rows leave no learnt position after the first {first}",
                    config.max_position_embeddings
                ),
            ));
        }
        let weights_path = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Io {
                path: dir.join("model.safetensors"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor pytorch_model.bin is in the directory",
                ),
            })?;
        Ok(Self {
            config_path,
            weights_path,
            kind,
            config,
            pad_token_id,
        })
    }

    /// Learnt position rows of the source (`max_position_embeddings` minus the rows before the
    /// first position id).
    pub fn learnt_positions(&self) -> usize {
        self.config.max_position_embeddings - self.kind.first_position_row(self.pad_token_id)
    }
}

/// A dense f32 tensor of the conversion (row-major, PyTorch layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

impl Array {
    /// An all-`value` tensor.
    pub fn full(shape: Vec<usize>, value: f32) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![value; n],
        }
    }

    /// Row `r` of a 2-D tensor.
    pub fn row(&self, r: usize) -> &[f32] {
        let w = self.shape[1];
        &self.data[r * w..(r + 1) * w]
    }
}

/// Reads every tensor of the weights file as f32, with HF's key normalisations: the encoder prefix
/// (`bert.` / `roberta.` / `longformer.`) is stripped and old-style LayerNorm `gamma`/`beta` become
/// `weight`/`bias`. Integer tensors (buffers such as `position_ids`) are kept aside as names only.
pub(crate) fn read_state_dict(source: &Source) -> Result<(BTreeMap<String, Array>, Vec<String>)> {
    let path = &source.weights_path;
    let snapshots = read_snapshots(path)?;
    let prefix = source.kind.encoder_prefix();
    let prefixed = snapshots.keys().any(|k| k.starts_with(prefix));
    let mut floats = BTreeMap::new();
    let mut buffers = Vec::new();
    for (key, snapshot) in snapshots {
        let mut name = match key.strip_prefix(prefix) {
            Some(rest) if prefixed => rest.to_string(),
            _ => key.clone(),
        };
        if name.contains("LayerNorm.") || name.contains("layer_norm.") {
            if let Some(stem) = name.strip_suffix(".gamma") {
                name = format!("{stem}.weight");
            } else if let Some(stem) = name.strip_suffix(".beta") {
                name = format!("{stem}.bias");
            }
        }
        match snapshot.dtype {
            DType::F32 | DType::F16 | DType::BF16 | DType::F64 => {}
            _ => {
                buffers.push(name);
                continue;
            }
        }
        let data = snapshot.to_data().map_err(|e| Error::BadTensor {
            path: path.clone(),
            key: key.clone(),
            reason: format!("{e:?}"),
        })?;
        let shape = data.shape.iter().copied().collect();
        let data = data.convert::<f32>().iter::<f32>().collect();
        if floats.insert(name.clone(), Array { shape, data }).is_some() {
            return Err(Error::MixedPrefixes {
                path: path.clone(),
                keys: vec![key],
            });
        }
    }
    Ok((floats, buffers))
}
