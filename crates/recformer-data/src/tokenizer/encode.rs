//! Item encoding: the official `encode_item` and its catalogue-wide, parallel form.

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

use super::RecformerTokenizer;
use crate::config::RecformerDataConfig;
use crate::error::Result;
use crate::item::{ItemMeta, ItemTokens};

/// Token type of attribute-key tokens.
pub const KEY_TOKEN_TYPE: u32 = 1;
/// Token type of attribute-value tokens.
pub const VALUE_TOKEN_TYPE: u32 = 2;

impl RecformerTokenizer {
    fn key_tokens(&self, key: &str) -> Result<Cow<'_, [u32]>> {
        match self.key_cache.get(key) {
            Some(ids) => Ok(Cow::Borrowed(ids)),
            None => Ok(Cow::Owned(self.tokenize_plain(key)?)),
        }
    }

    /// The official `encode_item`: for each of the first `max_attr_num` attributes, the key tokens
    /// (type 1) then the value tokens (type 2), the pair cut to `max_attr_length` tokens with the
    /// key tokens counted; no separators; an empty value gives the key tokens only.
    pub fn encode_item(&self, item: &ItemMeta, cfg: &RecformerDataConfig) -> Result<ItemTokens> {
        let mut pairs = Vec::with_capacity(cfg.max_attr_num.min(item.attrs.len()));
        for (key, value) in item.attrs.iter().take(cfg.max_attr_num) {
            pairs.push((
                self.key_tokens(key)?,
                Cow::Owned(self.tokenize_plain(value)?),
            ));
        }
        Ok(flatten_item(&pairs, cfg.max_attr_length))
    }

    /// [`Self::encode_item`] for every item, in parallel (rayon); the result has the same order
    /// (row `i` = `items[i]`), so it serves as the per-item token cache of a catalogue. Each
    /// distinct key or value string is tokenised once (brands and categories repeat a lot).
    pub fn encode_catalogue(
        &self,
        items: &[ItemMeta],
        cfg: &RecformerDataConfig,
    ) -> Result<Vec<ItemTokens>> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut distinct: Vec<&str> = Vec::new();
        for item in items {
            for (key, value) in item.attrs.iter().take(cfg.max_attr_num) {
                for text in [key.as_str(), value.as_str()] {
                    index.entry(text).or_insert_with(|| {
                        distinct.push(text);
                        distinct.len() - 1
                    });
                }
            }
        }
        let tokens: Vec<Vec<u32>> = distinct
            .par_iter()
            .map(|text| self.tokenize_plain(text))
            .collect::<Result<_>>()?;
        let lookup = |text: &str| Cow::Borrowed(tokens[index[text]].as_slice());
        Ok(items
            .par_iter()
            .map(|item| {
                let pairs: Vec<_> = item
                    .attrs
                    .iter()
                    .take(cfg.max_attr_num)
                    .map(|(key, value)| (lookup(key), lookup(value)))
                    .collect();
                flatten_item(&pairs, cfg.max_attr_length)
            })
            .collect())
    }
}

/// The token ids of one attribute: key tokens, value tokens.
type AttrTokens<'a> = (Cow<'a, [u32]>, Cow<'a, [u32]>);

/// Concatenates `(key tokens, value tokens)` pairs, each pair cut to `cap` tokens (key first).
fn flatten_item(pairs: &[AttrTokens<'_>], cap: usize) -> ItemTokens {
    let mut out = ItemTokens {
        input_ids: Vec::with_capacity(pairs.len() * cap),
        token_type_ids: Vec::with_capacity(pairs.len() * cap),
    };
    for (key_ids, value_ids) in pairs {
        let n_key = key_ids.len().min(cap);
        let n_value = value_ids.len().min(cap - n_key);
        out.input_ids.extend_from_slice(&key_ids[..n_key]);
        out.input_ids.extend_from_slice(&value_ids[..n_value]);
        out.token_type_ids
            .extend(std::iter::repeat_n(KEY_TOKEN_TYPE, n_key));
        out.token_type_ids
            .extend(std::iter::repeat_n(VALUE_TOKEN_TYPE, n_value));
    }
    out
}
