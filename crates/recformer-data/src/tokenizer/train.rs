//! Training a WordPiece vocabulary on a catalogue (models trained from scratch).

use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::{set_bert_pipeline, RecformerTokenizer, TokenizerKind, WORDPIECE_SPECIALS};
use crate::error::{Error, Result};

impl RecformerTokenizer {
    /// Trains a WordPiece vocabulary (BERT pipeline, `##` continuation prefix) of at most
    /// `vocab_size` tokens on `texts`, for models trained from scratch. Special tokens get ids
    /// 0..5 in the order `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`.
    pub fn train_wordpiece<I: Iterator<Item = String>>(
        texts: I,
        vocab_size: usize,
        lowercase: bool,
    ) -> Result<Self> {
        let texts: Vec<String> = texts.collect();
        let mut tokenizer = Tokenizer::new(WordPiece::default());
        set_bert_pipeline(&mut tokenizer, lowercase);
        let specials = WORDPIECE_SPECIALS
            .iter()
            .map(|s| AddedToken::from(*s, true))
            .collect();
        let mut trainer: TrainerWrapper = WordPieceTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(0)
            .show_progress(false)
            .special_tokens(specials)
            .build()
            .into();
        tokenizer
            .train(&mut trainer, texts.into_iter())
            .map_err(|e| Error::tokenizer("training a WordPiece vocabulary", e))?;
        Self::from_parts(tokenizer, TokenizerKind::WordPiece)
    }
}
