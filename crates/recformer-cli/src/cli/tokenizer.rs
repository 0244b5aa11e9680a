//! `recformer tokenizer train`: a WordPiece vocabulary from a catalogue's own text.

use std::path::Path;

use anyhow::{bail, Context, Result};
use recformer_data::{RecformerTokenizer, ATTRIBUTE_KEYS};

use super::TokenizerCommand;

/// Every attribute key and value of `dir/meta_data.json`, in file order.
pub fn catalogue_texts(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("meta_data.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let meta: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .with_context(|| {
            format!(
                "{}: expected a JSON object {{item: {{title, brand, category}}}}",
                path.display()
            )
        })?;
    let mut texts: Vec<String> = ATTRIBUTE_KEYS.iter().map(|k| k.to_string()).collect();
    for (key, attrs) in &meta {
        let obj = attrs
            .as_object()
            .with_context(|| format!("{}: item {key:?} is not an object", path.display()))?;
        for v in obj.values() {
            if let Some(s) = v.as_str() {
                if !s.is_empty() {
                    texts.push(s.to_string());
                }
            }
        }
    }
    Ok(texts)
}

pub fn run(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train {
            data,
            vocab_size,
            cased,
            out,
        } => {
            if vocab_size < 100 {
                bail!("--vocab-size {vocab_size} is too small (at least 100)");
            }
            let mut texts = Vec::new();
            for d in &data {
                texts.extend(catalogue_texts(d)?);
            }
            let n = texts.len();
            let tok = RecformerTokenizer::train_wordpiece(texts.into_iter(), vocab_size, !cased)
                .context("training the WordPiece tokenizer")?;
            tok.save(&out)
                .with_context(|| format!("saving the tokenizer to {}", out.display()))?;
            println!(
                "trained a WordPiece vocabulary of {} tokens on {n} texts -> {}",
                tok.vocab_size(),
                out.join("tokenizer.json").display()
            );
            Ok(())
        }
    }
}
