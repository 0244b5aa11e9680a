//! The conversion table: one rule per RecFormer tensor, saying where its values come from.
//!
//! | RecFormer key (`RecformerForPretraining`) | rule |
//! |---|---|
//! | `longformer.embeddings.word_embeddings.weight` | copy |
//! | `longformer.embeddings.position_embeddings.weight` | derive: shift to RecFormer's position ids, extend by repeating the learnt table |
//! | `longformer.embeddings.token_type_embeddings.weight` | derive: every row ← the source's type-0 row |
//! | `longformer.embeddings.item_position_embeddings.weight` | fresh: zeros |
//! | `longformer.embeddings.LayerNorm.*`, every layer's `query/key/value`, attention output, FFN, LayerNorms | copy |
//! | `…attention.self.{query,key,value}_global.*` | copy of Longformer's own, else derive: copy of the local projection |
//! | `lm_head.dense.*`, `lm_head.layer_norm.*`, `lm_head.bias` | copy of the source MLM head, else fresh (normal / LayerNorm 1, 0 / zeros) |
//! | `lm_head.decoder.weight` | copy of the source decoder, else derive: the word embeddings (tied) |
//!
//! Source keys that are read by no rule must be listed in [`deliberately_dropped`], or the
//! conversion fails.

use std::collections::BTreeMap;

use super::source::{Source, SourceKind};
use crate::config::RecformerConfig;
use crate::keys::model_key_shapes;

const ITEM_POSITIONS: &str = "embeddings.item_position_embeddings.weight";

/// Where a RecFormer tensor comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The source tensor, unchanged.
    Copy(String),
    /// `preferred` if the source has it (copied), else `fallback` (derived).
    CopyFirst {
        /// The preferred source key (e.g. Longformer's own `query_global`).
        preferred: String,
        /// The fallback (e.g. the local `query`).
        fallback: String,
    },
    /// The source position table re-indexed for RecFormer's position ids.
    Positions(String),
    /// Every row is the source's row 0 (token types).
    RepeatFirstRow(String),
    /// A fresh tensor of zeros.
    Zeros,
    /// A fresh tensor of ones.
    Ones,
    /// A fresh normal(0, std) tensor.
    Normal(f64),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// RecFormer key (`longformer.*` / `lm_head.*`).
    pub target: String,
    /// PyTorch shape of the RecFormer tensor.
    pub shape: Vec<usize>,
    /// How it is made.
    pub rule: Rule,
}

/// Source MLM-head keys per family: (dense weight, dense bias, LayerNorm weight, LayerNorm bias,
/// decoder weight, output bias, tied decoder bias).
fn head_keys(kind: SourceKind) -> [&'static str; 7] {
    match kind {
        SourceKind::Bert => [
            "cls.predictions.transform.dense.weight",
            "cls.predictions.transform.dense.bias",
            "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.transform.LayerNorm.bias",
            "cls.predictions.decoder.weight",
            "cls.predictions.bias",
            "cls.predictions.decoder.bias",
        ],
        SourceKind::Roberta | SourceKind::Longformer => [
            "lm_head.dense.weight",
            "lm_head.dense.bias",
            "lm_head.layer_norm.weight",
            "lm_head.layer_norm.bias",
            "lm_head.decoder.weight",
            "lm_head.bias",
            "lm_head.decoder.bias",
        ],
    }
}

/// The tied duplicate of the MLM output bias (checked equal, then dropped).
pub fn tied_bias_key(kind: SourceKind) -> &'static str {
    head_keys(kind)[6]
}

/// The source MLM output bias.
pub fn head_bias_key(kind: SourceKind) -> &'static str {
    head_keys(kind)[5]
}

/// Whether the source has an MLM head (its transform dense weight is present).
pub fn has_head(kind: SourceKind, keys: &BTreeMap<String, Vec<usize>>) -> bool {
    keys.contains_key(head_keys(kind)[0])
}

/// The shapes every known source key must have, from the source config: the RecFormer layout
/// of [`model_key_shapes`] at the source's sizes (without item positions), plus the MLM head.
pub fn source_shapes(source: &Source) -> BTreeMap<String, Vec<usize>> {
    let c = &source.config;
    let (h, v) = (c.hidden_size, c.vocab_size);
    let layout = RecformerConfig {
        vocab_size: v,
        hidden_size: h,
        num_hidden_layers: c.num_hidden_layers,
        intermediate_size: c.intermediate_size,
        max_position_embeddings: c.max_position_embeddings,
        token_type_size: c.type_vocab_size,
        ..RecformerConfig::default()
    };
    let mut s = model_key_shapes(&layout);
    s.remove(ITEM_POSITIONS);
    let [dw, db, lw, lb, decw, bias, decb] = head_keys(source.kind);
    for (k, shape) in [
        (dw, vec![h, h]),
        (db, vec![h]),
        (lw, vec![h]),
        (lb, vec![h]),
        (decw, vec![v, h]),
        (bias, vec![v]),
        (decb, vec![v]),
    ] {
        s.insert(k.into(), shape);
    }
    s
}

/// Source keys that no rule reads, on purpose, with the reason.
pub fn deliberately_dropped(key: &str, kind: SourceKind) -> Option<&'static str> {
    if key.starts_with("pooler.") {
        Some("the HF pooler (dense + tanh); RecFormer pools without parameters")
    } else if key.starts_with("cls.seq_relationship.") {
        Some("BERT's next-sentence-prediction head")
    } else if key == "embeddings.position_ids" || key == "embeddings.token_type_ids" {
        Some("an index buffer, not a weight")
    } else if key == tied_bias_key(kind) {
        Some("the tied duplicate of the MLM output bias (checked equal)")
    } else {
        None
    }
}

/// The table for `source` → `target` (`source_keys`: the source's float keys with their shapes).
pub fn plan(
    source: &Source,
    target: &RecformerConfig,
    source_keys: &BTreeMap<String, Vec<usize>>,
) -> Vec<Planned> {
    let h = target.hidden_size;
    let v = target.vocab_size;
    let mut rows = Vec::new();
    let mut add = |target: String, shape: Vec<usize>, rule: Rule| {
        rows.push(Planned {
            target,
            shape,
            rule,
        })
    };
    for (key, shape) in model_key_shapes(target) {
        let rule = match key.as_str() {
            "embeddings.position_embeddings.weight" => Rule::Positions(key.clone()),
            "embeddings.token_type_embeddings.weight" => Rule::RepeatFirstRow(key.clone()),
            ITEM_POSITIONS => Rule::Zeros,
            k if k.contains("_global.") => Rule::CopyFirst {
                preferred: k.to_string(),
                fallback: k.replace("_global.", "."),
            },
            k => Rule::Copy(k.to_string()),
        };
        add(format!("longformer.{key}"), shape, rule);
    }
    let copy = |k: &str| Rule::Copy(k.to_string());
    let [dw, db, lw, lb, decw, bias, _] = head_keys(source.kind);
    let word = "embeddings.word_embeddings.weight";
    let decoder = Rule::CopyFirst {
        preferred: decw.into(),
        fallback: word.into(),
    };
    if has_head(source.kind, source_keys) {
        add("lm_head.dense.weight".into(), vec![h, h], copy(dw));
        add("lm_head.dense.bias".into(), vec![h], copy(db));
        add("lm_head.layer_norm.weight".into(), vec![h], copy(lw));
        add("lm_head.layer_norm.bias".into(), vec![h], copy(lb));
        add("lm_head.decoder.weight".into(), vec![v, h], decoder);
        add("lm_head.bias".into(), vec![v], copy(bias));
    } else {
        let std = source.config.initializer_range;
        add("lm_head.dense.weight".into(), vec![h, h], Rule::Normal(std));
        add("lm_head.dense.bias".into(), vec![h], Rule::Zeros);
        add("lm_head.layer_norm.weight".into(), vec![h], Rule::Ones);
        add("lm_head.layer_norm.bias".into(), vec![h], Rule::Zeros);
        add("lm_head.decoder.weight".into(), vec![v, h], decoder);
        add("lm_head.bias".into(), vec![v], Rule::Zeros);
    }
    rows
}
