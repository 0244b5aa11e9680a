//! The official processed finetuning layout (`finetune_data/process.py` output).
//!
//! A directory with `meta_data.json` (`{item_key: {title, brand, category}}`, may hold more items
//! than are used), `smap.json` (`{item_key: iid}`), `umap.json` (`{user_key: uid}`), `train.json`
//! (`{uid: [iid, ...]}`, chronological), `val.json` and `test.json` (`{uid: [iid]}`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::dataset::read_meta;
use crate::error::{Error, Result};
use crate::item::ItemMeta;
use crate::json_io::read_json;

/// Which held-out split to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Validation: history = `train[u]`, label = `val[u]`.
    Val,
    /// Test: history = `train[u] + val[u]`, label = `test[u]`.
    Test,
}

/// One evaluation case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalExample {
    /// User id (`uid`).
    pub user: usize,
    /// Item ids, oldest first.
    pub history: Vec<usize>,
    /// The held-out item id.
    pub label: usize,
}

/// A finetuning dataset; items and users are addressed by their ids (row = id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinetuneDataset {
    /// Item key (asin) of each iid.
    pub item_keys: Vec<String>,
    /// Attributes of each iid, in `meta_data.json` order.
    pub items: Vec<ItemMeta>,
    /// Training sequence of each user (oldest first).
    pub train: BTreeMap<usize, Vec<usize>>,
    /// Validation item of each user that has one.
    pub val: BTreeMap<usize, usize>,
    /// Test item of each user that has one.
    pub test: BTreeMap<usize, usize>,
    /// User key (reviewerID) of each uid.
    pub user_keys: Vec<String>,
}

impl FinetuneDataset {
    /// Reads the layout from `dir`. Ids in `smap.json` / `umap.json` must be exactly `0..N`;
    /// every smap item must be in `meta_data.json` (items not in smap are ignored, as in the
    /// official `load_data`); split files must name known users and items, and `val`/`test`
    /// lists must hold exactly one item.
    pub fn load(dir: &Path) -> Result<Self> {
        let smap_path = dir.join("smap.json");
        let umap_path = dir.join("umap.json");
        let meta_path = dir.join("meta_data.json");
        let item_keys = invert_ids(&smap_path, read_json(&smap_path)?)?;
        let user_keys = invert_ids(&umap_path, read_json(&umap_path)?)?;

        let mut meta: HashMap<String, ItemMeta> = read_meta(&meta_path)?.into_iter().collect();
        let items = item_keys
            .iter()
            .map(|key| {
                meta.remove(key).ok_or_else(|| Error::UnknownItem {
                    path: smap_path.clone(),
                    location: format!("key {key:?}"),
                    key: key.clone(),
                    meta: meta_path.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let num_users = user_keys.len();
        let num_items = item_keys.len();
        let train = read_split(&dir.join("train.json"), num_users, num_items, None)?;
        let val = single_items(read_split(
            &dir.join("val.json"),
            num_users,
            num_items,
            Some(1),
        )?);
        let test = single_items(read_split(
            &dir.join("test.json"),
            num_users,
            num_items,
            Some(1),
        )?);
        Ok(Self {
            item_keys,
            items,
            train,
            val,
            test,
            user_keys,
        })
    }

    /// Number of items (`len(smap)`).
    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Number of users (`len(umap)`).
    pub fn num_users(&self) -> usize {
        self.user_keys.len()
    }

    /// Number of interactions over train, val and test.
    pub fn num_interactions(&self) -> usize {
        self.train.values().map(Vec::len).sum::<usize>() + self.val.len() + self.test.len()
    }

    /// Evaluation cases in user-id order, as the official `RecformerEvalDataset`: the users of
    /// `val.json` (history `train[u]`) or of `test.json` (history `train[u] + val[u]`).
    pub fn eval_examples(&self, split: Split) -> Vec<EvalExample> {
        let labels = match split {
            Split::Val => &self.val,
            Split::Test => &self.test,
        };
        labels
            .iter()
            .map(|(&user, &label)| {
                let mut history = self.train.get(&user).cloned().unwrap_or_default();
                if split == Split::Test {
                    history.extend(self.val.get(&user));
                }
                EvalExample {
                    user,
                    history,
                    label,
                }
            })
            .collect()
    }
}

/// `{key: id}` with ids exactly `0..N` → keys by id.
fn invert_ids(path: &Path, map: serde_json::Map<String, serde_json::Value>) -> Result<Vec<String>> {
    let n = map.len();
    let mut keys: Vec<Option<String>> = vec![None; n];
    for (key, id) in map {
        let id = id.as_u64().filter(|&id| (id as usize) < n).ok_or_else(|| {
            Error::format(
                path,
                format!("key {key:?}"),
                format!("id {id} is not an integer in 0..{n}"),
            )
        })? as usize;
        if let Some(other) = &keys[id] {
            return Err(Error::format(
                path,
                format!("key {key:?}"),
                format!("id {id} is also used by {other:?}"),
            ));
        }
        keys[id] = Some(key);
    }
    // With n keys, n distinct ids in 0..n: every slot is filled.
    Ok(keys.into_iter().flatten().collect())
}

fn read_split(
    path: &Path,
    num_users: usize,
    num_items: usize,
    exact_len: Option<usize>,
) -> Result<BTreeMap<usize, Vec<usize>>> {
    let raw: BTreeMap<String, Vec<usize>> = read_json(path)?;
    let mut out = BTreeMap::new();
    for (user, items) in raw {
        let uid = user
            .parse::<usize>()
            .ok()
            .filter(|&u| u < num_users)
            .ok_or_else(|| {
                Error::format(
                    path,
                    format!("key {user:?}"),
                    format!("not a user id in 0..{num_users}"),
                )
            })?;
        if let Some(&bad) = items.iter().find(|&&i| i >= num_items) {
            return Err(Error::format(
                path,
                format!("user {user}"),
                format!("item id {bad} is not in 0..{num_items}"),
            ));
        }
        if let Some(len) = exact_len {
            if items.len() != len {
                return Err(Error::format(
                    path,
                    format!("user {user}"),
                    format!("expected {len} item(s), found {}", items.len()),
                ));
            }
        }
        out.insert(uid, items);
    }
    Ok(out)
}

fn single_items(split: BTreeMap<usize, Vec<usize>>) -> BTreeMap<usize, usize> {
    split.into_iter().map(|(u, items)| (u, items[0])).collect()
}
