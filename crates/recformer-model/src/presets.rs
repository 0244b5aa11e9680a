//! Named model shapes (`--preset`): the paper's `base`, the seed's `mini`, the shape of
//! all-MiniLM-L6-v2 as `recformer init --max-tokens 64` converts it (`minilm`, what the Scientific
//! recipe trains), a CPU-friendly `small` for catalogues trained from scratch, and the test-sized
//! `tiny`.

use crate::config::RecformerConfig;
use crate::error::{Error, Result};

/// The preset names, in the order `--help` lists them.
pub const NAMES: [&str; 5] = ["base", "mini", "minilm", "small", "tiny"];

/// The config of a named preset (random-init shapes; vocabulary as in the preset).
pub fn by_name(name: &str) -> Result<RecformerConfig> {
    Ok(match name {
        "base" => RecformerConfig::base(),
        "mini" => RecformerConfig::mini(),
        "minilm" => minilm(),
        "small" => small(),
        "tiny" => RecformerConfig::tiny(),
        other => {
            return Err(Error::UnknownPreset {
                name: other.to_string(),
            })
        }
    })
}

/// A CPU-friendly model for catalogues trained from scratch (demo, quick experiments):
/// 2 layers × 64 hidden, 4 heads, FFN 256, window 16, 128 tokens.
pub fn small() -> RecformerConfig {
    let mut c = RecformerConfig::tiny();
    c.hidden_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.intermediate_size = 256;
    c.attention_window = vec![16; 2];
    c.max_token_num = 128;
    c.max_item_embeddings = 51;
    c.max_attr_length = 16;
    c.hidden_dropout_prob = 0.1;
    c.attention_probs_dropout_prob = 0.1;
    c
}

/// The shape of all-MiniLM-L6-v2 converted by `recformer init --max-tokens 64` (BERT vocabulary,
/// 6 layers × 384, 12 heads, FFN 1536, window 64, 64 tokens): random weights of the model that
/// `scripts/reproduce-scientific.sh` trains, for benchmarks.
pub fn minilm() -> RecformerConfig {
    let mut c = RecformerConfig::mini();
    c.hidden_size = 384;
    c.num_attention_heads = 12;
    c.intermediate_size = 1536;
    c.max_token_num = 64;
    c.max_position_embeddings = 513;
    c
}

/// Grows the position table so that `max_token_num` tokens fit under the RoBERTa position
/// convention (`pad + 1 + index`).
pub fn fit_positions(mut c: RecformerConfig) -> RecformerConfig {
    c.max_position_embeddings = c
        .max_position_embeddings
        .max(c.max_token_num + c.pad_token_id + 2);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_is_valid_and_unknown_names_are_errors() {
        for name in NAMES {
            let mut c = by_name(name).unwrap();
            c.max_token_num = c.max_token_num.max(300);
            fit_positions(c).validate().unwrap();
        }
        let err = by_name("huge").unwrap_err().to_string();
        assert!(err.contains("huge") && err.contains("small"), "{err}");
    }
}
