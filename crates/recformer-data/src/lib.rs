//! # recformer-data
//!
//! Everything RecFormer (Li et al., KDD 2023, "Text Is All You Need") feeds its model, built
//! exactly as the official implementation does, from plain Rust data (no Burn types in the core):
//!
//! - [`ItemMeta`] → [`ItemTokens`]: [`RecformerTokenizer::encode_item`] flattens an item's first
//!   3 attributes (`title`, `brand`, `category`) into key tokens (type 1) and value tokens
//!   (type 2), at most 32 tokens per attribute *including* the key, no separators
//!   ([`tokenizer`]). RoBERTa byte-level BPE (base), BERT WordPiece (mini), a `tokenizer.json`,
//!   or a WordPiece vocabulary trained on a catalogue; special tokens come from the vocabulary.
//! - history → [`EncodedSequence`]: [`build_sequence`] reverses the history (newest first), keeps
//!   50 items, puts `<s>`/`[CLS]` first, numbers items 1..=50 and cuts to 1024 (512) tokens
//!   ([`sequence`]).
//! - sequences → [`PaddedBatch`]: [`pad_batch`] right-pads with the collator's values (pad id,
//!   type 3, item position 50, masks 0) ([`batch`]); [`mask_mlm`] applies whole-word MLM
//!   masking ([`mlm`]). No Burn types: `recformer-train` turns a [`PaddedBatch`] into the model input.
//! - datasets: the official finetuning layout ([`FinetuneDataset`]), the pretraining layout
//!   ([`PretrainCorpus`]), and both built from raw Amazon 2018 files with a report of every bad
//!   record ([`prepare`]).
//!
//! The library never prints; long reads take a progress observer ([`prepare::Progress`]).
//! Formats and rules are documented in `docs/data.md` of the repository.
//!
//! ```no_run
//! use recformer_data::{build_sequence, pad_batch, FinetuneDataset, RecformerDataConfig,
//!     RecformerTokenizer, Split};
//! # fn main() -> recformer_data::Result<()> {
//! let cfg = RecformerDataConfig::base();
//! let tok = RecformerTokenizer::from_dir("tokenizers/roberta-base".as_ref())?;
//! let data = FinetuneDataset::load("scientific-recformer".as_ref())?;
//! let items = tok.encode_catalogue(&data.items, &cfg)?; // row = item id
//! let seqs: Vec<_> = data
//!     .eval_examples(Split::Test)
//!     .iter()
//!     .take(16)
//!     .map(|ex| {
//!         let hist: Vec<_> = ex.history.iter().map(|&i| &items[i]).collect();
//!         build_sequence(&hist, tok.cls_token_id(), &cfg)
//!     })
//!     .collect();
//! let batch = pad_batch(&seqs, tok.pad_token_id(), &cfg);
//! # let _ = batch; Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod config;
pub mod dataset;
pub mod error;
pub mod item;
mod json_io;
pub mod mlm;
pub mod prepare;
pub mod sequence;
pub mod shared_data;
pub mod tokenizer;

pub use batch::{pad_batch, PaddedBatch, PAD_TOKEN_TYPE};
pub use config::RecformerDataConfig;
pub use dataset::finetune::{EvalExample, FinetuneDataset, Split};
pub use dataset::pretrain::PretrainCorpus;
pub use error::{Error, Result};
pub use item::{ItemMeta, ItemTokens, ATTRIBUTE_KEYS};
pub use mlm::{mask_mlm, MlmConfig, MlmMasked, IGNORE_LABEL};
pub use prepare::{
    prepare_finetune, prepare_in_domain_corpus, prepare_pretrain, InDomainCorpus,
    PrepareFinetuneOptions, PrepareReport,
};
pub use sequence::{build_sequence, build_sequence_from_rows, EncodedSequence};
pub use tokenizer::{RecformerTokenizer, TokenizerKind};
