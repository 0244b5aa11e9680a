//! # recformer
//!
//! RecFormer ("Text Is All You Need: Learning Language Representations for Sequential
//! Recommendation", Li et al., KDD'23, [arXiv 2305.13731](https://arxiv.org/abs/2305.13731)) in
//! pure Rust on [Burn](https://burn.dev). This facade re-exports the three library crates:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`data`] | `recformer-data` | item flattening, tokenisation, sequences, batching, dataset formats |
//! | [`model`] | `recformer-model` | backend-generic Longformer + RecFormer, checkpoint loading |
//! | [`train`] | `recformer-train` | losses, pretraining, two-stage finetuning, metrics, checkpoints |
//!
//! plus [`demo`], the synthetic catalogue used by `recformer demo`.
#![warn(missing_docs)]

pub use recformer_data as data;
pub use recformer_model as model;
pub use recformer_train as train;

pub mod bench;
pub mod demo;
pub mod error;
pub mod model_dir;
pub mod presets;
pub mod pretrained;

pub use error::{Error, Result};
pub use model_dir::ModelDir;
