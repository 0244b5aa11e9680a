//! Restricting a WordPiece vocabulary to the tokens a catalogue uses (models trained from
//! scratch on one catalogue).
//!
//! WordPiece tokenises each word greedily, longest vocabulary prefix first. If the vocabulary
//! keeps every token that the full vocabulary produced on a set of texts, each of those longest
//! matches is still present and no longer one appeared, so the texts tokenise to the same token
//! strings as before (tested): the restriction only renumbers them. Text outside the set may
//! fall back to `[UNK]` more often. Unlike a trained vocabulary, the result is deterministic.

use std::collections::BTreeSet;

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::models::ModelWrapper;
use tokenizers::Tokenizer;

use super::{add_present_specials, RecformerTokenizer, TokenizerKind, WORDPIECE_SPECIALS};
use crate::error::{Error, Result};
use crate::item::{ItemMeta, ATTRIBUTE_KEYS};

impl RecformerTokenizer {
    /// A WordPiece tokenizer with the same pipeline whose vocabulary is only the special tokens
    /// plus the tokens that `texts` (and the attribute keys) tokenise to, in their original
    /// order. Ids are renumbered densely from 0.
    ///
    /// # Errors
    /// If this tokenizer is not WordPiece, or a text cannot be tokenised.
    pub fn restrict_wordpiece<'t, I: IntoIterator<Item = &'t str>>(
        &self,
        texts: I,
    ) -> Result<Self> {
        let ModelWrapper::WordPiece(model) = self.tokenizer.get_model() else {
            return Err(Error::tokenizer(
                "restricting a vocabulary",
                "only WordPiece vocabularies can be restricted".into(),
            ));
        };
        // `special` already holds the first, pad, mask, separator and unknown tokens.
        let mut used: BTreeSet<u32> = self.special.iter().copied().collect();
        for text in ATTRIBUTE_KEYS.iter().copied().chain(texts) {
            used.extend(self.tokenize_plain(text)?);
        }
        // Through the `vocab.txt` layout (one token per line, id = line index): the builder wants
        // the crate's own hash map type.
        let mut lines = String::new();
        for id in used {
            let token = self.tokenizer.id_to_token(id).ok_or_else(|| {
                Error::tokenizer(
                    "restricting a vocabulary",
                    format!("no token for id {id}").into(),
                )
            })?;
            lines.push_str(&token);
            lines.push('\n');
        }
        let vocab = WordPiece::read_bytes(lines.as_bytes())
            .map_err(|e| Error::tokenizer("reading the restricted WordPiece vocabulary", e))?;
        let restricted = WordPiece::builder()
            .vocab(vocab)
            .unk_token(model.unk_token.clone())
            .continuing_subword_prefix(model.continuing_subword_prefix.clone())
            .max_input_chars_per_word(model.max_input_chars_per_word)
            .build()
            .map_err(|e| Error::tokenizer("building the restricted WordPiece vocabulary", e))?;
        let mut tokenizer = Tokenizer::new(restricted);
        tokenizer.with_normalizer(self.tokenizer.get_normalizer().cloned());
        tokenizer.with_pre_tokenizer(self.tokenizer.get_pre_tokenizer().cloned());
        tokenizer.with_decoder(self.tokenizer.get_decoder().cloned());
        add_present_specials(&mut tokenizer, WORDPIECE_SPECIALS);
        Self::from_parts(tokenizer, TokenizerKind::WordPiece)
    }

    /// [`Self::restrict_wordpiece`] to every attribute key and value of `items`: the catalogue
    /// encodes to the same tokens as with the full vocabulary, under new, dense ids.
    pub fn restrict_wordpiece_to_catalogue(&self, items: &[ItemMeta]) -> Result<Self> {
        self.restrict_wordpiece(
            items
                .iter()
                .flat_map(|item| item.attrs.iter())
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        )
    }
}
