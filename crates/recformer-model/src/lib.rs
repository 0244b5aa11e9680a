//! Backend-generic RecFormer (Li et al., KDD'23, arXiv 2305.13731) on Burn: the Longformer encoder
//! (Beltagy et al., arXiv 2004.05150) with RecFormer's embeddings, the MLM head, cosine similarity,
//! and strict loading of the official PyTorch checkpoints.
//!
//! The numerics follow the official code (HF transformers 4.28 `LongformerEncoder` inside), checked
//! against PyTorch fixtures (`docs/parity.md`).
//!
//! ```no_run
//! use recformer_model::{backend::Cpu, RecformerConfig, RecformerInput};
//! use burn::tensor::{Int, Tensor};
//!
//! let device = Default::default();
//! let config = RecformerConfig::tiny();
//! let model = config.init_model::<Cpu>(&device);
//! let ids = Tensor::<Cpu, 2, Int>::from_data([[0, 5, 6, 7]], &device);
//! let ones = Tensor::<Cpu, 2, Int>::ones([1, 4], &device);
//! let types = Tensor::<Cpu, 2, Int>::from_data([[0, 1, 2, 2]], &device);
//! let items = Tensor::<Cpu, 2, Int>::from_data([[0, 1, 1, 1]], &device);
//! let out = model.forward(RecformerInput::with_cls_global(ids, ones, types, items));
//! assert_eq!(out.pooler_output.dims(), [1, 32]);
//! ```
//!
//! | feature | effect |
//! |---|---|
//! | `ndarray` (default) | `backend::Cpu` = `backend::NdArray` |
//! | `flex` (default) | `backend::Flex` (`Cpu` = Flex if `ndarray` is off) |
//! | `wgpu` | `backend::Wgpu` |
//! | `cuda` | `backend::Cuda` |

#![warn(missing_docs)]

pub mod activation;
pub mod attention;
pub mod backend;
pub mod config;
mod dropout;
pub mod embeddings;
pub mod encoder;
pub mod error;
pub mod fused;
pub mod heads;
mod init;
pub mod input;
pub mod keys;
pub mod layer;
mod layer_norm;
pub mod loader;
mod matmul;
pub mod model;
#[cfg(feature = "ndarray")]
mod ndarray_ops;
pub mod precision;
pub mod presets;
pub mod pretrained;
mod reshape;
mod safetensors_file;
pub mod save;
pub mod similarity;
mod token_linear;

pub use attention::{AttentionImpl, AttentionMasks, LongformerSelfAttention};
pub use config::RecformerConfig;
pub use embeddings::RecformerEmbeddings;
pub use encoder::LongformerEncoder;
pub use error::{Error, Result};
pub use heads::{LongformerLMHead, RecformerForPretraining};
pub use input::{RecformerInput, RecformerModelOutput};
pub use layer::{
    LongformerAttention, LongformerIntermediate, LongformerLayer, LongformerOutput,
    LongformerSelfOutput,
};
pub use loader::{
    load_checkpoint, load_checkpoint_as, load_checkpoint_with, CheckpointPrefix, LoadedCheckpoint,
    MlmHead,
};
pub use model::{Pooler, RecformerModel};
pub use precision::Precision;
pub use save::save_safetensors;
pub use similarity::{cosine_logits, cosine_scores, l2_normalize, normalized_scores};
