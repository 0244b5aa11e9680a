//! Word starts for whole-word masking: which vocabulary tokens begin a new word.

use super::TokenizerKind;

/// Punctuation as in the official `_is_punctuation` (from BERT): ASCII punctuation/symbol ranges
/// or a Unicode `P*` category.
pub(crate) fn is_punctuation(c: char) -> bool {
    use unicode_categories::UnicodeCategories;
    c.is_ascii_punctuation() || c.is_punctuation()
}

pub(super) fn token_starts_word(kind: TokenizerKind, token: &str) -> bool {
    match kind {
        TokenizerKind::ByteLevelBpe => {
            // Byte-level: the space byte is written `Ġ` (U+0120); only a token whose first byte is
            // a space decodes to a string starting with " ".
            token.starts_with('\u{120}') || token.chars().next().is_some_and(is_punctuation)
        }
        TokenizerKind::WordPiece => !token.starts_with("##"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_matches_official_ranges() {
        for c in [
            '!', '/', ':', '@', '[', '`', '{', '~', '<', '\u{2014}', '\u{00bf}',
        ] {
            assert!(is_punctuation(c), "{c:?}");
        }
        for c in ['a', 'Z', '0', ' ', '\u{120}', '\u{e9}'] {
            assert!(!is_punctuation(c), "{c:?}");
        }
    }

    #[test]
    fn word_start_rules() {
        let bpe = TokenizerKind::ByteLevelBpe;
        assert!(token_starts_word(bpe, "\u{120}the"));
        assert!(token_starts_word(bpe, "<pad>"));
        assert!(token_starts_word(bpe, "."));
        assert!(!token_starts_word(bpe, "title"));
        assert!(!token_starts_word(bpe, "ing"));
        let wp = TokenizerKind::WordPiece;
        assert!(token_starts_word(wp, "title"));
        assert!(!token_starts_word(wp, "##ing"));
    }
}
