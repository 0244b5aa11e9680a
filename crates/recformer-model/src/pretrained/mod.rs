//! Starting RecFormer from a pretrained language model: an HF BERT / RoBERTa / Longformer
//! directory converted into a function-preserving [`RecformerForPretraining`].
//!
//! ```no_run
//! use recformer_model::backend::Cpu;
//! use recformer_model::pretrained::FromPretrainedConfig;
//! use recformer_model::RecformerForPretraining;
//!
//! let device = Default::default();
//! let (model, config, report) = RecformerForPretraining::<Cpu>::from_pretrained(
//!     "models/all-MiniLM-L6-v2".as_ref(),
//!     &FromPretrainedConfig::default(),
//!     &device,
//! )?;
//! println!("{report}");
//! # Ok::<(), recformer_model::Error>(())
//! ```
//!
//! "Function-preserving": shapes, activation, LayerNorm eps, vocabulary and pad id come from the
//! source config; every weight is copied or derived by the table in [`rules`] so that on one item
//! that fits in the attention window the converted model's hidden states equal the source model's
//! for the same token ids (tests: `tests/pretrained.rs`).

mod execute;
mod report;
pub mod rules;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::ParamId;
use burn::tensor::{backend::Backend, TensorData};
use burn_store::TensorSnapshot;
use serde::{Deserialize, Serialize};

use self::execute::{execute, source_of};
pub use self::report::{ConversionReport, Origin, ReportRow};
use self::rules::{deliberately_dropped, plan, Rule};
pub use self::source::{Array, Source, SourceKind};
use crate::config::RecformerConfig;
use crate::error::{Error, Result, ShapeMismatch};
use crate::heads::RecformerForPretraining;
use crate::loader::{load_snapshots, CheckpointPrefix, MlmHead};

/// The RecFormer-specific choices of a conversion; everything else comes from the source config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FromPretrainedConfig {
    /// Full local attention window of every layer (even). Default: 64 (official finetuning).
    pub attention_window: usize,
    /// Maximum tokens per sequence including the first token. Default (`None`): the source's
    /// learnt positions, at most 1024 (512 for BERT/RoBERTa, 1024 for Longformer-4096).
    pub max_token_num: Option<usize>,
    /// Item position rows (`<s>` + 50 items). Default: 51.
    pub max_item_embeddings: usize,
    /// Attributes per item. Default: 3.
    pub max_attr_num: usize,
    /// Tokens per attribute (key + value). Default: 32.
    pub max_attr_length: usize,
    /// `cls` (first-token vector, the official choice) or `avg` (mean of the real tokens).
    /// Default: `cls`.
    pub pooler_type: String,
}

impl Default for FromPretrainedConfig {
    fn default() -> Self {
        Self {
            attention_window: 64,
            max_token_num: None,
            max_item_embeddings: 51,
            max_attr_num: 3,
            max_attr_length: 32,
            pooler_type: "cls".into(),
        }
    }
}

/// A converted model, as HF-named tensors in the `RecformerForPretraining` key style.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The RecFormer config (source geometry + [`FromPretrainedConfig`]).
    pub config: RecformerConfig,
    /// The source.
    pub source: Source,
    /// `longformer.*` and `lm_head.*` tensors (PyTorch layout).
    pub tensors: BTreeMap<String, Array>,
    /// What each tensor is and what was dropped.
    pub report: ConversionReport,
}

/// The RecFormer config for a source and the conversion choices.
pub fn target_config(source: &Source, options: &FromPretrainedConfig) -> Result<RecformerConfig> {
    let c = &source.config;
    let learnt = source.learnt_positions();
    let max_token_num = options.max_token_num.unwrap_or(learnt.min(1024));
    let pad = source.pad_token_id;
    let config = RecformerConfig {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        intermediate_size: c.intermediate_size,
        hidden_act: c.hidden_act.clone(),
        layer_norm_eps: c.layer_norm_eps,
        max_position_embeddings: pad + 1 + learnt.max(max_token_num),
        pad_token_id: pad,
        attention_window: vec![options.attention_window; c.num_hidden_layers],
        hidden_dropout_prob: c.hidden_dropout_prob,
        attention_probs_dropout_prob: c.attention_probs_dropout_prob,
        initializer_range: c.initializer_range,
        token_type_size: 4,
        max_token_num,
        max_item_embeddings: options.max_item_embeddings,
        max_attr_num: options.max_attr_num,
        max_attr_length: options.max_attr_length,
        pooler_type: options.pooler_type.clone(),
        ..RecformerConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// Converts the HF model directory `dir` (`config.json` + `model.safetensors` or
/// `pytorch_model.bin`), strictly: every source tensor is used or deliberately dropped, every
/// RecFormer tensor is copied, derived or fresh (see [`rules`]).
///
/// # Errors
/// Unknown `model_type`, unsupported activation or position type, unreadable weights, missing,
/// unexpected or mis-shaped keys, a tied MLM bias that differs from its twin.
pub fn convert(dir: &Path, options: &FromPretrainedConfig) -> Result<Conversion> {
    let source = Source::open(dir)?;
    let path = source.weights_path.clone();
    let (floats, buffers) = source::read_state_dict(&source)?;
    let kind = source.kind;
    let config = target_config(&source, options)?;

    let expected = rules::source_shapes(&source);
    let mut unexpected: Vec<String> = buffers
        .iter()
        .filter(|k| deliberately_dropped(k, kind).is_none())
        .cloned()
        .collect();
    let mut mismatches = Vec::new();
    for (key, array) in &floats {
        match expected.get(key) {
            Some(shape) if shape != &array.shape => mismatches.push(ShapeMismatch {
                key: key.clone(),
                expected: shape.clone(),
                found: array.shape.clone(),
            }),
            Some(_) => {}
            None if deliberately_dropped(key, kind).is_some() => {}
            None => unexpected.push(key.clone()),
        }
    }
    if !unexpected.is_empty() {
        return Err(Error::UnexpectedKeys {
            path,
            keys: unexpected,
        });
    }
    if !mismatches.is_empty() {
        return Err(Error::ShapeMismatches { path, mismatches });
    }
    let tied = rules::tied_bias_key(kind);
    if let (Some(a), Some(b)) = (floats.get(tied), floats.get(rules::head_bias_key(kind))) {
        if a != b {
            return Err(Error::TiedMismatch {
                path,
                a: tied.into(),
                b: rules::head_bias_key(kind).into(),
            });
        }
    }

    let shapes: BTreeMap<String, Vec<usize>> = floats
        .iter()
        .map(|(k, a)| (k.clone(), a.shape.clone()))
        .collect();
    let table = plan(&source, &config, &shapes);
    let mut missing = Vec::new();
    for row in &table {
        let needed = match &row.rule {
            Rule::Copy(k) | Rule::Positions(k) | Rule::RepeatFirstRow(k) => Some(k),
            Rule::CopyFirst { fallback, .. } => Some(fallback),
            Rule::Zeros | Rule::Ones | Rule::Normal(_) => None,
        };
        if let Some(k) = needed.filter(|k| !floats.contains_key(*k)) {
            missing.push(k.to_string());
        }
    }
    if !missing.is_empty() {
        missing.dedup();
        return Err(Error::MissingKeys {
            path,
            keys: missing,
        });
    }

    let mut used = BTreeSet::new();
    let mut tensors = BTreeMap::new();
    let mut rows = Vec::new();
    for planned in table {
        let (array, origin, detail) = execute(&planned.rule, &planned, &floats, &source, &config);
        if let Some(k) = source_of(&planned.rule, &floats) {
            used.insert(k.to_string());
        }
        debug_assert_eq!(array.shape, planned.shape, "{}", planned.target);
        rows.push(ReportRow {
            target: planned.target.clone(),
            origin,
            detail,
        });
        tensors.insert(planned.target, array);
    }
    let mut dropped = Vec::new();
    for key in floats.keys().chain(buffers.iter()) {
        if used.contains(key) {
            continue;
        }
        match deliberately_dropped(key, kind) {
            Some(reason) => dropped.push((key.to_string(), reason.to_string())),
            None => {
                return Err(Error::UnexpectedKeys {
                    path,
                    keys: vec![key.to_string()],
                })
            }
        }
    }
    let report = ConversionReport {
        source: path,
        kind,
        rows,
        dropped,
    };
    Ok(Conversion {
        config,
        source,
        tensors,
        report,
    })
}

impl Conversion {
    /// The tensors to write: the table's plus `lm_head.decoder.bias`, the tied twin of
    /// `lm_head.bias` that PyTorch writes.
    fn all_tensors(&self) -> Vec<(String, &Array)> {
        let mut out: Vec<(String, &Array)> =
            self.tensors.iter().map(|(k, a)| (k.clone(), a)).collect();
        if let Some(bias) = self.tensors.get("lm_head.bias") {
            out.push(("lm_head.decoder.bias".into(), bias));
        }
        out
    }

    /// Writes the converted weights as an f32 safetensors file in the `RecformerForPretraining`
    /// key style (with `{"format": "pt"}` metadata), loadable by
    /// [`load_checkpoint`](crate::load_checkpoint) and by PyTorch.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let tensors = self.all_tensors();
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, a)| a.data.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::with_capacity(tensors.len());
        for ((key, array), bytes) in tensors.iter().zip(&bytes) {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                array.shape.clone(),
                bytes,
            )
            .map_err(|source| Error::SafetensorsWrite {
                path: path.to_path_buf(),
                source,
            })?;
            views.push((key.clone(), view));
        }
        let metadata = Some(std::collections::HashMap::from([(
            "format".to_string(),
            "pt".to_string(),
        )]));
        safetensors::serialize_to_file(views, metadata, path).map_err(|source| {
            Error::SafetensorsWrite {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Builds the Burn model on `device` through the strict checkpoint loader.
    pub fn into_model<B: Backend>(&self, device: &B::Device) -> Result<RecformerForPretraining<B>> {
        let snapshots = self
            .all_tensors()
            .into_iter()
            .map(|(key, array)| {
                let data = TensorData::new(array.data.clone(), array.shape.clone());
                let snapshot = TensorSnapshot::from_data(
                    data,
                    key.split('.').map(String::from).collect(),
                    Vec::new(),
                    ParamId::new(),
                );
                (key, snapshot)
            })
            .collect();
        let loaded = load_snapshots::<B>(
            snapshots,
            &self.config,
            device,
            &self.report.source,
            Some(CheckpointPrefix::Pretraining),
            MlmHead::Load,
        )?;
        let lm_head = loaded.lm_head.ok_or_else(|| Error::MissingKeys {
            path: self.report.source.clone(),
            keys: vec!["lm_head.*".into()],
        })?;
        Ok(RecformerForPretraining {
            longformer: loaded.model,
            lm_head,
        })
    }
}

impl<B: Backend> RecformerForPretraining<B> {
    /// Converts an HF BERT / RoBERTa / Longformer directory (see [`convert`]) and builds the model:
    /// returns it with its config and the conversion report (HF's `from_pretrained`, for RecFormer).
    pub fn from_pretrained(
        dir: &Path,
        options: &FromPretrainedConfig,
        device: &B::Device,
    ) -> Result<(Self, RecformerConfig, ConversionReport)> {
        let conversion = convert(dir, options)?;
        let model = conversion.into_model(device)?;
        Ok((model, conversion.config, conversion.report))
    }
}
