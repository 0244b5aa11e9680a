//! The official processed pretraining layout (`pretrain_data/*.py` output).
//!
//! A directory with `meta_data.json` (`{asin: {title, brand, category}}`), `train.json` and
//! `dev.json` (lists of asin lists, each chronological).

use std::collections::HashMap;
use std::path::Path;

use crate::dataset::read_meta;
use crate::error::{Error, Result};
use crate::item::ItemMeta;
use crate::json_io::read_json;

/// A pretraining corpus; sequences hold item rows (indices into `items`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PretrainCorpus {
    /// Item key (asin) of each row, in `meta_data.json` order.
    pub item_keys: Vec<String>,
    /// Attributes of each row.
    pub items: Vec<ItemMeta>,
    /// Training sequences (oldest first).
    pub train: Vec<Vec<usize>>,
    /// Validation sequences (oldest first).
    pub dev: Vec<Vec<usize>>,
}

impl PretrainCorpus {
    /// Reads the layout from `dir`; every key in `train.json` / `dev.json` must be in
    /// `meta_data.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("meta_data.json");
        let (item_keys, items): (Vec<String>, Vec<ItemMeta>) =
            read_meta(&meta_path)?.into_iter().unzip();
        let rows: HashMap<&str, usize> = item_keys
            .iter()
            .enumerate()
            .map(|(row, key)| (key.as_str(), row))
            .collect();
        let read = |name: &str| -> Result<Vec<Vec<usize>>> {
            let path = dir.join(name);
            let raw: Vec<Vec<String>> = read_json(&path)?;
            raw.into_iter()
                .enumerate()
                .map(|(s, seq)| {
                    seq.into_iter()
                        .enumerate()
                        .map(|(p, key)| {
                            rows.get(key.as_str())
                                .copied()
                                .ok_or_else(|| Error::UnknownItem {
                                    path: path.clone(),
                                    location: format!("sequence {s}, position {p}"),
                                    key,
                                    meta: meta_path.clone(),
                                })
                        })
                        .collect()
                })
                .collect()
        };
        let train = read("train.json")?;
        let dev = read("dev.json")?;
        Ok(Self {
            item_keys,
            items,
            train,
            dev,
        })
    }

    /// Number of items.
    pub fn num_items(&self) -> usize {
        self.items.len()
    }
}
