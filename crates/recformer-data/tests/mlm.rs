//! MLM masking statistics with a seeded RNG, on a tiny WordPiece vocabulary where `wN` words are
//! single tokens and lower-case letter words are one token per letter (`a ##b ##c`).

mod common;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::{
    build_sequence, mask_mlm, pad_batch, EncodedSequence, ItemTokens, MlmConfig, PaddedBatch,
    RecformerDataConfig, RecformerTokenizer, IGNORE_LABEL,
};

const N_WORDS: usize = 5000;

fn setup() -> (tempfile::TempDir, RecformerTokenizer) {
    let dir = tempfile::tempdir().unwrap();
    let tok = common::tiny_wordpiece(dir.path(), N_WORDS);
    (dir, tok)
}

/// A sequence of `n_items` items of `words` single-token words each (item text "w.. w..").
fn sequence(
    tok: &RecformerTokenizer,
    n_items: usize,
    words: usize,
    salt: usize,
) -> EncodedSequence {
    let items: Vec<ItemTokens> = (0..n_items)
        .map(|i| {
            let text: Vec<String> = (0..words)
                .map(|w| format!("w{}", (salt * 131 + i * 17 + w * 7) % N_WORDS))
                .collect();
            let ids = tok.tokenize_plain(&text.join(" ")).unwrap();
            ItemTokens {
                token_type_ids: vec![2; ids.len()],
                input_ids: ids,
            }
        })
        .collect();
    let refs: Vec<&ItemTokens> = items.iter().collect();
    build_sequence(&refs, tok.cls_token_id(), &RecformerDataConfig::base())
}

fn labelled_per_row(batch: &PaddedBatch, labels: &[i64]) -> Vec<usize> {
    (0..batch.batch_size)
        .map(|r| {
            labels[batch.row_range(r)]
                .iter()
                .filter(|&&l| l != IGNORE_LABEL)
                .count()
        })
        .collect()
}

/// Without padding every non-first token is a candidate word, so each row gets exactly
/// `min(512, max(1, round_half_even(0.15 * len)))` labels (Python `round`: 4.5 → 4, 1.5 → 2).
#[test]
fn exact_count_per_row_without_padding() {
    let (_d, tok) = setup();
    let cfg = RecformerDataConfig::base();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (len, expected) in [(2usize, 1usize), (10, 2), (30, 4), (50, 8), (31, 5)] {
        let seqs: Vec<_> = (0..8).map(|s| sequence(&tok, 1, len - 1, s)).collect();
        assert!(seqs.iter().all(|s| s.len() == len));
        let batch = pad_batch(&seqs, tok.pad_token_id(), &cfg);
        let out = mask_mlm(&batch, &tok, &MlmConfig::default(), &mut rng);
        assert_eq!(
            labelled_per_row(&batch, &out.labels),
            vec![expected; 8],
            "len {len}"
        );
    }
}

/// Over many padded rows: never the first token or pads; labels are the original ids; about
/// 15% of real tokens; 80% mask, 10% random, 10% unchanged; random ids within the vocabulary.
#[test]
fn rates_and_untouched_positions() {
    let (_d, tok) = setup();
    let cfg = RecformerDataConfig::base();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut real, mut labelled, mut masked, mut random, mut kept) = (0, 0, 0, 0, 0);
    for b in 0..150 {
        let seqs: Vec<_> = (0..16)
            .map(|s| sequence(&tok, 1 + (b + s) % 9, 3 + s % 5, b * 16 + s))
            .collect();
        let batch = pad_batch(&seqs, tok.pad_token_id(), &cfg);
        let out = mask_mlm(&batch, &tok, &MlmConfig::default(), &mut rng);
        for r in 0..batch.batch_size {
            let row = batch.row_range(r);
            let len = batch.row_len(r);
            let (ids, new, labels) = (
                &batch.input_ids[row.clone()],
                &out.input_ids[row.clone()],
                &out.labels[row.clone()],
            );
            assert_eq!(labels[0], IGNORE_LABEL, "first token never labelled");
            assert_eq!(new[0], ids[0], "first token never changed");
            assert!(
                labels[len..].iter().all(|&l| l == IGNORE_LABEL),
                "pads never labelled"
            );
            assert_eq!(new[len..], ids[len..], "pads never changed");
            real += len - 1;
            for i in 1..len {
                if labels[i] == IGNORE_LABEL {
                    assert_eq!(new[i], ids[i], "unlabelled tokens unchanged");
                    continue;
                }
                assert_eq!(labels[i], i64::from(ids[i]));
                assert!((new[i] as usize) < tok.vocab_size());
                labelled += 1;
                if new[i] == tok.mask_token_id() {
                    masked += 1;
                } else if new[i] != ids[i] {
                    random += 1;
                } else {
                    kept += 1;
                }
            }
        }
    }
    let share = |n: usize| n as f64 / labelled as f64;
    let rate = labelled as f64 / real as f64;
    assert!(labelled > 8000, "{labelled} predictions");
    assert!(
        (0.13..0.17).contains(&rate),
        "labelled share of real tokens {rate}"
    );
    assert!(
        (share(masked) - 0.8).abs() < 0.025,
        "mask {}",
        share(masked)
    );
    assert!(
        (share(random) - 0.1).abs() < 0.02,
        "random {}",
        share(random)
    );
    assert!((share(kept) - 0.1).abs() < 0.02, "kept {}", share(kept));
}

#[test]
fn seeded_runs_are_reproducible() {
    let (_d, tok) = setup();
    let cfg = RecformerDataConfig::base();
    let seqs: Vec<_> = (0..8).map(|s| sequence(&tok, 5, 6, s)).collect();
    let batch = pad_batch(&seqs, tok.pad_token_id(), &cfg);
    let run = |seed| {
        mask_mlm(
            &batch,
            &tok,
            &MlmConfig::default(),
            &mut ChaCha8Rng::seed_from_u64(seed),
        )
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// Multi-token words (`a ##b ##c`) are labelled whole, and `max_predictions` caps a row.
#[test]
fn whole_words_and_prediction_cap() {
    let (_d, tok) = setup();
    let cfg = RecformerDataConfig::base();
    let ids = tok.tokenize_plain("abc de fgh ij klm nop q rs").unwrap();
    assert_eq!(ids.len(), 19);
    let item = ItemTokens {
        token_type_ids: vec![2; ids.len()],
        input_ids: ids,
    };
    let seq = build_sequence(&[&item], tok.cls_token_id(), &cfg);
    let batch = pad_batch(&[seq], tok.pad_token_id(), &cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..200 {
        let out = mask_mlm(&batch, &tok, &MlmConfig::default(), &mut rng);
        for i in 1..batch.seq_len - 1 {
            if !tok.starts_word(batch.input_ids[i + 1]) {
                assert_eq!(
                    out.labels[i] == IGNORE_LABEL,
                    out.labels[i + 1] == IGNORE_LABEL
                );
            }
        }
        // round(0.15 * 20) = 3 tokens: whole words of at most 3 tokens.
        assert!((1..=3).contains(&out.num_predictions()));
        let capped = MlmConfig {
            probability: 1.0,
            max_predictions: 4,
        };
        let out = mask_mlm(&batch, &tok, &capped, &mut rng);
        assert!(out.num_predictions() <= 4 && out.num_predictions() >= 2);
    }
}
