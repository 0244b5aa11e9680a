//! Tokenizer loading, saving and WordPiece training (no shared data needed).

mod common;

use recformer_data::{ItemMeta, RecformerDataConfig, RecformerTokenizer, TokenizerKind};

fn corpus() -> Vec<String> {
    let words = [
        "digital",
        "caliper",
        "stainless",
        "steel",
        "gloves",
        "nitrile",
        "safety",
        "glasses",
        "industrial",
        "scientific",
        "lab",
        "beaker",
        "glass",
        "measuring",
        "tape",
        "inch",
    ];
    (0..300)
        .map(|i| {
            (0..8)
                .map(|j| words[(i * 7 + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn train_wordpiece_specials_save_and_reload() {
    let tok = RecformerTokenizer::train_wordpiece(corpus().into_iter(), 300, true).unwrap();
    assert_eq!(tok.kind(), TokenizerKind::WordPiece);
    assert!(tok.vocab_size() <= 300, "{}", tok.vocab_size());
    let specials: Vec<_> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| tok.token_to_id(t).unwrap())
        .collect();
    assert_eq!(specials, [0, 1, 2, 3, 4]);
    assert_eq!(
        (tok.pad_token_id(), tok.cls_token_id(), tok.mask_token_id()),
        (0, 2, 4)
    );
    assert_eq!(tok.special_token_ids(), vec![0, 1, 2, 3, 4]);

    // Lower-casing, and known words never become [UNK].
    let ids = tok.tokenize_plain("Digital CALIPER Stainless").unwrap();
    assert!(!ids.contains(&1));
    assert_eq!(
        ids,
        tok.tokenize_plain("digital caliper stainless").unwrap()
    );
    let text: Vec<String> = ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(text.concat().replace("##", ""), "digitalcaliperstainless");

    // Training twice need not give the same ids: the `tokenizers` trainer breaks merge ties in
    // hash-map order (docs/results.md). Both vocabularies must still cover the corpus words.
    let again = RecformerTokenizer::train_wordpiece(corpus().into_iter(), 300, true).unwrap();
    for t in [&tok, &again] {
        let ids = t.tokenize_plain("glass beaker").unwrap();
        assert!(!ids.contains(&1), "[UNK] in {ids:?}");
        let text: Vec<String> = ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect();
        assert_eq!(text.concat().replace("##", ""), "glassbeaker");
    }

    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let back = RecformerTokenizer::from_dir(dir.path()).unwrap();
    let cfg = RecformerDataConfig::mini();
    let item = ItemMeta::new(
        "Nitrile Gloves, 100 count",
        "Acme",
        "Industrial & Scientific Lab",
    );
    assert_eq!(
        back.encode_item(&item, &cfg).unwrap(),
        tok.encode_item(&item, &cfg).unwrap()
    );
    assert_eq!(back.vocab_size(), tok.vocab_size());
}

/// `from_dir` prefers tokenizer.json over vocab.txt.
#[test]
fn from_dir_prefers_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = common::tiny_wordpiece(dir.path(), 3);
    assert_eq!(tiny.vocab_size(), 8 + 52 + 3);
    let trained = RecformerTokenizer::train_wordpiece(corpus().into_iter(), 200, true).unwrap();
    trained.save(dir.path()).unwrap();
    let loaded = RecformerTokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(loaded.vocab_size(), trained.vocab_size());
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let loaded = RecformerTokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(loaded.vocab_size(), tiny.vocab_size());
}

/// A vocabulary without a mask token is rejected with the role named.
#[test]
fn missing_special_token_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vocab.txt");
    std::fs::write(&path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n").unwrap();
    let err = RecformerTokenizer::from_wordpiece_vocab(&path, true).unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
}

/// Keys and values are tokenised separately; an empty value leaves the key; keys count toward
/// the cap; attributes beyond `max_attr_num` are ignored.
#[test]
fn encode_item_small_cases() {
    let dir = tempfile::tempdir().unwrap();
    let tok = common::tiny_wordpiece(dir.path(), 0);
    let id = |t: &str| tok.token_to_id(t).unwrap();
    let cfg = RecformerDataConfig {
        max_attr_num: 2,
        max_attr_length: 3,
        ..RecformerDataConfig::base()
    };
    let item = ItemMeta::new("ab cd", "", "zzz");
    let out = tok.encode_item(&item, &cfg).unwrap();
    assert_eq!(
        out.input_ids,
        [id("title"), id("a"), id("##b"), id("brand")]
    );
    assert_eq!(out.token_type_ids, [1, 2, 2, 1]);
}
