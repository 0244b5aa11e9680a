//! Sequence → model input: the official `RecformerTokenizer.encode`.

use serde::{Deserialize, Serialize};

use crate::config::RecformerDataConfig;
use crate::item::ItemTokens;

/// Token type of the first token (`<s>` / `[CLS]`).
pub const FIRST_TOKEN_TYPE: u32 = 0;

/// One encoded history, unpadded. All five vectors have the same length, at least 1.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EncodedSequence {
    /// Token ids; index 0 is the first token.
    pub input_ids: Vec<u32>,
    /// 0 for the first token, 1 for key tokens, 2 for value tokens.
    pub token_type_ids: Vec<u32>,
    /// 0 for the first token; `k` for the tokens of the `k`-th most recent item (1-based).
    pub item_position_ids: Vec<u32>,
    /// All ones.
    pub attention_mask: Vec<u32>,
    /// 1 at index 0, 0 elsewhere.
    pub global_attention_mask: Vec<u32>,
}

impl EncodedSequence {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether the sequence has no tokens (never true for the output of [`build_sequence`]).
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// Builds the model input of a history, exactly as the official `encode(items, encode_item=False)`:
/// the history (oldest first) is reversed to newest first and cut to `max_item_embeddings - 1`
/// items; the first token comes first (token type 0, item position 0); the `k`-th most recent
/// item's tokens get item position `k`; everything is then cut to `max_token_num` tokens (which
/// may cut the oldest kept item mid-way). An empty history gives just the first token.
///
/// # Panics
/// If `cfg.max_token_num == 0` (see [`RecformerDataConfig::validate`]).
pub fn build_sequence(
    history_oldest_first: &[&ItemTokens],
    cls_token_id: u32,
    cfg: &RecformerDataConfig,
) -> EncodedSequence {
    build_from_iter(
        history_oldest_first.iter().rev().copied(),
        cls_token_id,
        cfg,
    )
}

/// [`build_sequence`] for a history given as catalogue rows (`catalogue[row]` is an item's tokens).
///
/// # Panics
/// If a row is out of range, or `cfg.max_token_num == 0`.
pub fn build_sequence_from_rows(
    history_oldest_first: &[usize],
    catalogue: &[ItemTokens],
    cls_token_id: u32,
    cfg: &RecformerDataConfig,
) -> EncodedSequence {
    build_from_iter(
        history_oldest_first
            .iter()
            .rev()
            .map(|&row| &catalogue[row]),
        cls_token_id,
        cfg,
    )
}

fn build_from_iter<'a>(
    newest_first: impl Iterator<Item = &'a ItemTokens>,
    cls_token_id: u32,
    cfg: &RecformerDataConfig,
) -> EncodedSequence {
    assert!(cfg.max_token_num > 0, "max_token_num must be at least 1");
    let budget = cfg.max_token_num;
    let mut seq = EncodedSequence {
        input_ids: vec![cls_token_id],
        token_type_ids: vec![FIRST_TOKEN_TYPE],
        item_position_ids: vec![0],
        attention_mask: Vec::new(),
        global_attention_mask: Vec::new(),
    };
    for (k, item) in newest_first.take(cfg.max_items()).enumerate() {
        let room = budget - seq.input_ids.len();
        if room == 0 {
            break;
        }
        let n = item.input_ids.len().min(room);
        seq.input_ids.extend_from_slice(&item.input_ids[..n]);
        seq.token_type_ids
            .extend_from_slice(&item.token_type_ids[..n]);
        seq.item_position_ids
            .extend(std::iter::repeat_n(k as u32 + 1, n));
    }
    let len = seq.input_ids.len();
    seq.attention_mask = vec![1; len];
    seq.global_attention_mask = vec![0; len];
    seq.global_attention_mask[0] = 1;
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ids: &[u32]) -> ItemTokens {
        ItemTokens {
            input_ids: ids.to_vec(),
            token_type_ids: ids.iter().map(|_| 2).collect(),
        }
    }

    #[test]
    fn official_example() {
        let cfg = RecformerDataConfig::base();
        let (a, b) = (item(&[10, 11]), item(&[20]));
        let seq = build_sequence(&[&a, &b], 0, &cfg);
        assert_eq!(seq.input_ids, [0, 20, 10, 11]);
        assert_eq!(seq.item_position_ids, [0, 1, 2, 2]);
        assert_eq!(seq.token_type_ids, [0, 2, 2, 2]);
        assert_eq!(seq.attention_mask, [1, 1, 1, 1]);
        assert_eq!(seq.global_attention_mask, [1, 0, 0, 0]);
        let rows = build_sequence_from_rows(&[0, 1], &[a, b], 0, &cfg);
        assert_eq!(rows, seq);
    }

    #[test]
    fn empty_history_is_first_token_only() {
        let seq = build_sequence(&[], 7, &RecformerDataConfig::mini());
        assert_eq!(seq.input_ids, [7]);
        assert_eq!(seq.global_attention_mask, [1]);
    }

    #[test]
    fn truncation_cuts_oldest_mid_item() {
        let cfg = RecformerDataConfig {
            max_token_num: 4,
            ..RecformerDataConfig::base()
        };
        let (a, b) = (item(&[10, 11, 12]), item(&[20, 21]));
        let seq = build_sequence(&[&a, &b], 0, &cfg);
        assert_eq!(seq.input_ids, [0, 20, 21, 10]);
        assert_eq!(seq.item_position_ids, [0, 1, 1, 2]);
    }
}
