//! Parsing of raw Amazon 2018 lines into the fields the official scripts use.

use serde::Deserialize;
use serde_json::Value;

use super::report::Issue;
use crate::item::ItemMeta;

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default)]
    asin: Option<Value>,
    #[serde(default)]
    title: Option<Value>,
    #[serde(default)]
    brand: Option<Value>,
    #[serde(default)]
    category: Option<Value>,
}

#[derive(Deserialize)]
struct RawReview {
    #[serde(default, rename = "reviewerID")]
    reviewer_id: Option<Value>,
    #[serde(default)]
    asin: Option<Value>,
    #[serde(default, rename = "unixReviewTime")]
    unix_review_time: Option<Value>,
}

/// A usable metadata record: `{title, brand, category: " ".join(category)}`.
pub(crate) struct MetaRecord {
    pub asin: String,
    pub item: ItemMeta,
}

/// A review with a reviewer and an item; the time may be unusable.
pub(crate) struct ReviewRecord {
    pub user: String,
    pub asin: String,
    pub time: Result<i64, Issue>,
}

fn parse_object<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, Issue> {
    let text = std::str::from_utf8(line).map_err(|_| Issue::NonUtf8)?;
    if !text.trim_start().starts_with('{') {
        return Err(Issue::BadJson);
    }
    serde_json::from_str(text).map_err(|_| Issue::BadJson)
}

fn required_string(value: Option<Value>, field: &'static str) -> Result<String, Issue> {
    match value {
        None => Err(Issue::MissingRequired(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Issue::InvalidRequired(field)),
    }
}

/// Parses a metadata line. A record without a usable `asin` or `title` is an `Err`; repaired
/// optional fields are pushed to `warnings`.
pub(crate) fn parse_meta(line: &[u8], warnings: &mut Vec<Issue>) -> Result<MetaRecord, Issue> {
    let raw: RawMeta = parse_object(line)?;
    let asin = required_string(raw.asin, "asin")?;
    let title = required_string(raw.title, "title")?;
    let brand = match raw.brand {
        None => {
            warnings.push(Issue::MissingOptional("brand"));
            String::new()
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            warnings.push(Issue::InvalidOptional("brand"));
            String::new()
        }
    };
    let category = match raw.category {
        None => {
            warnings.push(Issue::MissingOptional("category"));
            String::new()
        }
        Some(Value::Array(parts)) if parts.iter().all(Value::is_string) => {
            let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            parts.join(" ")
        }
        Some(_) => {
            warnings.push(Issue::InvalidOptional("category"));
            String::new()
        }
    };
    Ok(MetaRecord {
        asin,
        item: ItemMeta::new(title, brand, category),
    })
}

/// Parses a review line. A record without a usable `reviewerID` or `asin` is an `Err`.
pub(crate) fn parse_review(line: &[u8]) -> Result<ReviewRecord, Issue> {
    let raw: RawReview = parse_object(line)?;
    let user = required_string(raw.reviewer_id, "reviewerID")?;
    let asin = required_string(raw.asin, "asin")?;
    let time = match raw.unix_review_time {
        None => Err(Issue::MissingRequired("unixReviewTime")),
        Some(v) => v.as_i64().ok_or(Issue::InvalidRequired("unixReviewTime")),
    };
    Ok(ReviewRecord { user, asin, time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_fields() {
        let mut w = Vec::new();
        let line = br#"{"asin": "A1", "title": "T &amp; x", "brand": "B", "category": ["Sci", "Lab"], "price": "$3"}"#;
        let rec = parse_meta(line, &mut w).unwrap();
        assert_eq!(rec.asin, "A1");
        assert_eq!(rec.item, ItemMeta::new("T &amp; x", "B", "Sci Lab"));
        assert!(w.is_empty());

        let rec = parse_meta(br#"{"asin": "A2", "title": "", "brand": null}"#, &mut w).unwrap();
        assert_eq!(rec.item, ItemMeta::new("", "", ""));
        assert_eq!(
            w,
            [
                Issue::MissingOptional("brand"),
                Issue::MissingOptional("category")
            ]
        );
        w.clear();
        let rec = parse_meta(
            br#"{"asin": "A3", "title": "t", "brand": 5, "category": "x"}"#,
            &mut w,
        );
        assert!(rec.is_ok());
        assert_eq!(
            w,
            [
                Issue::InvalidOptional("brand"),
                Issue::InvalidOptional("category")
            ]
        );

        let skip = |line: &[u8]| parse_meta(line, &mut Vec::new()).err();
        assert_eq!(
            skip(br#"{"asin": "A4"}"#),
            Some(Issue::MissingRequired("title"))
        );
        assert_eq!(
            skip(br#"{"asin": "A4", "title": null}"#),
            Some(Issue::MissingRequired("title"))
        );
        assert_eq!(
            skip(br#"{"asin": "A4", "title": ["x"]}"#),
            Some(Issue::InvalidRequired("title"))
        );
        assert_eq!(
            skip(br#"{"title": "x"}"#),
            Some(Issue::MissingRequired("asin"))
        );
        assert_eq!(
            skip(br#"{"asin": "A5", "title": "x""#),
            Some(Issue::BadJson)
        );
        assert_eq!(skip(br#"["A5", "x"]"#), Some(Issue::BadJson));
        assert_eq!(skip(b""), Some(Issue::BadJson));
        assert_eq!(skip(b"{\"asin\": \"\xff\"}"), Some(Issue::NonUtf8));
    }

    #[test]
    fn review_fields() {
        let r = parse_review(
            br#"{"reviewerID": "U", "asin": "A", "unixReviewTime": 12, "overall": 5.0}"#,
        )
        .unwrap();
        assert_eq!(
            (r.user.as_str(), r.asin.as_str(), r.time),
            ("U", "A", Ok(12))
        );
        let r = parse_review(br#"{"reviewerID": "U", "asin": "A"}"#).unwrap();
        assert_eq!(r.time, Err(Issue::MissingRequired("unixReviewTime")));
        let r =
            parse_review(br#"{"reviewerID": "U", "asin": "A", "unixReviewTime": "12"}"#).unwrap();
        assert_eq!(r.time, Err(Issue::InvalidRequired("unixReviewTime")));
        assert_eq!(
            parse_review(br#"{"asin": "A", "unixReviewTime": 1}"#).err(),
            Some(Issue::MissingRequired("reviewerID"))
        );
    }
}
