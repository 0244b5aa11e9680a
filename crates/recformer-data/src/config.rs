//! Input-construction limits (the data side of the official `RecformerConfig`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Limits that shape the model input, with the names of the official `RecformerConfig` fields.
///
/// `Default` is [`RecformerDataConfig::base`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecformerDataConfig {
    /// How many attributes of an item are used, in order (`title`, `brand`, `category`). Default: 3.
    pub max_attr_num: usize,
    /// Tokens per attribute, key tokens included. Default: 32.
    pub max_attr_length: usize,
    /// Size of the item-position embedding table; a sequence holds at most
    /// `max_item_embeddings - 1` items and padding uses item position `max_item_embeddings - 1`.
    /// Default: 51.
    pub max_item_embeddings: usize,
    /// Tokens per sequence, the first token included. Default: 1024 (base), 512 (mini).
    pub max_token_num: usize,
}

impl RecformerDataConfig {
    /// The official Longformer-base setting: 3 attributes, 32 tokens each, 51 item positions,
    /// 1024 tokens.
    pub fn base() -> Self {
        Self {
            max_attr_num: 3,
            max_attr_length: 32,
            max_item_embeddings: 51,
            max_token_num: 1024,
        }
    }

    /// The Recformer-mini setting (Longformer-mini, BERT vocabulary): as [`Self::base`] with
    /// 512 tokens.
    pub fn mini() -> Self {
        Self {
            max_token_num: 512,
            ..Self::base()
        }
    }

    /// Most items a sequence can hold: `max_item_embeddings - 1`.
    pub fn max_items(&self) -> usize {
        self.max_item_embeddings.saturating_sub(1)
    }

    /// Item position written into padding: `max_item_embeddings - 1`.
    pub fn pad_item_position(&self) -> u32 {
        self.max_item_embeddings.saturating_sub(1) as u32
    }

    /// Checks that a sequence can be built: at least one token (the first token) and at least one
    /// item-position slot.
    pub fn validate(&self) -> Result<()> {
        if self.max_token_num == 0 {
            return Err(Error::Config {
                field: "max_token_num",
                value: "0".into(),
                message: "must be at least 1 (the first token)",
            });
        }
        if self.max_item_embeddings == 0 {
            return Err(Error::Config {
                field: "max_item_embeddings",
                value: "0".into(),
                message: "must be at least 1 (position 0 of the first token)",
            });
        }
        Ok(())
    }
}

impl Default for RecformerDataConfig {
    fn default() -> Self {
        Self::base()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        let base = RecformerDataConfig::default();
        assert_eq!(base, RecformerDataConfig::base());
        assert_eq!(
            (
                base.max_attr_num,
                base.max_attr_length,
                base.max_item_embeddings,
                base.max_token_num
            ),
            (3, 32, 51, 1024)
        );
        assert_eq!(RecformerDataConfig::mini().max_token_num, 512);
        assert_eq!(base.max_items(), 50);
        assert_eq!(base.pad_item_position(), 50);
        assert!(base.validate().is_ok());
        let bad = RecformerDataConfig {
            max_token_num: 0,
            ..base
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn serde_roundtrip() {
        let cfg = RecformerDataConfig::mini();
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            serde_json::from_str::<RecformerDataConfig>(&text).unwrap(),
            cfg
        );
    }
}
