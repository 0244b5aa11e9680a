//! [`RecformerConfig`]: the HF `config.json` of a RecFormer model (Longformer fields + RecFormer extras).
//!
//! Mirrors `transformers.LongformerConfig` (4.28) and `recformer/models.py :: RecformerConfig`.
//! Unknown JSON keys are ignored (HF configs carry many); absent keys take the Python class defaults.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::heads::RecformerForPretraining;
use crate::model::RecformerModel;

/// `model_type` written to `config.json` ([`RecformerConfig::save_json`]); reading ignores it.
pub const MODEL_TYPE: &str = "longformer";

/// Configuration of a RecFormer model, with HF `config.json` field names.
///
/// `attention_window` accepts an int or a per-layer list in JSON and is stored per layer (an int is
/// repeated for every layer once the whole config is read, see [`RecformerConfig::from_json_str`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecformerConfig {
    /// Vocabulary size. Default: 30522 (HF `LongformerConfig`).
    pub vocab_size: usize,
    /// Hidden size. Default: 768.
    pub hidden_size: usize,
    /// Number of encoder layers. Default: 12.
    pub num_hidden_layers: usize,
    /// Attention heads per layer. Default: 12.
    pub num_attention_heads: usize,
    /// Feed-forward inner size. Default: 3072.
    pub intermediate_size: usize,
    /// Activation of the feed-forward block; only `"gelu"` (exact erf GELU) is supported. Default: "gelu".
    pub hidden_act: String,
    /// LayerNorm epsilon. Default: 1e-12 (HF default; RoBERTa/Longformer-base use 1e-5).
    pub layer_norm_eps: f64,
    /// Rows of the token position table. Default: 512.
    pub max_position_embeddings: usize,
    /// Padding token id (also the padding position id). Default: 1.
    pub pad_token_id: usize,
    /// Full local attention window per layer (even; one-sided window is half of it). Default: `[512]` per layer.
    #[serde(deserialize_with = "deserialize_window")]
    pub attention_window: Vec<usize>,
    /// Dropout on embeddings and hidden states. Default: 0.1.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities. Default: 0.1.
    pub attention_probs_dropout_prob: f64,
    /// Std of the normal initialisation. Default: 0.02.
    pub initializer_range: f64,
    /// Rows of the token type table (`0=<s>, 1=key, 2=value, 3=<pad>`). Default: 4.
    pub token_type_size: usize,
    /// Maximum tokens per sequence including `<s>`. Default: 2048.
    pub max_token_num: usize,
    /// Rows of the item position table (1 for `<s>` + items). Default: 32.
    pub max_item_embeddings: usize,
    /// Attributes kept per item. Default: 12.
    pub max_attr_num: usize,
    /// Tokens per attribute (key + value). Default: 8.
    pub max_attr_length: usize,
    /// Pooling: `"cls"` (first token, official) or `"avg"` (mean over real tokens, correct after
    /// window padding, unlike upstream's). Default: "cls".
    pub pooler_type: String,
    /// Cosine-similarity temperature. Default: 0.05.
    pub temp: f64,
    /// Weight of the MLM loss in pretraining. Default: 0.1.
    pub mlm_weight: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WindowSpec {
    One(usize),
    PerLayer(Vec<usize>),
}

/// `attention_window` as an int (`[w]`, expanded to one per layer by
/// [`RecformerConfig::from_json_str`]) or a per-layer list.
fn deserialize_window<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<usize>, D::Error> {
    Ok(match WindowSpec::deserialize(d)? {
        WindowSpec::One(w) => vec![w],
        WindowSpec::PerLayer(v) => v,
    })
}

impl Default for RecformerConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            max_position_embeddings: 512,
            pad_token_id: 1,
            attention_window: vec![512; 12],
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            initializer_range: 0.02,
            token_type_size: 4,
            max_token_num: 2048,
            max_item_embeddings: 32,
            max_attr_num: 12,
            max_attr_length: 8,
            pooler_type: "cls".into(),
            temp: 0.05,
            mlm_weight: 0.1,
        }
    }
}

impl RecformerConfig {
    /// RecFormer-base as run by the official scripts: `allenai/longformer-base-4096` geometry with the
    /// overrides of `finetune.py`/`convert_pretrain_ckpt.py` (window 64 in every layer, 1024 tokens,
    /// 51 item positions, 3 attributes × 32 tokens, temp 0.05).
    pub fn base() -> Self {
        Self {
            vocab_size: 50265,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            layer_norm_eps: 1e-5,
            max_position_embeddings: 4098,
            pad_token_id: 1,
            attention_window: vec![64; 12],
            max_token_num: 1024,
            max_item_embeddings: 51,
            max_attr_num: 3,
            max_attr_length: 32,
            ..Self::default()
        }
    }

    /// Recformer-mini (`kiddothe2b/longformer-mini-1024` geometry as used by the HKUST course project):
    /// 6 layers, hidden 256, 4 heads, FFN 1024, BERT vocabulary (30522, pad id 0), 1026 positions,
    /// window 64 per layer, 512 tokens. `layer_norm_eps` is BERT's 1e-12.
    pub fn mini() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 256,
            num_hidden_layers: 6,
            num_attention_heads: 4,
            intermediate_size: 1024,
            layer_norm_eps: 1e-12,
            max_position_embeddings: 1026,
            pad_token_id: 0,
            attention_window: vec![64; 6],
            max_token_num: 512,
            max_item_embeddings: 51,
            max_attr_num: 3,
            max_attr_length: 32,
            ..Self::default()
        }
    }

    /// A tiny config for tests: vocab 64, hidden 32, 2 layers, 4 heads, FFN 64, window 4 (one-sided 2),
    /// 32 positions, 6 item positions. It equals the config of the committed parity fixtures.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 64,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            layer_norm_eps: 1e-5,
            max_position_embeddings: 32,
            pad_token_id: 1,
            attention_window: vec![4; 2],
            max_token_num: 24,
            max_item_embeddings: 6,
            max_attr_num: 3,
            max_attr_length: 8,
            ..Self::default()
        }
    }

    /// Parses a config from JSON text, expands a scalar `attention_window` to every layer and validates.
    pub fn from_json_str(json: &str, path: &Path) -> Result<Self> {
        let mut config: Self = serde_json::from_str(json).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        match value.get("attention_window") {
            Some(w) if w.is_number() => {
                let w = config.attention_window[0];
                config.attention_window = vec![w; config.num_hidden_layers];
            }
            None => config.attention_window = vec![512; config.num_hidden_layers],
            Some(_) => {}
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates an HF-style `config.json`.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Writes the config as pretty JSON (HF field names; `attention_window` as a per-layer list),
    /// with `"model_type": "longformer"` first (the HF config class RecFormer's extends), so that
    /// HF tools recognise the file.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut value = serde_json::Map::new();
        value.insert("model_type".into(), MODEL_TYPE.into());
        if let serde_json::Value::Object(fields) =
            serde_json::to_value(self).map_err(Error::JsonWrite)?
        {
            value.extend(fields);
        }
        let text = serde_json::to_string_pretty(&value).map_err(Error::JsonWrite)?;
        std::fs::write(path, text + "\n").map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("token_type_size", self.token_type_size),
            ("max_token_num", self.max_token_num),
            ("max_item_embeddings", self.max_item_embeddings),
        ] {
            if value == 0 {
                return bad(field, "must be > 0".into());
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(
                "num_attention_heads",
                format!(
                    "hidden_size {} is not divisible by num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            );
        }
        if self.attention_window.len() != self.num_hidden_layers {
            return bad(
                "attention_window",
                format!(
                    "{} window(s) given for {} layer(s)",
                    self.attention_window.len(),
                    self.num_hidden_layers
                ),
            );
        }
        for (layer, &w) in self.attention_window.iter().enumerate() {
            if w == 0 || w % 2 != 0 {
                return bad(
                    "attention_window",
                    format!("layer {layer}: window {w} must be even and > 0"),
                );
            }
        }
        if self.hidden_act != "gelu" {
            return bad(
                "hidden_act",
                format!("`{}` is not supported (only exact `gelu`)", self.hidden_act),
            );
        }
        if crate::model::Pooler::from_name(&self.pooler_type).is_none() {
            return bad(
                "pooler_type",
                format!("`{}` is not supported (`cls` or `avg`)", self.pooler_type),
            );
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(
                "pad_token_id",
                format!("{} >= vocab_size {}", self.pad_token_id, self.vocab_size),
            );
        }
        // Window padding pads item positions with `pad_token_id` (as upstream does).
        if self.pad_token_id >= self.max_item_embeddings {
            return bad(
                "max_item_embeddings",
                format!(
                    "{} rows cannot hold the window-padding item position pad_token_id={}",
                    self.max_item_embeddings, self.pad_token_id
                ),
            );
        }
        // Position ids go up to pad + seq_len; sequences are at most max_token_num tokens long.
        let needed = self.pad_token_id + self.max_token_num + 1;
        if self.max_position_embeddings < needed {
            return bad(
                "max_position_embeddings",
                format!(
                    "{} rows, but max_token_num {} with pad_token_id {} needs {needed}",
                    self.max_position_embeddings, self.max_token_num, self.pad_token_id
                ),
            );
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(field, format!("{p} is not in [0, 1)"));
            }
        }
        if self.layer_norm_eps <= 0.0 || self.layer_norm_eps.is_nan() {
            return bad(
                "layer_norm_eps",
                format!("{} must be > 0", self.layer_norm_eps),
            );
        }
        if self.temp <= 0.0 || self.temp.is_nan() {
            return bad("temp", format!("{} must be > 0", self.temp));
        }
        Ok(())
    }

    /// Head dimension (`hidden_size / num_attention_heads`).
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The largest window; sequences are padded to a multiple of it (as in HF).
    pub fn max_attention_window(&self) -> usize {
        self.attention_window.iter().copied().max().unwrap_or(2)
    }

    /// Initialises a random [`RecformerModel`] (HF `_init_weights`: normal(0, `initializer_range`)
    /// weights, zero biases, LayerNorm 1/0, zeroed padding rows).
    ///
    /// # Panics
    /// If the config is invalid (call [`validate`](Self::validate) first for a `Result`).
    pub fn init_model<B: Backend>(&self, device: &B::Device) -> RecformerModel<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RecformerConfig: {e}");
        }
        RecformerModel::init(self, device)
    }

    /// Initialises a random [`RecformerForPretraining`] (encoder + untied MLM head).
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn init_pretraining<B: Backend>(&self, device: &B::Device) -> RecformerForPretraining<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RecformerConfig: {e}");
        }
        RecformerForPretraining::init(self, device)
    }

    /// Number of parameters of [`RecformerModel`] (embeddings + encoder; the pooler has none),
    /// computed from the shapes alone. Add [`lm_head_num_params`](Self::lm_head_num_params) for
    /// [`RecformerForPretraining`].
    pub fn model_num_params(&self) -> usize {
        self.embeddings_num_params() + self.num_hidden_layers * self.layer_num_params()
    }

    /// Parameters of `RecformerEmbeddings`: four tables and a LayerNorm.
    pub fn embeddings_num_params(&self) -> usize {
        let h = self.hidden_size;
        (self.vocab_size
            + self.max_position_embeddings
            + self.token_type_size
            + self.max_item_embeddings)
            * h
            + 2 * h
    }

    /// Parameters of one `LongformerLayer`: 6 attention projections, the attention output dense +
    /// LayerNorm, the FFN (two denses) + LayerNorm.
    pub fn layer_num_params(&self) -> usize {
        let h = self.hidden_size;
        let f = self.intermediate_size;
        let linear = |i: usize, o: usize| i * o + o;
        6 * linear(h, h) + linear(h, h) + 2 * h + linear(h, f) + linear(f, h) + 2 * h
    }

    /// Parameters of `LongformerLMHead` (dense, LayerNorm, decoder weight, one shared bias).
    pub fn lm_head_num_params(&self) -> usize {
        let h = self.hidden_size;
        h * h + h + 2 * h + h * self.vocab_size + self.vocab_size
    }
}
