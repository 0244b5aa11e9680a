//! An in-domain pretraining corpus made from a finetuning dataset's training sequences.

use std::path::Path;

use super::create_out_dir;
use crate::dataset::finetune::FinetuneDataset;
use crate::error::{Error, Result};
use crate::json_io::write_json_py;

/// What [`prepare_in_domain_corpus`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDomainCorpus {
    /// Training sequences written to `train.json`.
    pub train: usize,
    /// Held-out users' sequences written to `dev.json`.
    pub dev: usize,
    /// Items in `meta_data.json`.
    pub items: usize,
}

/// Writes the pretraining layout (`meta_data.json`, `train.json`, `dev.json`: lists of item-key
/// lists) from the finetuning dataset in `finetune_dir`: each user's *training* sequence (never a
/// validation or test target), in user order; every `dev_every`-th user (the 10th, 20th, ... with
/// `dev_every = 10`) goes to `dev.json` instead of `train.json`. Sequences shorter than two items
/// are skipped (no item-item pair).
pub fn prepare_in_domain_corpus(
    finetune_dir: &Path,
    out_dir: &Path,
    dev_every: usize,
) -> Result<InDomainCorpus> {
    if dev_every < 2 {
        return Err(Error::Config {
            field: "dev_every",
            value: dev_every.to_string(),
            message: "must be at least 2 (every n-th user goes to dev)",
        });
    }
    let ds = FinetuneDataset::load(finetune_dir)?;
    create_out_dir(out_dir)?;
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for (i, seq) in ds.train.values().filter(|s| s.len() >= 2).enumerate() {
        let keys: Vec<&str> = seq.iter().map(|&r| ds.item_keys[r].as_str()).collect();
        if (i + 1) % dev_every == 0 {
            dev.push(keys);
        } else {
            train.push(keys);
        }
    }
    write_json_py(&out_dir.join("train.json"), &train)?;
    write_json_py(&out_dir.join("dev.json"), &dev)?;
    let meta_from = finetune_dir.join("meta_data.json");
    let meta_to = out_dir.join("meta_data.json");
    std::fs::copy(&meta_from, &meta_to).map_err(|e| Error::io(&meta_from, e))?;
    Ok(InDomainCorpus {
        train: train.len(),
        dev: dev.len(),
        items: ds.num_items(),
    })
}
