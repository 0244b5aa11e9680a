//! # recformer
//!
//! RecFormer ("Text Is All You Need: Learning Language Representations for Sequential
//! Recommendation", Li et al., KDD'23, [arXiv 2305.13731](https://arxiv.org/abs/2305.13731)) in
//! pure Rust on [Burn](https://burn.dev). This facade re-exports the three library crates and
//! nothing else:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`data`] | `recformer-data` | item flattening, tokenisation, sequences, batching, dataset formats |
//! | [`model`] | `recformer-model` | backend-generic Longformer + RecFormer, presets, checkpoint loading |
//! | [`train`] | `recformer-train` | losses, pretraining, two-stage finetuning, metrics, checkpoints, model directories, [`Recommender`] |
//!
//! Backends are features (`ndarray`, `flex` by default; `wgpu`, `cuda`), passed through to the
//! library crates: `default-features = false, features = ["flex"]` builds with Flex alone. The
//! `recformer` binary is the `recformer-cli` crate.
#![warn(missing_docs)]

pub use recformer_data as data;
pub use recformer_model as model;
pub use recformer_train as train;

pub use recformer_train::{ModelDir, ModelSpec, Recommender};
