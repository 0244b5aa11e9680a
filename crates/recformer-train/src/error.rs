//! Error type of the training crate.

use std::path::PathBuf;

/// Everything that can go wrong while training, evaluating or checkpointing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("JSON error in {path}: {source}")]
    Json {
        /// The offending file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A TOML configuration file could not be parsed.
    #[error("TOML error in {path}: {source}")]
    Toml {
        /// The offending file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: toml::de::Error,
    },
    /// A configuration value is invalid.
    #[error("invalid config field `{field}`: {reason}")]
    InvalidConfig {
        /// Name of the field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Input data is inconsistent with what training needs.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A burn record (model / optimizer state) could not be saved or loaded.
    #[error("record error for {path}: {source}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// A safetensors file could not be read or written.
    #[error("safetensors error in {path}: {source}")]
    Safetensors {
        /// The offending file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A run directory cannot be resumed (missing or mismatching state).
    #[error("cannot resume run in {path}: {reason}")]
    Resume {
        /// The run directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A model config and a tokenizer that do not fit together ([`crate::ModelSpec::new`]).
    #[error("{0}")]
    Spec(String),
    /// A model directory lacks a required file or its parts do not fit together.
    #[error("{dir}: not a model directory ({what}); expected config.json, a tokenizer (tokenizer.json, vocab.json + merges.txt, or vocab.txt) and weights (model.safetensors or a .bin), or a run directory with model/ inside")]
    NotAModelDir {
        /// The directory.
        dir: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// Two parts of a model that do not fit together (tokenizer vs config), found while
    /// converting a pretrained model.
    #[error("{path}: {reason}")]
    Incompatible {
        /// The file at fault.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// An item index that does not belong to the dataset or catalogue it is used with.
    #[error("{path}: {reason}")]
    ItemIndex {
        /// The index file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// An error from the data crate.
    #[error(transparent)]
    Data(#[from] recformer_data::Error),
    /// An error from the model crate.
    #[error(transparent)]
    Model(#[from] recformer_model::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a JSON error with its path.
    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Error::Json {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::InvalidConfig`].
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}
