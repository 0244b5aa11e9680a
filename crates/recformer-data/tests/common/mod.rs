//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use recformer_data::RecformerTokenizer;

/// The shared real-data directory with the Scientific dataset and the tokenizers, or `None`
/// (the test is skipped and says so) when it is absent and was not asked for.
pub fn data_dir() -> Option<PathBuf> {
    recformer_data::shared_data::test_data_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        &["scientific-recformer", "tokenizers"],
    )
}

pub fn roberta(data: &Path) -> RecformerTokenizer {
    RecformerTokenizer::from_dir(&data.join("tokenizers/roberta-base")).expect("roberta-base")
}

pub fn bert(data: &Path) -> RecformerTokenizer {
    RecformerTokenizer::from_dir(&data.join("tokenizers/bert-base-uncased"))
        .expect("bert-base-uncased")
}

/// A tiny WordPiece vocabulary whose tokenisation is known by construction: the special tokens,
/// the Amazon keys, every lower-case letter, every `##letter`, and `w0`..`w{n_words}`.
/// A lower-case word of `k` letters is `k` tokens; `wN` is one token.
pub fn tiny_wordpiece(dir: &Path, n_words: usize) -> RecformerTokenizer {
    let mut vocab: Vec<String> = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "title", "brand", "category",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in 'a'..='z' {
        vocab.push(c.to_string());
    }
    for c in 'a'..='z' {
        vocab.push(format!("##{c}"));
    }
    for i in 0..n_words {
        vocab.push(format!("w{i}"));
    }
    let path = dir.join("vocab.txt");
    std::fs::write(&path, vocab.join("\n") + "\n").unwrap();
    RecformerTokenizer::from_wordpiece_vocab(&path, true).unwrap()
}
