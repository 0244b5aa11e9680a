//! The crate's single error type.

use std::path::PathBuf;

/// Errors of the data pipeline. Every variant that comes from a file names the file, and where it
/// applies the line (1-based) and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A gzip stream ended early or is corrupt.
    #[error("{path}: truncated or corrupt gzip stream after line {line}: {source}")]
    Gzip {
        /// The gzip file.
        path: PathBuf,
        /// The last complete line read before the error.
        line: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON document could not be parsed.
    #[error("{path}{}: invalid JSON: {source}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        /// The file.
        path: PathBuf,
        /// The line (1-based) for line-delimited files.
        line: Option<u64>,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// A JSON document has the wrong shape or a bad value.
    #[error("{path}: {location}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where in the document, e.g. `key "123" field "title"`.
        location: String,
        /// What is wrong.
        message: String,
    },

    /// A sequence refers to an item key that the metadata does not have.
    #[error("{path}: {location}: unknown item key {key:?} (not in {meta})")]
    UnknownItem {
        /// The file with the sequence.
        path: PathBuf,
        /// Where in the document.
        location: String,
        /// The item key.
        key: String,
        /// The file that should have had it.
        meta: PathBuf,
    },

    /// The `tokenizers` crate reported an error.
    #[error("tokenizer error while {context}: {source}")]
    Tokenizer {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: tokenizers::Error,
    },

    /// A required special token is not in the vocabulary.
    #[error("the tokenizer vocabulary has none of the {role} tokens {candidates:?}")]
    MissingSpecialToken {
        /// The role (`first`, `pad`, `mask`).
        role: &'static str,
        /// Token strings that were looked up.
        candidates: &'static [&'static str],
    },

    /// A tokenizer directory holds none of the files that can be loaded.
    #[error(
        "{dir}: no tokenizer files found (expected tokenizer.json, vocab.json + merges.txt, or vocab.txt)"
    )]
    NoTokenizerFiles {
        /// The directory.
        dir: PathBuf,
    },

    /// A tokenizer model kind that this crate does not use.
    #[error("{path}: unsupported tokenizer model {model} (expected BPE or WordPiece)")]
    UnsupportedTokenizer {
        /// The tokenizer.json file.
        path: PathBuf,
        /// The model type found.
        model: &'static str,
    },

    /// A configuration value is out of range.
    #[error("invalid configuration: {field} = {value}: {message}")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The constraint.
        message: &'static str,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Format {
            path: path.into(),
            location: location.into(),
            message: message.into(),
        }
    }

    pub(crate) fn tokenizer(context: impl Into<String>, source: tokenizers::Error) -> Self {
        Self::Tokenizer {
            context: context.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
