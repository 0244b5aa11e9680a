//! Readers of the official processed data layouts.

pub mod finetune;
pub mod pretrain;

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::item::ItemMeta;
use crate::json_io::read_json;

/// Reads a `meta_data.json` (`{item_key: {attr: value, ...}}`) keeping file order of items and of
/// attributes. String values are used as they are, `null` becomes `""` (logged); any other value
/// is an error naming the item and the field.
pub(crate) fn read_meta(path: &Path) -> Result<Vec<(String, ItemMeta)>> {
    let raw: Map<String, Value> = read_json(path)?;
    let mut nulls = 0usize;
    let mut first_null = None;
    let mut items = Vec::with_capacity(raw.len());
    for (key, attrs) in raw {
        let Value::Object(attrs) = attrs else {
            return Err(Error::format(
                path,
                format!("item {key:?}"),
                format!(
                    "expected an object of attributes, found {}",
                    kind_of(&attrs)
                ),
            ));
        };
        let mut meta = ItemMeta {
            attrs: Vec::with_capacity(attrs.len()),
        };
        for (field, value) in attrs {
            let value = match value {
                Value::String(s) => s,
                Value::Null => {
                    nulls += 1;
                    first_null.get_or_insert_with(|| format!("item {key:?} field {field:?}"));
                    String::new()
                }
                other => {
                    return Err(Error::format(
                        path,
                        format!("item {key:?} field {field:?}"),
                        format!("expected a string, found {}", kind_of(&other)),
                    ))
                }
            };
            meta.attrs.push((field, value));
        }
        items.push((key, meta));
    }
    if let Some(first) = first_null {
        log::warn!(
            "{}: {nulls} null attribute value(s) read as \"\" (first: {first})",
            path.display()
        );
    }
    Ok(items)
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
