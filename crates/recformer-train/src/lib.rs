//! RecFormer training: MLM + item-item contrastive pretraining, the official two-stage
//! finetuning loop, full-ranking evaluation, atomic checkpoints with exact resume.
//!
//! Training code is generic over `B: AutodiffBackend`, evaluation over `B: Backend`.
//! The library prints nothing: long-running work reports through [`progress::Progress`].
//!
//! Entry points: [`pretrain::pretrain`], [`finetune::finetune`], [`evaluate::evaluate`] /
//! [`finetune::evaluate_split`], [`encode::encode_all_items`].
#![warn(missing_docs)]

pub mod checkpoint;
pub mod cold_start;
pub mod config;
pub mod encode;
pub mod error;
pub mod evaluate;
pub mod finetune;
mod freeze;
pub mod inputs;
pub mod item_index;
pub mod loss;
pub mod metrics;
pub mod model_dir;
pub mod optim;
pub mod pretrain;
pub mod progress;
pub mod recommender;
pub mod run_dir;
pub mod schedule;
pub mod seeds;
mod session;
pub mod stepper;
pub mod throughput;
pub mod waves;

pub use cold_start::{ColdStartMetrics, TrainingItems};
pub use config::{FinetuneConfig, FinetuneVariant, OptimizerConfig, PretrainConfig};
pub use encode::{encode_all_items, encode_histories};
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_newest_item, evaluate_vectors, EvalOptions, Evaluation};
pub use finetune::{
    finetune, FinetuneData, FinetuneOutcome, FinetuneResult, FinetuneState, RunControl,
};
pub use inputs::InputBuilder;
pub use item_index::ItemIndex;
pub use metrics::Metrics;
pub use model_dir::{ModelDir, ModelSpec};
pub use pretrain::{pretrain, PretrainData, PretrainOutcome, PretrainState};
pub use progress::{MetricsEvent, NoProgress, Progress};
pub use recommender::{Recommendation, Recommender};
pub use run_dir::RunDir;
