//! [`ModelSpec`]: a model config and its tokenizer, checked against each other once.

use recformer_data::{RecformerDataConfig, RecformerTokenizer};
use recformer_model::RecformerConfig;

use crate::error::{Error, Result};
use crate::inputs::InputBuilder;

/// A model config with the tokenizer that feeds it, checked to fit together: every special id
/// (pad, `<s>`/`[CLS]`, mask) inside the embedding table, the tokenizer's pad id equal to the
/// config's `pad_token_id` (it is also the padding *position* id, so a mismatch would give wrong
/// position ids silently), and the config itself valid. The data-side limits
/// ([`ModelSpec::data_config`]) are derived from the config, so `max_token_num` and the other
/// limits have one source.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    config: RecformerConfig,
    tokenizer: RecformerTokenizer,
}

impl ModelSpec {
    /// Checks `config` and `tokenizer` against each other.
    ///
    /// # Errors
    /// [`Error::Spec`] naming what does not fit; the config's own validation errors.
    pub fn new(config: RecformerConfig, tokenizer: RecformerTokenizer) -> Result<Self> {
        config.validate()?;
        let vocab = config.vocab_size;
        if tokenizer.vocab_size() > vocab {
            return Err(Error::Spec(format!(
                "the tokenizer has {} tokens but config.json's vocab_size (the embedding rows) is {vocab}",
                tokenizer.vocab_size()
            )));
        }
        if tokenizer.pad_token_id() as usize != config.pad_token_id {
            return Err(Error::Spec(format!(
                "the tokenizer's pad token has id {} but config.json's pad_token_id is {}",
                tokenizer.pad_token_id(),
                config.pad_token_id
            )));
        }
        for (name, id) in [
            ("first (<s>/[CLS])", tokenizer.cls_token_id()),
            ("mask", tokenizer.mask_token_id()),
        ] {
            if id as usize >= vocab {
                return Err(Error::Spec(format!(
                    "the tokenizer's {name} token has id {id}, outside the {vocab}-row embedding table"
                )));
            }
        }
        Ok(Self { config, tokenizer })
    }

    /// Adapts a random-init config (a preset) to `tokenizer` (vocabulary size, pad id, a position
    /// table that covers `max_token_num` tokens), then checks it as [`ModelSpec::new`] does.
    pub fn fit(mut config: RecformerConfig, tokenizer: RecformerTokenizer) -> Result<Self> {
        config.vocab_size = tokenizer.vocab_size();
        config.pad_token_id = tokenizer.pad_token_id() as usize;
        Self::new(recformer_model::presets::fit_positions(config), tokenizer)
    }

    /// The model config.
    pub fn config(&self) -> &RecformerConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &RecformerTokenizer {
        &self.tokenizer
    }

    /// The input limits (attributes, tokens, items) of the model config.
    pub fn data_config(&self) -> RecformerDataConfig {
        data_config(&self.config)
    }

    /// The collator of this model: special ids from the tokenizer, limits from the config.
    pub fn input_builder(&self) -> InputBuilder {
        InputBuilder::new(&self.tokenizer, self.data_config())
    }

    /// The config and tokenizer, by value.
    pub fn into_parts(self) -> (RecformerConfig, RecformerTokenizer) {
        (self.config, self.tokenizer)
    }
}

/// The data-side limits of a model config (the one conversion from model to data limits).
pub fn data_config(c: &RecformerConfig) -> RecformerDataConfig {
    RecformerDataConfig {
        max_attr_num: c.max_attr_num,
        max_attr_length: c.max_attr_length,
        max_item_embeddings: c.max_item_embeddings,
        max_token_num: c.max_token_num,
    }
}
