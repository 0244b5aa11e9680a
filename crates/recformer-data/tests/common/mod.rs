//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use recformer_data::RecformerTokenizer;

/// The shared real-data directory: `$RECFORMER_DATA_DIR`, else `../shared/data` next to the
/// workspace. Missing data fails the test, unless `RECFORMER_SKIP_DATA_TESTS=1` (then `None`).
pub fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("RECFORMER_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    if dir.join("scientific-recformer").is_dir() && dir.join("tokenizers").is_dir() {
        return Some(dir);
    }
    if std::env::var("RECFORMER_SKIP_DATA_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping: no real data at {}", dir.display());
        return None;
    }
    panic!(
        "real data not found at {} (needs scientific-recformer/ and tokenizers/): set \
         RECFORMER_DATA_DIR to the shared data directory, or RECFORMER_SKIP_DATA_TESTS=1 to skip",
        dir.display()
    );
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
