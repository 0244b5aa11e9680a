//! Tests on the real shared data: RoBERTa and BERT vocabularies, Scientific items, the official
//! finetuning layout. The data directory is `$RECFORMER_DATA_DIR` or `../shared/data`.

mod common;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::{
    build_sequence_from_rows, mask_mlm, pad_batch, FinetuneDataset, MlmConfig, RecformerDataConfig,
    RecformerTokenizer, Split, TokenizerKind, IGNORE_LABEL,
};

/// Expected ids were derived without this crate or any tokenizer library:
/// `scripts/derive_roberta_ids.py <data> 0 254 11 3166` re-types the GPT-2 byte-level BPE of
/// openai/gpt-2 `encoder.py` (bytes_to_unicode + merge ranks from `merges.txt`, the GPT-2 regex
/// with \p{L}/\p{N} spelled out) and maps tokens to ids with Python's `json` module on
/// `vocab.json`. Spot checks by hand in `vocab.json`: "title" = 14691, "brand" = 11638,
/// "category" = 42747, "ĠIndustrial" = 36926, "Ġ&" = 359, "ĠScientific" = 13700 — note that the
/// keys and the first word of each value ("SU", "Indust") carry no "Ġ" (no prefix space).
const ROBERTA_ITEMS: &[(&str, &[u32], &[u32])] = &[
    (
        // SUPCO SPP6 Relay/Capacitor ... | Sealed Unit Parts Co., Inc. | Industrial & Scientific ...
        "0",
        &[
            14691, 10466, 4794, 673, 6178, 510, 401, 8136, 857, 73, 15791, 1043, 7852, 6206, 2776,
            12797, 19, 1764, 207, 30899, 11677, 6623, 3407, 4, 11638, 104, 18696, 196, 7545, 21214,
            944, 482, 603, 4, 42747, 36926, 13700, 359, 17141, 6741, 29352, 44893, 39320, 5133,
            1043, 9314,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2,
            2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ],
    ),
    (
        // Empty brand: the key token alone.
        "254",
        &[
            14691, 4688, 7215, 16055, 7456, 16456, 226, 16148, 290, 18463, 534, 111, 204, 73, 288,
            18463, 534, 4, 11638, 42747, 36926, 13700, 359, 17141, 6741, 29352, 305, 9798, 359,
            8791, 154, 33890, 1536, 11533, 33890, 1536,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2,
            2, 2, 2, 2, 2, 2, 2,
        ],
    ),
    (
        // Non-ASCII title "TÜRLEN ...": byte-level pieces "Ã", "ľ".
        "11",
        &[
            14691, 565, 3849, 48, 17868, 2796, 211, 11694, 12569, 2371, 39261, 321, 12, 134, 5680,
            495, 44921, 321, 4, 19089, 885, 73, 574, 13644, 23098, 4, 11638, 6997, 574, 2796,
            42747, 36926, 13700, 359, 17141, 4500, 22328, 359, 32429, 211, 30846, 22328, 1757,
            4619, 39014, 28985, 4619, 39014,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2,
            2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ],
    ),
    (
        // 120-token title cut to 32 tokens including the key.
        "3166",
        &[
            14691, 32686, 368, 45650, 5344, 30, 344, 574, 5264, 12, 83, 36338, 4846, 7, 21898, 6,
            17091, 359, 9722, 19685, 10, 7406, 636, 11251, 23304, 3037, 1043, 1120, 4, 41549, 11,
            110, 11638, 32686, 2723, 1073, 42747, 36926, 13700, 359, 17141, 24869, 5033, 1309, 359,
            5264, 9467, 5264, 26855, 359, 4313, 1536, 26855,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
            2, 2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ],
    ),
];

/// Derived with `scripts/derive_bert_ids.py <data> 1 11`: a re-typed BERT reference tokenizer
/// (lower-case, accent stripping, punctuation split, greedy longest-match WordPiece), ids = line
/// index in `vocab.txt` (e.g. "title" is line 2517 → 2516, "stanley" → 6156).
const BERT_ITEMS: &[(&str, &[u32], &[u32])] = &[
    (
        "1",
        &[
            2516, 6156, 19817, 2050, 19841, 2620, 2102, 4629, 22231, 12184, 2099, 1015, 1013, 1016,
            1011, 4960, 4190, 3091, 24533, 1010, 3886, 1006, 6694, 4175, 1007, 1012, 4435, 6156,
            4696, 3919, 1004, 4045, 3435, 24454, 2015, 8902, 13776, 3435, 24454, 2015, 24533,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1,
            2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ],
    ),
    (
        // "TÜRLEN" lower-cased with the accent stripped.
        "11",
        &[
            2516, 10722, 20927, 2078, 13764, 17245, 1014, 1011, 1015, 12943, 2094, 28699, 1014,
            1012, 25604, 1059, 1013, 11320, 2290, 2067, 1012, 4435, 19817, 7770, 4696, 3919, 1004,
            4045, 3231, 5468, 1004, 22459, 8789, 10903, 20390, 13764, 20390,
        ],
        &[
            1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2, 1, 2, 2, 2, 2,
            2, 2, 2, 2, 2, 2, 2, 2,
        ],
    ),
];

fn load_scientific(data: &std::path::Path) -> FinetuneDataset {
    FinetuneDataset::load(&data.join("scientific-recformer")).expect("scientific-recformer")
}

#[test]
fn roberta_special_tokens_and_real_items() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let tok = common::roberta(&data);
    assert_eq!(tok.kind(), TokenizerKind::ByteLevelBpe);
    assert_eq!(tok.vocab_size(), 50265);
    assert_eq!(
        (tok.cls_token_id(), tok.pad_token_id(), tok.mask_token_id()),
        (0, 1, 50264)
    );
    assert_eq!(tok.special_token_ids(), vec![0, 1, 2, 3, 50264]);

    let ds = load_scientific(&data);
    let cfg = RecformerDataConfig::base();
    for &(key, ids, types) in ROBERTA_ITEMS {
        let iid = ds.item_keys.iter().position(|k| k == key).unwrap();
        let out = tok.encode_item(&ds.items[iid], &cfg).unwrap();
        assert_eq!(out.input_ids, ids, "item {key} ids");
        assert_eq!(out.token_type_ids, types, "item {key} types");
    }
}

#[test]
fn bert_special_tokens_and_real_items() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let tok = common::bert(&data);
    assert_eq!(tok.kind(), TokenizerKind::WordPiece);
    assert_eq!(tok.vocab_size(), 30522);
    assert_eq!(
        (tok.cls_token_id(), tok.pad_token_id(), tok.mask_token_id()),
        (101, 0, 103)
    );
    let ds = load_scientific(&data);
    let cfg = RecformerDataConfig::mini();
    for &(key, ids, types) in BERT_ITEMS {
        let iid = ds.item_keys.iter().position(|k| k == key).unwrap();
        let out = tok.encode_item(&ds.items[iid], &cfg).unwrap();
        assert_eq!(out.input_ids, ids, "item {key} ids");
        assert_eq!(out.token_type_ids, types, "item {key} types");
    }
}

#[test]
fn bert_vocabulary_restricted_to_the_catalogue() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let full = common::bert(&data);
    let ds = load_scientific(&data);
    let small = full.restrict_wordpiece_to_catalogue(&ds.items).unwrap();
    let n = small.vocab_size();
    assert!(
        (1000..20000).contains(&n),
        "restricted vocabulary of {n} tokens"
    );
    for (role, a, b) in [
        ("first", full.cls_token_id(), small.cls_token_id()),
        ("pad", full.pad_token_id(), small.pad_token_id()),
        ("mask", full.mask_token_id(), small.mask_token_id()),
    ] {
        assert_eq!(full.id_to_token(a), small.id_to_token(b), "{role} token");
    }
    // Same token strings (only the ids change) for every item, under the mini limits.
    let cfg = RecformerDataConfig::mini();
    let text = |tok: &RecformerTokenizer, ids: &[u32]| -> Vec<String> {
        ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect()
    };
    let a = full.encode_catalogue(&ds.items, &cfg).unwrap();
    let b = small.encode_catalogue(&ds.items, &cfg).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(text(&full, &x.input_ids), text(&small, &y.input_ids));
        assert_eq!(x.token_type_ids, y.token_type_ids);
        assert!(y.input_ids.iter().all(|&i| (i as usize) < n));
    }
    // Saved and reloaded, it tokenises the same way.
    let dir = tempfile::tempdir().unwrap();
    small.save(dir.path()).unwrap();
    let again = RecformerTokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(again.vocab_size(), n);
    assert_eq!(
        again.encode_catalogue(&ds.items[..50], &cfg).unwrap(),
        b[..50]
    );
    // Restriction needs a WordPiece vocabulary.
    assert!(common::roberta(&data).restrict_wordpiece(["x"]).is_err());
}

#[test]
fn tokenizer_json_roundtrip_matches_vocab_files() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let ds = load_scientific(&data);
    let cfg = RecformerDataConfig::base();
    let items = &ds.items[..200];
    for tok in [common::roberta(&data), common::bert(&data)] {
        let dir = tempfile::tempdir().unwrap();
        tok.save(dir.path()).unwrap();
        let back = recformer_data::RecformerTokenizer::from_dir(dir.path()).unwrap();
        assert_eq!(back.kind(), tok.kind());
        assert_eq!(back.vocab_size(), tok.vocab_size());
        assert_eq!(back.special_token_ids(), tok.special_token_ids());
        assert_eq!(
            back.encode_catalogue(items, &cfg).unwrap(),
            tok.encode_catalogue(items, &cfg).unwrap()
        );
    }
}

#[test]
fn finetune_dataset_scientific() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let ds = load_scientific(&data);
    assert_eq!(ds.num_users(), 8317);
    assert_eq!(ds.num_items(), 4344);
    assert_eq!(ds.num_interactions(), 58_492);
    assert_eq!(
        (ds.train.len(), ds.val.len(), ds.test.len()),
        (8317, 8317, 8317)
    );
    assert_eq!(
        ds.items[0].title(),
        "SUPCO SPP6 Relay/Capacitor Hard Start Kit with 500% Increase Starting Torque."
    );
    assert_eq!(
        ds.items[0]
            .attrs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["title", "brand", "category"]
    );
    assert_eq!(ds.train[&0], vec![0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(ds.val[&0], 7);

    let val = ds.eval_examples(Split::Val);
    let test = ds.eval_examples(Split::Test);
    assert_eq!((val.len(), test.len()), (8317, 8317));
    for (v, t) in val.iter().zip(&test) {
        assert_eq!(v.user, t.user);
        assert_eq!(v.history, ds.train[&v.user]);
        assert_eq!(v.label, ds.val[&v.user]);
        assert_eq!(t.history[..t.history.len() - 1], v.history[..]);
        assert_eq!(*t.history.last().unwrap(), v.label);
        assert_eq!(t.label, ds.test[&t.user]);
    }

    let office =
        FinetuneDataset::load(&data.join("office14-recformer")).expect("office14-recformer");
    assert_eq!((office.num_users(), office.num_items()), (4905, 2420));
    assert_eq!(office.num_interactions(), 53_258);
}

#[test]
fn catalogue_is_parallel_and_ordered() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let tok = common::roberta(&data);
    let ds = load_scientific(&data);
    let cfg = RecformerDataConfig::base();
    let all = tok.encode_catalogue(&ds.items, &cfg).unwrap();
    assert_eq!(all.len(), 4344);
    for (i, item) in ds.items.iter().enumerate().step_by(3) {
        assert_eq!(all[i], tok.encode_item(item, &cfg).unwrap());
    }
    assert!(all.iter().all(|t| t.len() <= 96 && !t.is_empty()));
    // Longest real test history: 1024-token budget reached, newest item first.
    let ex = ds
        .eval_examples(Split::Test)
        .into_iter()
        .max_by_key(|e| e.history.len())
        .unwrap();
    let seq = build_sequence_from_rows(&ex.history, &all, tok.cls_token_id(), &cfg);
    let newest = &all[*ex.history.last().unwrap()];
    assert_eq!(seq.input_ids[1..1 + newest.len()], newest.input_ids[..]);
    assert!(seq.len() <= 1024);
}

/// Whole-word masking on real RoBERTa tokens: a word is labelled entirely or not at all, the
/// first token and pads never, and the rates are 15% / 80-10-10.
#[test]
fn mlm_whole_words_on_real_tokens() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let tok = common::roberta(&data);
    let ds = load_scientific(&data);
    let cfg = RecformerDataConfig::base();
    let all = tok.encode_catalogue(&ds.items, &cfg).unwrap();
    let examples = ds.eval_examples(Split::Val);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut real, mut labelled, mut masked) = (0usize, 0usize, 0usize);
    for chunk in examples.chunks(16).take(40) {
        let seqs: Vec<_> = chunk
            .iter()
            .map(|e| build_sequence_from_rows(&e.history, &all, tok.cls_token_id(), &cfg))
            .collect();
        let batch = pad_batch(&seqs, tok.pad_token_id(), &cfg);
        let out = mask_mlm(&batch, &tok, &MlmConfig::default(), &mut rng);
        for r in 0..batch.batch_size {
            let row = batch.row_range(r);
            let ids = &batch.input_ids[row.clone()];
            let labels = &out.labels[row.clone()];
            assert_eq!(labels[0], IGNORE_LABEL);
            let len = batch.row_len(r);
            assert!(
                labels[len..].iter().all(|&l| l == IGNORE_LABEL),
                "pads never labelled"
            );
            real += len - 1;
            for i in 1..len {
                if labels[i] != IGNORE_LABEL {
                    labelled += 1;
                    assert_eq!(labels[i], i64::from(ids[i]));
                    masked += usize::from(out.input_ids[row.start + i] == tok.mask_token_id());
                }
                // Continuation tokens share the label state of the token before them.
                if i + 1 < len && !tok.starts_word(ids[i + 1]) {
                    assert_eq!(labels[i] == IGNORE_LABEL, labels[i + 1] == IGNORE_LABEL);
                }
            }
        }
    }
    let rate = labelled as f64 / real as f64;
    assert!((0.12..0.16).contains(&rate), "labelled share {rate}");
    let mask_rate = masked as f64 / labelled as f64;
    assert!((0.77..0.83).contains(&mask_rate), "mask share {mask_rate}");
}

#[test]
fn missing_tokenizer_files_error_names_dir() {
    let dir = tempfile::tempdir().unwrap();
    let err = recformer_data::RecformerTokenizer::from_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&dir.path().display().to_string()));
}
