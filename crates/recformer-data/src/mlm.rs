//! Whole-word masked-language-model masking: the official `PretrainDataCollatorWithPadding.mask_mlm`.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::batch::PaddedBatch;
use crate::tokenizer::RecformerTokenizer;

/// Label of positions that are not predicted (PyTorch's cross-entropy `ignore_index`).
pub const IGNORE_LABEL: i64 = -100;

/// MLM settings of the official pretraining collator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MlmConfig {
    /// Share of the padded row length to select, by whole words. Default: 0.15.
    pub probability: f64,
    /// Most positions selected per row. Default: 512.
    pub max_predictions: usize,
}

impl Default for MlmConfig {
    fn default() -> Self {
        Self {
            probability: 0.15,
            max_predictions: 512,
        }
    }
}

/// Masked inputs and labels, row-major `[batch_size, seq_len]` like the batch they came from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MlmMasked {
    /// Input ids with the selected positions replaced (80% mask token, 10% random id, 10% kept).
    pub input_ids: Vec<u32>,
    /// The original id at selected positions, [`IGNORE_LABEL`] elsewhere.
    pub labels: Vec<i64>,
}

impl MlmMasked {
    /// Number of positions with a label.
    pub fn num_predictions(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE_LABEL).count()
    }
}

/// Masks a padded batch as the official collator does, row by row:
///
/// 1. Candidate words over the whole padded row (padding included, as the official code masks
///    after padding), skipping the first/separator tokens (`<s>`/`</s>`, `[CLS]`/`[SEP]`); a token
///    for which [`RecformerTokenizer::starts_word`] is false joins the previous word.
/// 2. `num_to_predict = min(max_predictions, max(1, round_half_even(seq_len * probability)))`;
///    the words are shuffled and taken greedily while they fit.
/// 3. Selected special tokens and pads are dropped (so about `probability` of the real tokens
///    are predicted); index 0 is never selected.
/// 4. Each selected position: with probability 0.8 the mask token, else with probability 0.5 a
///    uniform random id in `[0, vocab_size)`, else unchanged; its label is the original id.
pub fn mask_mlm<R: Rng>(
    batch: &PaddedBatch,
    tokenizer: &RecformerTokenizer,
    cfg: &MlmConfig,
    rng: &mut R,
) -> MlmMasked {
    let mut out = MlmMasked {
        input_ids: batch.input_ids.clone(),
        labels: vec![IGNORE_LABEL; batch.input_ids.len()],
    };
    let skip_first = tokenizer.cls_token_id();
    let skip_sep = tokenizer.sep_token_id();
    let pad = tokenizer.pad_token_id();
    let mask = tokenizer.mask_token_id();
    let vocab_size = tokenizer.vocab_size() as u32;
    let seq_len = batch.seq_len;
    let num_to_predict = ((seq_len as f64 * cfg.probability).round_ties_even() as usize)
        .max(1)
        .min(cfg.max_predictions);

    let mut words: Vec<Vec<usize>> = Vec::new();
    for row in 0..batch.batch_size {
        let offset = row * seq_len;
        let ids = &batch.input_ids[offset..offset + seq_len];

        words.clear();
        for (i, &id) in ids.iter().enumerate() {
            if id == skip_first || Some(id) == skip_sep {
                continue;
            }
            match words.last_mut() {
                Some(word) if !tokenizer.starts_word(id) => word.push(i),
                _ => words.push(vec![i]),
            }
        }
        words.shuffle(rng);

        let mut selected = 0usize;
        for word in &words {
            if selected >= num_to_predict {
                break;
            }
            if selected + word.len() > num_to_predict {
                continue;
            }
            selected += word.len();
            for &i in word {
                let id = ids[i];
                if i == 0 || id == pad || tokenizer.is_special(id) {
                    continue;
                }
                out.labels[offset + i] = i64::from(id);
                out.input_ids[offset + i] = if rng.random_bool(0.8) {
                    mask
                } else if rng.random_bool(0.5) {
                    rng.random_range(0..vocab_size)
                } else {
                    id
                };
            }
        }
    }
    out
}
