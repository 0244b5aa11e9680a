//! `recformer init`: an HF BERT / RoBERTa / Longformer directory → a RecFormer model directory.
//!
//! Weights and config go through [`recformer_model::pretrained::convert`] (function-preserving,
//! strict, with a report); this module adds the tokenizer, checks it against the model, and writes
//! the directory that every other command loads.

use std::path::{Path, PathBuf};

use recformer_data::{RecformerTokenizer, TokenizerKind};
use recformer_model::pretrained::{convert, ConversionReport, FromPretrainedConfig};

use crate::error::{Error, Result};
use crate::model_dir::{ModelDir, CONFIG_FILE, WEIGHTS_FILE};

/// Name of the conversion report written next to the converted model.
pub const REPORT_FILE: &str = "init_report.txt";

/// Loads the tokenizer of an HF model directory: `tokenizer.json`, `vocab.json` + `merges.txt`,
/// or `vocab.txt` (lower-cased unless `tokenizer_config.json` says `"do_lower_case": false`).
/// A `tokenizer.json`'s own padding and truncation are switched off (RecFormer flattens items
/// itself; MiniLM's file, for one, pads every encoding to 128 `[PAD]`s).
pub fn source_tokenizer(dir: &Path) -> Result<RecformerTokenizer> {
    let vocab_txt = dir.join("vocab.txt");
    let has_other = dir.join("tokenizer.json").is_file()
        || (dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file());
    if !has_other && vocab_txt.is_file() {
        let lowercase = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
            .unwrap_or(true);
        return Ok(RecformerTokenizer::from_wordpiece_vocab(
            &vocab_txt, lowercase,
        )?);
    }
    Ok(RecformerTokenizer::from_dir(dir)?)
}

/// The tokenizer file that [`source_tokenizer`] read (for error messages).
fn tokenizer_file(dir: &Path) -> PathBuf {
    ["tokenizer.json", "vocab.json", "vocab.txt"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .unwrap_or_else(|| dir.join("tokenizer.json"))
}

impl ModelDir {
    /// Converts the HF model directory `source` into a RecFormer model directory `out`
    /// (`config.json`, `tokenizer.json`, `model.safetensors` with the MLM head, and the
    /// conversion report `init_report.txt`), then opens it.
    ///
    /// # Errors
    /// Everything [`convert`] rejects; a tokenizer with more tokens than the embedding table has
    /// rows; a tokenizer pad id that differs from the config's `pad_token_id`.
    pub fn from_pretrained(
        source: &Path,
        out: &Path,
        options: &FromPretrainedConfig,
    ) -> Result<(Self, ConversionReport)> {
        let conversion = convert(source, options)?;
        let tokenizer = source_tokenizer(source)?;
        let config = &conversion.config;
        let config_path = source.join(CONFIG_FILE);
        let tok_path = tokenizer_file(source);
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::Incompatible {
                path: tok_path,
                reason: format!(
                    "the tokenizer has {} tokens but {} `vocab_size` (the embedding rows) is {}",
                    tokenizer.vocab_size(),
                    config_path.display(),
                    config.vocab_size
                ),
            });
        }
        if tokenizer.pad_token_id() as usize != config.pad_token_id {
            return Err(Error::Incompatible {
                path: tok_path,
                reason: format!(
                    "the tokenizer's pad token has id {} but {} `pad_token_id` is {}",
                    tokenizer.pad_token_id(),
                    config_path.display(),
                    config.pad_token_id
                ),
            });
        }
        let expected_kind = match conversion.source.kind {
            recformer_model::pretrained::SourceKind::Bert => TokenizerKind::WordPiece,
            _ => TokenizerKind::ByteLevelBpe,
        };
        if tokenizer.kind() != expected_kind {
            log::warn!(
                "{}: a {:?} tokenizer for a {} model",
                tok_path.display(),
                tokenizer.kind(),
                conversion.source.kind.name()
            );
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        config.save_json(out.join(CONFIG_FILE))?;
        tokenizer.save(out)?;
        let weights = out.join(WEIGHTS_FILE);
        let tmp = weights.with_extension("tmp");
        conversion.save_safetensors(&tmp)?;
        std::fs::rename(&tmp, &weights).map_err(|e| Error::io(&weights, e))?;
        let report_path = out.join(REPORT_FILE);
        std::fs::write(&report_path, conversion.report.to_string())
            .map_err(|e| Error::io(&report_path, e))?;
        Ok((Self::open(out)?, conversion.report))
    }
}
