//! Items as ordered attribute lists, and their tokenised form.

use serde::{Deserialize, Serialize};

/// The attribute keys of an Amazon item, in the order the official preprocessing writes them.
pub const ATTRIBUTE_KEYS: [&str; 3] = ["title", "brand", "category"];

/// An item's attributes in order, as `(key, value)` pairs of raw strings (no cleaning, no HTML
/// unescaping). Amazon items have `title`, `brand`, `category` (the category path joined with
/// spaces); datasets with other keys keep them in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemMeta {
    /// `(key, value)` pairs in order; the tokenizer uses the first `max_attr_num`.
    pub attrs: Vec<(String, String)>,
}

impl ItemMeta {
    /// An Amazon item: `title`, `brand`, `category` in that order.
    pub fn new(
        title: impl Into<String>,
        brand: impl Into<String>,
        category: impl Into<String>,
    ) -> Self {
        Self {
            attrs: vec![
                ("title".to_owned(), title.into()),
                ("brand".to_owned(), brand.into()),
                ("category".to_owned(), category.into()),
            ],
        }
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `title` value, or `""` when the item has none.
    pub fn title(&self) -> &str {
        self.get("title").unwrap_or("")
    }
}

/// An item's tokens: the output of the official `encode_item`, without any first token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemTokens {
    /// Token ids, attribute after attribute, key tokens then value tokens, no separators.
    pub input_ids: Vec<u32>,
    /// 1 for key tokens, 2 for value tokens; same length as `input_ids`.
    pub token_type_ids: Vec<u32>,
}

impl ItemTokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether the item has no tokens.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keeps_amazon_order() {
        let item = ItemMeta::new("T", "B", "C");
        let keys: Vec<&str> = item.attrs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ATTRIBUTE_KEYS);
        assert_eq!(item.title(), "T");
        assert_eq!(item.get("brand"), Some("B"));
        assert_eq!(item.get("color"), None);
        assert_eq!(ItemMeta::default().title(), "");
    }
}
