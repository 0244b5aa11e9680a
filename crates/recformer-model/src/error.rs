//! The error type of `recformer-model`.

use std::path::PathBuf;

use crate::loader::CheckpointPrefix;

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// One checkpoint tensor whose shape differs from what the model expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Key in the checkpoint (HF naming, with its prefix).
    pub key: String,
    /// Shape the model expects (PyTorch layout, `[out, in]` for linear weights).
    pub expected: Vec<usize>,
    /// Shape found in the file.
    pub found: Vec<usize>,
}

impl std::fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {:?}, found {:?}",
            self.key, self.expected, self.found
        )
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything that can go wrong in this crate (configuration, device selection, checkpoint IO).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON config file could not be parsed.
    #[error("invalid config JSON in {path} at line {line}, column {column}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A config could not be serialised.
    #[error("cannot serialise config: {0}")]
    JsonWrite(#[source] serde_json::Error),
    /// A config field has an invalid value.
    #[error("invalid config field `{field}`: {reason}")]
    InvalidConfig {
        /// HF `config.json` field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A preset name is not one of [`crate::presets::NAMES`].
    #[error("unknown preset `{name}` (expected base, mini, minilm, small or tiny)")]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// A device name is not one of `cpu`, `flex`, `ndarray`, `wgpu`, `cuda`.
    #[error("unknown device `{0}` (expected one of: cpu, flex, ndarray, wgpu, cuda)")]
    UnknownDevice(String),
    /// A backend was requested whose cargo feature is not compiled in.
    #[error("device `{device}` needs recformer-model to be built with the `{feature}` feature")]
    BackendNotCompiled {
        /// Requested device.
        device: &'static str,
        /// Cargo feature that enables it.
        feature: &'static str,
    },
    /// The checkpoint file extension is neither `.bin`/`.pt`/`.pth` nor `.safetensors`.
    #[error("unsupported checkpoint file {path}: expected a .bin/.pt/.pth (torch.save) or .safetensors file")]
    UnsupportedCheckpointFormat {
        /// The file.
        path: PathBuf,
    },
    /// burn-store could not read a PyTorch file.
    #[error("cannot read PyTorch checkpoint {path}: {source}")]
    Pytorch {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn_store::PytorchStoreError,
    },
    /// burn-store could not read a safetensors file.
    #[error("cannot read safetensors checkpoint {path}: {source}")]
    SafetensorsRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn_store::SafetensorsStoreError,
    },
    /// A safetensors file could not be written.
    #[error("cannot write safetensors file {path}: {source}")]
    SafetensorsWrite {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The keys do not follow any known RecFormer prefix convention.
    #[error(
        "{path}: unknown key prefix; expected `longformer.*` (+ `lm_head.*` or `item_embedding.weight`) \
         or bare `embeddings.*`/`encoder.*`; first keys: [{}]",
        join(sample_keys)
    )]
    UnknownPrefix {
        /// The file.
        path: PathBuf,
        /// The first few keys of the file.
        sample_keys: Vec<String>,
    },
    /// A PyTorch-Lightning / DeepSpeed dump (`_forward_module.model.*`) was given.
    #[error(
        "{path}: keys start with `_forward_module.` (a Lightning/DeepSpeed dump); convert it first \
         (official `convert_pretrain_ckpt.py`) so that keys start with `longformer.`"
    )]
    LightningCheckpoint {
        /// The file.
        path: PathBuf,
    },
    /// The file mixes `longformer.*` and bare `embeddings.*`/`encoder.*` keys.
    #[error(
        "{path}: mixes `longformer.*` and bare model keys; e.g. [{}]",
        join(keys)
    )]
    MixedPrefixes {
        /// The file.
        path: PathBuf,
        /// Some bare keys.
        keys: Vec<String>,
    },
    /// The detected prefix is not the one the caller asked for.
    #[error("{path}: expected a {expected:?}-style checkpoint, found {found:?}-style keys")]
    PrefixMismatch {
        /// The file.
        path: PathBuf,
        /// What the caller asked for.
        expected: CheckpointPrefix,
        /// What the keys say.
        found: CheckpointPrefix,
    },
    /// Keys the model needs are absent.
    #[error("{path}: {} missing key(s): [{}]", keys.len(), join(keys))]
    MissingKeys {
        /// The file.
        path: PathBuf,
        /// Missing keys (with the file's prefix).
        keys: Vec<String>,
    },
    /// Keys the model does not know.
    #[error("{path}: {} unexpected key(s): [{}]", keys.len(), join(keys))]
    UnexpectedKeys {
        /// The file.
        path: PathBuf,
        /// Unexpected keys.
        keys: Vec<String>,
    },
    /// Tensors whose shape does not fit the config.
    #[error("{path}: {} shape mismatch(es): [{}]", mismatches.len(), join(mismatches))]
    ShapeMismatches {
        /// The file.
        path: PathBuf,
        /// Each mismatch.
        mismatches: Vec<ShapeMismatch>,
    },
    /// `lm_head.bias` and `lm_head.decoder.bias` (one tied parameter in PyTorch) differ.
    #[error(
        "{path}: `lm_head.bias` and `lm_head.decoder.bias` differ (they are one tied parameter)"
    )]
    TiedBiasMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A source `config.json` cannot be converted (unknown `model_type`, unsupported activation...).
    #[error("{path}: `{key}`: {reason}")]
    ConversionConfig {
        /// The config file.
        path: PathBuf,
        /// The offending key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// Two tensors that are one tied parameter in PyTorch differ.
    #[error("{path}: `{a}` and `{b}` differ (they are one tied parameter)")]
    TiedMismatch {
        /// The file.
        path: PathBuf,
        /// One key.
        a: String,
        /// The other key.
        b: String,
    },
    /// A tensor could not be decoded or applied to the module.
    #[error("{path}: cannot use tensor `{key}`: {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}
