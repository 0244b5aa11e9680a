//! RecFormer training: MLM + item-item contrastive pretraining, the official two-stage
//! finetuning loop, full-ranking evaluation, atomic checkpoints with exact resume.
//!
//! Training code is generic over `B: AutodiffBackend`, evaluation over `B: Backend`.
//! The library prints nothing: long-running work reports through [`progress::Progress`].
#![warn(missing_docs)]

pub mod checkpoint;
pub mod error;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod rng;
pub mod schedule;

pub use error::{Error, Result};
pub use metrics::Metrics;
pub use progress::{MetricsEvent, NoProgress, Progress};
