//! Property tests of item flattening, sequence building and padding.
//!
//! Items are tokenised with a tiny WordPiece vocabulary whose output is known by construction
//! (see `common::tiny_wordpiece`): `title`, `brand`, `category` are one token each, any other
//! lower-case word of `k` letters is `k` tokens (first letter, then `##letter`s).

mod common;

use proptest::prelude::*;
use recformer_data::{
    build_sequence, pad_batch, EncodedSequence, ItemMeta, ItemTokens, RecformerDataConfig,
    RecformerTokenizer, PAD_TOKEN_TYPE,
};

fn tokenizer() -> &'static RecformerTokenizer {
    use std::sync::OnceLock;
    static TOK: OnceLock<(tempfile::TempDir, RecformerTokenizer)> = OnceLock::new();
    &TOK.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tok = common::tiny_wordpiece(dir.path(), 0);
        (dir, tok)
    })
    .1
}

/// WordPiece token count of lower-case words with the tiny vocabulary: greedy longest match
/// takes a leading `title`/`brand`/`category` as one token, every other letter is one token.
fn wp_len(text: &str) -> usize {
    text.split_whitespace()
        .map(|word| {
            match ["title", "brand", "category"]
                .iter()
                .find(|k| word.starts_with(*k))
            {
                Some(k) => 1 + word.len() - k.len(),
                None => word.len(),
            }
        })
        .sum()
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,12}", 0..8).prop_map(|words| words.join(" "))
}

fn attr_strategy() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("title".to_owned()),
            Just("brand".to_owned()),
            Just("category".to_owned()),
            "[a-z]{1,40}",
        ],
        value_strategy(),
    )
}

fn config_strategy() -> impl Strategy<Value = RecformerDataConfig> {
    (0usize..6, 0usize..40, 1usize..60, 1usize..400).prop_map(|(a, l, e, t)| RecformerDataConfig {
        max_attr_num: a,
        max_attr_length: l,
        max_item_embeddings: e,
        max_token_num: t,
    })
}

fn item_tokens_strategy() -> impl Strategy<Value = ItemTokens> {
    prop::collection::vec((5u32..60_000, 1u32..3), 0..100).prop_map(|v| ItemTokens {
        input_ids: v.iter().map(|p| p.0).collect(),
        token_type_ids: v.iter().map(|p| p.1).collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Attribute order and caps: the first `max_attr_num` attributes in order; each contributes
    /// `min(key + value tokens, max_attr_length)` tokens, key tokens (type 1) first, then value
    /// tokens (type 2); an empty value leaves the key tokens alone.
    #[test]
    fn item_attribute_order_and_caps(
        attrs in prop::collection::vec(attr_strategy(), 0..6),
        cfg in config_strategy(),
    ) {
        let tok = tokenizer();
        let item = ItemMeta { attrs: attrs.clone() };
        let out = tok.encode_item(&item, &cfg).unwrap();
        prop_assert_eq!(out.input_ids.len(), out.token_type_ids.len());

        let mut offset = 0;
        for (key, value) in attrs.iter().take(cfg.max_attr_num) {
            let k = wp_len(key);
            let v = wp_len(value);
            let n = (k + v).min(cfg.max_attr_length);
            let n_key = k.min(n);
            let types = &out.token_type_ids[offset..offset + n];
            prop_assert!(types[..n_key].iter().all(|&t| t == 1));
            prop_assert!(types[n_key..].iter().all(|&t| t == 2));
            // The attribute's own tokens, independently tokenised, are the prefix kept.
            let mut expected = tok.tokenize_plain(key).unwrap();
            expected.extend(tok.tokenize_plain(value).unwrap());
            expected.truncate(cfg.max_attr_length);
            prop_assert_eq!(&out.input_ids[offset..offset + n], expected.as_slice());
            if ["title", "brand", "category"].contains(&key.as_str()) && n > 0 {
                prop_assert_eq!(tok.id_to_token(out.input_ids[offset]).unwrap(), key.clone());
            }
            offset += n;
        }
        prop_assert_eq!(offset, out.input_ids.len());
    }

    /// The parallel, de-duplicating catalogue encoder gives exactly `encode_item` per item, in
    /// order.
    #[test]
    fn catalogue_equals_items(
        items in prop::collection::vec(prop::collection::vec(attr_strategy(), 0..5), 0..20),
        cfg in config_strategy(),
    ) {
        let tok = tokenizer();
        let items: Vec<ItemMeta> = items.into_iter().map(|attrs| ItemMeta { attrs }).collect();
        let all = tok.encode_catalogue(&items, &cfg).unwrap();
        prop_assert_eq!(all.len(), items.len());
        for (item, got) in items.iter().zip(&all) {
            prop_assert_eq!(got, &tok.encode_item(item, &cfg).unwrap());
        }
    }

    /// Sequence building: first token, reversal (newest first), the item cap, the token budget,
    /// item positions 1..=max_items non-decreasing, masks.
    #[test]
    fn sequence_properties(
        history in prop::collection::vec(item_tokens_strategy(), 0..70),
        cfg in config_strategy(),
    ) {
        let refs: Vec<&ItemTokens> = history.iter().collect();
        let seq = build_sequence(&refs, 2, &cfg);
        let n = seq.len();
        prop_assert!(n >= 1);
        prop_assert!(n <= cfg.max_token_num);
        prop_assert_eq!(seq.input_ids[0], 2);
        prop_assert_eq!(seq.token_type_ids[0], 0);
        prop_assert_eq!(seq.item_position_ids[0], 0);
        prop_assert_eq!(&seq.attention_mask, &vec![1; n]);
        prop_assert_eq!(seq.global_attention_mask[0], 1);
        prop_assert!(seq.global_attention_mask[1..].iter().all(|&g| g == 0));
        for v in [&seq.token_type_ids, &seq.item_position_ids, &seq.attention_mask] {
            prop_assert_eq!(v.len(), n);
        }

        let max_items = cfg.max_item_embeddings - 1;
        let kept = history.len().min(max_items);
        let full_len = 1 + history.iter().rev().take(kept).map(ItemTokens::len).sum::<usize>();
        prop_assert_eq!(n, full_len.min(cfg.max_token_num));

        // Monotone item positions within 1..=max_items after the first token.
        prop_assert!(seq.item_position_ids.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(seq.item_position_ids[1..].iter().all(|&p| p >= 1 && p as usize <= max_items));

        // Position k holds a prefix (the whole, except possibly for the last one) of the k-th
        // most recent item's tokens and types.
        let mut i = 1;
        for k in 1..=kept {
            let item = &history[history.len() - k];
            let start = i;
            while i < n && seq.item_position_ids[i] as usize == k {
                i += 1;
            }
            let got = i - start;
            prop_assert!(got == item.len() || i == n);
            prop_assert_eq!(&seq.input_ids[start..i], &item.input_ids[..got]);
            prop_assert_eq!(&seq.token_type_ids[start..i], &item.token_type_ids[..got]);
        }
        prop_assert_eq!(i, n);
    }

    /// Padding: each row is its sequence followed by (pad id, type 3, item position
    /// max_item_embeddings - 1, masks 0) up to the longest row.
    #[test]
    fn padding_values(
        histories in prop::collection::vec(prop::collection::vec(item_tokens_strategy(), 0..6), 0..8),
        cfg in config_strategy(),
        pad_id in 0u32..10,
    ) {
        let seqs: Vec<EncodedSequence> = histories
            .iter()
            .map(|h| build_sequence(&h.iter().collect::<Vec<_>>(), 0, &cfg))
            .collect();
        let batch = pad_batch(&seqs, pad_id, &cfg);
        let width = seqs.iter().map(EncodedSequence::len).max().unwrap_or(0);
        prop_assert_eq!(batch.batch_size, seqs.len());
        prop_assert_eq!(batch.seq_len, width);
        for field in [&batch.input_ids, &batch.token_type_ids, &batch.item_position_ids,
                      &batch.attention_mask, &batch.global_attention_mask] {
            prop_assert_eq!(field.len(), seqs.len() * width);
        }
        for (r, seq) in seqs.iter().enumerate() {
            let row = batch.row_range(r);
            let (real, pad) = (row.start..row.start + seq.len(), row.start + seq.len()..row.end);
            prop_assert_eq!(&batch.input_ids[real.clone()], seq.input_ids.as_slice());
            prop_assert_eq!(&batch.token_type_ids[real.clone()], seq.token_type_ids.as_slice());
            prop_assert_eq!(&batch.item_position_ids[real.clone()], seq.item_position_ids.as_slice());
            prop_assert_eq!(&batch.attention_mask[real.clone()], seq.attention_mask.as_slice());
            prop_assert_eq!(&batch.global_attention_mask[real], seq.global_attention_mask.as_slice());
            prop_assert!(batch.input_ids[pad.clone()].iter().all(|&x| x == pad_id));
            prop_assert!(batch.token_type_ids[pad.clone()].iter().all(|&x| x == PAD_TOKEN_TYPE));
            prop_assert!(batch.item_position_ids[pad.clone()]
                .iter()
                .all(|&x| x as usize == cfg.max_item_embeddings - 1));
            prop_assert!(batch.attention_mask[pad.clone()].iter().all(|&x| x == 0));
            prop_assert!(batch.global_attention_mask[pad].iter().all(|&x| x == 0));
            prop_assert_eq!(batch.row_len(r), seq.len());
        }
    }
}

/// The base config keeps 50 items: 60 one-token items give 51 tokens, positions 1..=50.
#[test]
fn fifty_item_cap_with_base_config() {
    let cfg = RecformerDataConfig::base();
    let items: Vec<ItemTokens> = (0..60)
        .map(|i| ItemTokens {
            input_ids: vec![100 + i],
            token_type_ids: vec![1],
        })
        .collect();
    let refs: Vec<&ItemTokens> = items.iter().collect();
    let seq = build_sequence(&refs, 0, &cfg);
    assert_eq!(seq.len(), 51);
    assert_eq!(seq.input_ids[1], 159, "newest item first");
    assert_eq!(seq.input_ids[50], 110, "the 50th most recent item is last");
    assert_eq!(
        seq.item_position_ids[1..],
        (1..=50).collect::<Vec<u32>>()[..]
    );
}

/// The 1024-token budget cuts the oldest kept item mid-way (96-token items: 10 whole + 63).
#[test]
fn token_budget_cuts_oldest_item() {
    let cfg = RecformerDataConfig::base();
    let items: Vec<ItemTokens> = (0..20)
        .map(|i| ItemTokens {
            input_ids: vec![1000 + i; 96],
            token_type_ids: vec![2; 96],
        })
        .collect();
    let refs: Vec<&ItemTokens> = items.iter().collect();
    let seq = build_sequence(&refs, 0, &cfg);
    assert_eq!(seq.len(), 1024);
    assert_eq!(*seq.item_position_ids.last().unwrap(), 11);
    assert_eq!(
        seq.item_position_ids.iter().filter(|&&p| p == 11).count(),
        1023 - 960
    );
    assert_eq!(*seq.input_ids.last().unwrap(), 1000 + 20 - 11);
}
