//! Right padding of a batch of sequences: the official `RecformerTokenizer.padding`.

use serde::{Deserialize, Serialize};

use crate::config::RecformerDataConfig;
use crate::sequence::EncodedSequence;

/// Token type written into padding.
pub const PAD_TOKEN_TYPE: u32 = 3;

/// A right-padded batch; every field is row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaddedBatch {
    /// Number of sequences.
    pub batch_size: usize,
    /// Length of the longest sequence (0 for an empty batch).
    pub seq_len: usize,
    /// Token ids; padding = the pad token id.
    pub input_ids: Vec<u32>,
    /// Token types; padding = 3.
    pub token_type_ids: Vec<u32>,
    /// Item positions; padding = `max_item_embeddings - 1` (50).
    pub item_position_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// 1 at index 0 of each row, 0 elsewhere and in padding.
    pub global_attention_mask: Vec<u32>,
}

impl PaddedBatch {
    /// The row range of sequence `i` in the flat vectors.
    ///
    /// # Panics
    /// If `i >= batch_size`.
    pub fn row_range(&self, i: usize) -> std::ops::Range<usize> {
        assert!(i < self.batch_size, "row {i} out of {}", self.batch_size);
        i * self.seq_len..(i + 1) * self.seq_len
    }

    /// The unpadded length of sequence `i` (its number of attended tokens).
    pub fn row_len(&self, i: usize) -> usize {
        self.attention_mask[self.row_range(i)]
            .iter()
            .filter(|&&m| m != 0)
            .count()
    }
}

/// Pads `seqs` on the right to the longest one, with the official collator's values: input id
/// `pad_token_id`, token type 3, item position `max_item_embeddings - 1`, attention and global
/// masks 0.
pub fn pad_batch(
    seqs: &[EncodedSequence],
    pad_token_id: u32,
    cfg: &RecformerDataConfig,
) -> PaddedBatch {
    let batch_size = seqs.len();
    let seq_len = seqs.iter().map(EncodedSequence::len).max().unwrap_or(0);
    let n = batch_size * seq_len;
    let mut batch = PaddedBatch {
        batch_size,
        seq_len,
        input_ids: Vec::with_capacity(n),
        token_type_ids: Vec::with_capacity(n),
        item_position_ids: Vec::with_capacity(n),
        attention_mask: Vec::with_capacity(n),
        global_attention_mask: Vec::with_capacity(n),
    };
    let pad_item_position = cfg.pad_item_position();
    for seq in seqs {
        let pad = seq_len - seq.len();
        extend_padded(&mut batch.input_ids, &seq.input_ids, pad, pad_token_id);
        extend_padded(
            &mut batch.token_type_ids,
            &seq.token_type_ids,
            pad,
            PAD_TOKEN_TYPE,
        );
        extend_padded(
            &mut batch.item_position_ids,
            &seq.item_position_ids,
            pad,
            pad_item_position,
        );
        extend_padded(&mut batch.attention_mask, &seq.attention_mask, pad, 0);
        extend_padded(
            &mut batch.global_attention_mask,
            &seq.global_attention_mask,
            pad,
            0,
        );
    }
    batch
}

fn extend_padded(out: &mut Vec<u32>, values: &[u32], pad: usize, pad_value: u32) {
    out.extend_from_slice(values);
    out.extend(std::iter::repeat_n(pad_value, pad));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemTokens;
    use crate::sequence::build_sequence;

    #[test]
    fn pads_with_collator_values() {
        let cfg = RecformerDataConfig::base();
        let a = ItemTokens {
            input_ids: vec![5, 6],
            token_type_ids: vec![1, 2],
        };
        let long = build_sequence(&[&a], 0, &cfg);
        let short = build_sequence(&[], 0, &cfg);
        let batch = pad_batch(&[short, long], 1, &cfg);
        assert_eq!((batch.batch_size, batch.seq_len), (2, 3));
        assert_eq!(batch.input_ids, [0, 1, 1, 0, 5, 6]);
        assert_eq!(batch.token_type_ids, [0, 3, 3, 0, 1, 2]);
        assert_eq!(batch.item_position_ids, [0, 50, 50, 0, 1, 1]);
        assert_eq!(batch.attention_mask, [1, 0, 0, 1, 1, 1]);
        assert_eq!(batch.global_attention_mask, [1, 0, 0, 1, 0, 0]);
        assert_eq!((batch.row_len(0), batch.row_len(1)), (1, 3));
        assert_eq!(batch.row_range(1), 3..6);
    }

    #[test]
    fn empty_batch() {
        let batch = pad_batch(&[], 1, &RecformerDataConfig::base());
        assert_eq!((batch.batch_size, batch.seq_len), (0, 0));
        assert!(batch.input_ids.is_empty());
    }
}
