//! The RecFormer tokenizer: a `tokenizers::Tokenizer` plus the official `encode_item`.
//!
//! Two vocabularies are supported:
//! - [`TokenizerKind::ByteLevelBpe`]: RoBERTa/Longformer (`vocab.json` + `merges.txt`), byte-level
//!   pre-tokenizer with the GPT-2 regex and `add_prefix_space = false`, like the official slow
//!   `LongformerTokenizer` with `add_prefix_space=False`.
//! - [`TokenizerKind::WordPiece`]: BERT (`vocab.txt`), `BertNormalizer` (clean text, Chinese
//!   characters, lower-casing with accent stripping when lower-casing) and `BertPreTokenizer`, like
//!   the slow `BertTokenizer`.
//!
//! Neither pipeline has a post-processor: tokens are always produced without special tokens. The
//! special tokens (first token, pad, mask) are looked up by their strings in the vocabulary.

mod encode;
mod prune;
mod train;
mod word_start;

use std::collections::HashMap;
use std::path::Path;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

pub use self::encode::{KEY_TOKEN_TYPE, VALUE_TOKEN_TYPE};
use self::word_start::token_starts_word;
use crate::error::{Error, Result};
use crate::item::ATTRIBUTE_KEYS;

/// Which tokenizer model a [`RecformerTokenizer`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// RoBERTa / Longformer byte-level BPE (`<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>`).
    ByteLevelBpe,
    /// BERT WordPiece (`[CLS]`, `[PAD]`, `[SEP]`, `[UNK]`, `[MASK]`).
    WordPiece,
}

const FIRST_TOKENS: &[&str] = &["<s>", "[CLS]"];
const PAD_TOKENS: &[&str] = &["<pad>", "[PAD]"];
const MASK_TOKENS: &[&str] = &["<mask>", "[MASK]"];
const SEP_TOKENS: &[&str] = &["</s>", "[SEP]"];
const UNK_TOKENS: &[&str] = &["<unk>", "[UNK]"];
const BPE_SPECIALS: &[&str] = &["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
const WORDPIECE_SPECIALS: &[&str] = &["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// A tokenizer that produces RecFormer item tokens.
#[derive(Clone)]
pub struct RecformerTokenizer {
    tokenizer: Tokenizer,
    kind: TokenizerKind,
    cls: u32,
    pad: u32,
    mask: u32,
    sep: Option<u32>,
    special: Vec<u32>,
    /// Per vocabulary id: whether the token starts a new word for whole-word masking.
    word_start: Vec<bool>,
    /// Token ids of the Amazon attribute keys, computed once.
    key_cache: HashMap<String, Vec<u32>>,
}

impl std::fmt::Debug for RecformerTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecformerTokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size())
            .field("cls", &self.cls)
            .field("pad", &self.pad)
            .field("mask", &self.mask)
            .finish()
    }
}

impl RecformerTokenizer {
    /// Loads a tokenizer directory: `tokenizer.json` if present, else `vocab.json` + `merges.txt`
    /// (byte-level BPE), else `vocab.txt` (WordPiece, lower-cased).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        let vocab_json = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        let vocab_txt = dir.join("vocab.txt");
        if json.is_file() {
            Self::from_tokenizer_json(&json)
        } else if vocab_json.is_file() && merges.is_file() {
            Self::from_bpe_files(&vocab_json, &merges)
        } else if vocab_txt.is_file() {
            Self::from_wordpiece_vocab(&vocab_txt, true)
        } else {
            Err(Error::NoTokenizerFiles { dir: dir.into() })
        }
    }

    /// Builds the RoBERTa/Longformer byte-level BPE tokenizer from `vocab.json` and `merges.txt`.
    pub fn from_bpe_files(vocab_json: &Path, merges_txt: &Path) -> Result<Self> {
        for path in [vocab_json, merges_txt] {
            std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        }
        let bpe = BPE::from_file(&vocab_json.to_string_lossy(), &merges_txt.to_string_lossy())
            .build()
            .map_err(|e| {
                Error::tokenizer(
                    format!(
                        "reading BPE files {} and {}",
                        vocab_json.display(),
                        merges_txt.display()
                    ),
                    e,
                )
            })?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
        add_present_specials(&mut tokenizer, BPE_SPECIALS);
        Self::from_parts(tokenizer, TokenizerKind::ByteLevelBpe)
    }

    /// Builds a BERT WordPiece tokenizer from `vocab.txt` (one token per line, id = line index).
    pub fn from_wordpiece_vocab(vocab_txt: &Path, lowercase: bool) -> Result<Self> {
        std::fs::metadata(vocab_txt).map_err(|e| Error::io(vocab_txt, e))?;
        let model = WordPiece::from_file(&vocab_txt.to_string_lossy())
            .unk_token("[UNK]".to_owned())
            .build()
            .map_err(|e| {
                Error::tokenizer(
                    format!("reading WordPiece vocabulary {}", vocab_txt.display()),
                    e,
                )
            })?;
        let mut tokenizer = Tokenizer::new(model);
        set_bert_pipeline(&mut tokenizer, lowercase);
        add_present_specials(&mut tokenizer, WORDPIECE_SPECIALS);
        Self::from_parts(tokenizer, TokenizerKind::WordPiece)
    }

    /// Loads a Hugging Face `tokenizer.json` with a BPE or WordPiece model. Truncation, padding and
    /// the post-processor are not used; a byte-level pre-tokenizer is forced to
    /// `add_prefix_space = false` as in the official code.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::tokenizer(format!("reading {}", path.display()), e))?;
        let kind = match tokenizer.get_model() {
            ModelWrapper::BPE(_) => TokenizerKind::ByteLevelBpe,
            ModelWrapper::WordPiece(_) => TokenizerKind::WordPiece,
            ModelWrapper::WordLevel(_) => {
                return Err(Error::UnsupportedTokenizer {
                    path: path.into(),
                    model: "WordLevel",
                })
            }
            ModelWrapper::Unigram(_) => {
                return Err(Error::UnsupportedTokenizer {
                    path: path.into(),
                    model: "Unigram",
                })
            }
        };
        if let Some(PreTokenizerWrapper::ByteLevel(byte_level)) = tokenizer.get_pre_tokenizer() {
            if byte_level.add_prefix_space {
                log::warn!(
                    "{}: add_prefix_space=true overridden to false (official RecFormer setting)",
                    path.display()
                );
                let fixed = byte_level.add_prefix_space(false);
                tokenizer.with_pre_tokenizer(Some(fixed));
            }
        }
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::tokenizer("disabling truncation", e))?;
        tokenizer.with_padding(None);
        Self::from_parts(tokenizer, kind)
    }

    /// Writes `dir/tokenizer.json` (creating `dir`); [`Self::from_dir`] reloads it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("tokenizer.json");
        self.tokenizer
            .save(&path, false)
            .map_err(|e| Error::tokenizer(format!("writing {}", path.display()), e))
    }

    fn from_parts(tokenizer: Tokenizer, kind: TokenizerKind) -> Result<Self> {
        let find = |role: &'static str, candidates: &'static [&'static str]| {
            candidates
                .iter()
                .find_map(|t| tokenizer.token_to_id(t))
                .ok_or(Error::MissingSpecialToken { role, candidates })
        };
        let cls = find("first", FIRST_TOKENS)?;
        let pad = find("pad", PAD_TOKENS)?;
        let mask = find("mask", MASK_TOKENS)?;
        let sep = find("separator", SEP_TOKENS).ok();
        let unk = find("unknown", UNK_TOKENS).ok();

        let mut special: Vec<u32> = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .chain(
                [Some(cls), Some(pad), Some(mask), sep, unk]
                    .into_iter()
                    .flatten(),
            )
            .collect();
        special.sort_unstable();
        special.dedup();

        let vocab_size = tokenizer.get_vocab_size(true);
        let word_start = (0..vocab_size as u32)
            .map(|id| match tokenizer.id_to_token(id) {
                Some(token) => token_starts_word(kind, &token),
                None => true,
            })
            .collect();

        let mut this = Self {
            tokenizer,
            kind,
            cls,
            pad,
            mask,
            sep,
            special,
            word_start,
            key_cache: HashMap::new(),
        };
        for key in ATTRIBUTE_KEYS {
            let ids = this.tokenize_plain(key)?;
            this.key_cache.insert(key.to_owned(), ids);
        }
        Ok(this)
    }

    /// The tokenizer model.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// Vocabulary size including added tokens (the range of random MLM replacements).
    pub fn vocab_size(&self) -> usize {
        self.word_start.len()
    }

    /// Id of the first token of every sequence: `<s>` (BPE) or `[CLS]` (WordPiece).
    pub fn cls_token_id(&self) -> u32 {
        self.cls
    }

    /// Id of the padding token: `<pad>` or `[PAD]`.
    pub fn pad_token_id(&self) -> u32 {
        self.pad
    }

    /// Id of the mask token: `<mask>` or `[MASK]`.
    pub fn mask_token_id(&self) -> u32 {
        self.mask
    }

    /// Id of the separator token (`</s>` or `[SEP]`), if the vocabulary has one.
    pub fn sep_token_id(&self) -> Option<u32> {
        self.sep
    }

    /// All special-token ids (sorted): the added special tokens plus first, pad, mask, separator
    /// and unknown tokens.
    pub fn special_token_ids(&self) -> Vec<u32> {
        self.special.clone()
    }

    /// Whether `id` is a special token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_ok()
    }

    /// Whether token `id` starts a new word for whole-word masking.
    ///
    /// Byte-level BPE uses the official `_is_subword` rule: a token continues the previous word
    /// unless its decoded text starts with a space (`Ġ`) or its first character is punctuation.
    /// (So attribute keys and the first word of each value, which have no `Ġ`, are glued to the
    /// preceding word, as in the official code.) WordPiece: a token continues the previous word
    /// when it starts with `##` (the BERT rule of Hugging Face's whole-word-mask collator).
    pub fn starts_word(&self, id: u32) -> bool {
        self.word_start.get(id as usize).copied().unwrap_or(true)
    }

    /// The token string of `id`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// The wrapped `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokenises `text` with no special tokens and no added prefix space (the official
    /// `convert_tokens_to_ids(tokenize(text))`).
    pub fn tokenize_plain(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::tokenizer(format!("tokenizing {text:?}"), e))?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// Adds the given special tokens that exist in the vocabulary as special added tokens (so text
/// containing them is split on them, as the slow Hugging Face tokenizers do). `<mask>` strips
/// spaces on its left as in RoBERTa.
fn add_present_specials(tokenizer: &mut Tokenizer, tokens: &[&str]) {
    let present: Vec<AddedToken> = tokens
        .iter()
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(*t, true).lstrip(*t == "<mask>"))
        .collect();
    tokenizer.add_special_tokens(&present);
}

fn set_bert_pipeline(tokenizer: &mut Tokenizer, lowercase: bool) {
    tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
}
