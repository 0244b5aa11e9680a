//! Errors of the facade crate (model directories, demo).

use std::path::PathBuf;

/// Result alias of the facade crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong outside the three library crates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model directory lacks a required file.
    #[error("{dir}: not a model directory ({what}); expected config.json, a tokenizer (tokenizer.json, vocab.json + merges.txt, or vocab.txt) and weights (model.safetensors or a .bin), or a run directory with model/ inside")]
    NotAModelDir {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A `--preset` name is not one of [`crate::presets::NAMES`].
    #[error("unknown preset `{name}` (expected base, mini, minilm, small or tiny)")]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// Two parts of a model that do not fit together (tokenizer vs config).
    #[error("{path}: {reason}")]
    Incompatible {
        /// The file at fault.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// Error from `recformer-data`.
    #[error(transparent)]
    Data(#[from] recformer_data::Error),
    /// Error from `recformer-model`.
    #[error(transparent)]
    Model(#[from] recformer_model::Error),
    /// Error from `recformer-train`.
    #[error(transparent)]
    Train(#[from] recformer_train::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
