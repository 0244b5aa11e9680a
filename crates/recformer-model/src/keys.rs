//! HF state-dict key names and shapes, and the mapping to Burn module paths.
//!
//! Two renaming rules (plus burn-store's `PyTorchToBurnAdapter`, which transposes `nn.Linear`
//! weights and maps LayerNorm `weight/bias` to `gamma/beta`):
//!
//! | HF key fragment | Burn field path |
//! |---|---|
//! | `.LayerNorm.` (embeddings, attention output, output) | `.layer_norm.` |
//! | `.attention.self.` | `.attention.self_attn.` |
//!
//! `lm_head.*` keys are identical in both namings (`lm_head.layer_norm` is already lower-case).

use std::collections::BTreeMap;

use crate::config::RecformerConfig;

/// HF key (without `longformer.` prefix) -> Burn module path of [`RecformerModel`](crate::RecformerModel).
pub fn hf_to_burn(key: &str) -> String {
    key.replace(".LayerNorm.", ".layer_norm.")
        .replace(".self.", ".self_attn.")
}

/// Burn parameter path (module path with LayerNorm `gamma`/`beta`) for an HF key of the model
/// (`layer_norm_module = "LayerNorm"`) or of the MLM head (`"layer_norm"`, keys without `lm_head.`).
pub fn burn_param_path(hf_key: &str) -> String {
    let path = hf_to_burn(hf_key);
    match path.rsplit_once('.') {
        Some((module, "weight")) if module.ends_with("layer_norm") => format!("{module}.gamma"),
        Some((module, "bias")) if module.ends_with("layer_norm") => format!("{module}.beta"),
        _ => path,
    }
}

/// Inverse of [`burn_param_path`] for a model path: LayerNorm `gamma`/`beta` -> `weight`/`bias`,
/// then [`burn_to_hf`].
pub fn hf_key_of_param(burn_path: &str) -> String {
    let path = match burn_path.rsplit_once('.') {
        Some((module, "gamma")) => format!("{module}.weight"),
        Some((module, "beta")) => format!("{module}.bias"),
        _ => burn_path.to_string(),
    };
    burn_to_hf(&path)
}

/// Burn module path of [`RecformerModel`](crate::RecformerModel) -> HF key (without prefix).
pub fn burn_to_hf(path: &str) -> String {
    path.replace(".layer_norm.", ".LayerNorm.")
        .replace(".self_attn.", ".self.")
}

/// Every HF key of `RecformerModel.state_dict()` (except the `embeddings.position_ids` buffer) with its
/// PyTorch shape (`[out, in]` for linear weights), computed from the config.
pub fn model_key_shapes(config: &RecformerConfig) -> BTreeMap<String, Vec<usize>> {
    let h = config.hidden_size;
    let f = config.intermediate_size;
    let mut keys = BTreeMap::new();
    let mut add = |k: String, s: Vec<usize>| {
        keys.insert(k, s);
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![config.vocab_size, h],
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![config.max_position_embeddings, h],
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![config.token_type_size, h],
    );
    add(
        "embeddings.item_position_embeddings.weight".into(),
        vec![config.max_item_embeddings, h],
    );
    add("embeddings.LayerNorm.weight".into(), vec![h]);
    add("embeddings.LayerNorm.bias".into(), vec![h]);
    for i in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        for proj in [
            "query",
            "key",
            "value",
            "query_global",
            "key_global",
            "value_global",
        ] {
            add(format!("{p}.attention.self.{proj}.weight"), vec![h, h]);
            add(format!("{p}.attention.self.{proj}.bias"), vec![h]);
        }
        add(format!("{p}.attention.output.dense.weight"), vec![h, h]);
        add(format!("{p}.attention.output.dense.bias"), vec![h]);
        add(format!("{p}.attention.output.LayerNorm.weight"), vec![h]);
        add(format!("{p}.attention.output.LayerNorm.bias"), vec![h]);
        add(format!("{p}.intermediate.dense.weight"), vec![f, h]);
        add(format!("{p}.intermediate.dense.bias"), vec![f]);
        add(format!("{p}.output.dense.weight"), vec![h, f]);
        add(format!("{p}.output.dense.bias"), vec![h]);
        add(format!("{p}.output.LayerNorm.weight"), vec![h]);
        add(format!("{p}.output.LayerNorm.bias"), vec![h]);
    }
    keys
}

/// HF keys of `LongformerLMHead` (without the `lm_head.` prefix; `decoder.bias` is the tied duplicate
/// of `bias` and is not listed).
pub fn lm_head_key_shapes(config: &RecformerConfig) -> BTreeMap<String, Vec<usize>> {
    let h = config.hidden_size;
    BTreeMap::from([
        ("dense.weight".to_string(), vec![h, h]),
        ("dense.bias".to_string(), vec![h]),
        ("layer_norm.weight".to_string(), vec![h]),
        ("layer_norm.bias".to_string(), vec![h]),
        ("decoder.weight".to_string(), vec![config.vocab_size, h]),
        ("bias".to_string(), vec![config.vocab_size]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_round_trips() {
        for key in model_key_shapes(&RecformerConfig::tiny()).keys() {
            assert_eq!(&burn_to_hf(&hf_to_burn(key)), key);
        }
        assert_eq!(
            hf_to_burn("encoder.layer.3.attention.self.query_global.weight"),
            "encoder.layer.3.attention.self_attn.query_global.weight"
        );
        assert_eq!(
            hf_to_burn("encoder.layer.0.attention.output.LayerNorm.bias"),
            "encoder.layer.0.attention.output.layer_norm.bias"
        );
        assert_eq!(
            burn_param_path("embeddings.LayerNorm.weight"),
            "embeddings.layer_norm.gamma"
        );
        assert_eq!(burn_param_path("layer_norm.bias"), "layer_norm.beta");
        for key in model_key_shapes(&RecformerConfig::tiny()).keys() {
            assert_eq!(&hf_key_of_param(&burn_param_path(key)), key);
        }
    }

    #[test]
    fn key_count_matches_layout() {
        let c = RecformerConfig::tiny();
        assert_eq!(model_key_shapes(&c).len(), 6 + c.num_hidden_layers * 22);
        assert_eq!(lm_head_key_shapes(&c).len(), 6);
    }
}
