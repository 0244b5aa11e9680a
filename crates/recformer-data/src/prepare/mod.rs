//! Preparation of RecFormer datasets from raw Amazon Review Data 2018 files.
//!
//! Inputs are JSON-lines files, plain or gzip (detected by the magic bytes, not the name),
//! read as streams: reviews (`{Category}_5.json[.gz]`: `reviewerID`, `asin`, `unixReviewTime`)
//! and metadata (`meta_{Category}.json[.gz]`: `asin`, `title`, `brand`, `category` list).
//!
//! Bad lines never abort a run: a line that is not UTF-8 or not a JSON object, or lacks a usable
//! `asin`/`title` (metadata) or `reviewerID`/`asin`/`unixReviewTime` (reviews), is skipped; a
//! missing or null `brand`/`category` becomes `""`. Each case is counted in the
//! [`PrepareReport`] with file:line examples. A truncated or corrupt gzip file is an error
//! ([`crate::Error::Gzip`]) naming the file.

mod finetune;
mod in_domain;
mod pretrain;
mod reader;
mod records;
mod report;

use std::collections::HashMap;
use std::path::Path;

use serde::ser::{Serialize, SerializeMap, Serializer};

pub use finetune::{prepare_finetune, prepare_finetune_with_progress, PrepareFinetuneOptions};
pub use in_domain::{prepare_in_domain_corpus, InDomainCorpus};
pub use pretrain::{prepare_pretrain, prepare_pretrain_with_progress};
pub use reader::{no_progress, Progress, ProgressEvent};
pub use report::{FileStats, Issue, IssueStats, PrepareReport, SourceLine, MAX_EXAMPLES};

use crate::error::{Error, Result};
use crate::item::ItemMeta;

/// Metadata items in first-insertion order; a repeated asin replaces the value in place (Python
/// dict semantics).
#[derive(Default)]
pub(crate) struct MetaTable {
    index: HashMap<String, usize>,
    entries: Vec<(String, ItemMeta)>,
}

impl MetaTable {
    /// Inserts or replaces; returns whether the asin was already present.
    fn insert(&mut self, asin: String, item: ItemMeta) -> bool {
        match self.index.get(&asin) {
            Some(&i) => {
                self.entries[i].1 = item;
                true
            }
            None => {
                self.index.insert(asin.clone(), self.entries.len());
                self.entries.push((asin, item));
                false
            }
        }
    }

    fn position(&self, asin: &str) -> Option<usize> {
        self.index.get(asin).copied()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Serialises a slice of pairs as a JSON object in order.
pub(crate) struct AsMap<'a, K, V>(pub &'a [(K, V)]);

impl<K: Serialize, V: Serialize> Serialize for AsMap<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Serialises an item as `{key: value, ...}` in attribute order.
pub(crate) struct AttrMap<'a>(pub &'a ItemMeta);

impl Serialize for AttrMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.attrs.len()))?;
        for (k, v) in &self.0.attrs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Serialises a metadata table as `meta_data.json`.
pub(crate) struct MetaJson<'a>(pub &'a [(String, ItemMeta)]);

impl Serialize for MetaJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, AttrMap(v))))
    }
}

pub(crate) fn create_out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}
