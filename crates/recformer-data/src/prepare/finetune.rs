//! `finetune_data/process.py`, reproduced exactly (user sampling optional and seeded).

use std::collections::HashMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reader::{no_progress, LineReader, Progress};
use super::records::{parse_meta, parse_review};
use super::report::{Issue, PrepareReport};
use super::{create_out_dir, AsMap, MetaJson, MetaTable};
use crate::error::{Error, Result};
use crate::json_io::write_json_py;

/// Options of [`prepare_finetune`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrepareFinetuneOptions {
    /// Keep each user that has enough interactions with this probability (the official script
    /// keeps an unseeded 20%, `random.randint(0, 4) == 0`). Default: `None` (keep all), which
    /// gives exactly the official ids and splits minus the sampling.
    pub sample_users: Option<f64>,
    /// Seed of the sampling RNG (ChaCha8). Default: 42.
    pub seed: u64,
}

impl Default for PrepareFinetuneOptions {
    fn default() -> Self {
        Self {
            sample_users: None,
            seed: 42,
        }
    }
}

/// Builds the official finetuning layout in `out_dir` from a raw review file and its metadata
/// file; see [`prepare_finetune_with_progress`].
pub fn prepare_finetune(
    reviews: &Path,
    meta: &Path,
    out_dir: &Path,
    opts: &PrepareFinetuneOptions,
) -> Result<PrepareReport> {
    prepare_finetune_with_progress(reviews, meta, out_dir, opts, &no_progress)
}

/// [`prepare_finetune`] reporting read progress to `progress`.
///
/// The rules of the official `finetune_data/process.py`:
/// 1. Metadata: every usable record → `{title, brand, category: " ".join(category)}`; a repeated
///    asin replaces the earlier value in place. Records without a title are skipped (the official
///    script dies with `KeyError`).
/// 2. Reviews in file order whose asin has metadata → `(asin, time)` appended to the reviewer's
///    list; reviewers in order of first review.
/// 3. Reviewers with **more than 3** interactions are kept (optionally sampled), getting user
///    ids 0, 1, … in that order; item ids are given in order of first appearance while walking
///    the kept users' lists in file order.
/// 4. Each list is sorted by time (stable); `train = seq[:-2]`, `val = [seq[-2]]`,
///    `test = [seq[-1]]` (users with fewer than 3 items — impossible without changes to rule 3 —
///    would be train only).
/// 5. Writes `umap.json`, `smap.json`, `train.json`, `val.json`, `test.json` and
///    `meta_data.json` (all usable metadata) in Python `json.dump` format.
pub fn prepare_finetune_with_progress(
    reviews: &Path,
    meta: &Path,
    out_dir: &Path,
    opts: &PrepareFinetuneOptions,
    progress: Progress<'_>,
) -> Result<PrepareReport> {
    if let Some(f) = opts.sample_users {
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::Config {
                field: "sample_users",
                value: f.to_string(),
                message: "must be in (0, 1]",
            });
        }
    }
    let mut report = PrepareReport::default();

    // 1. Metadata.
    let mut table = MetaTable::default();
    let mut warnings = Vec::new();
    let mut reader = LineReader::open(meta, "metadata", progress)?;
    while let Some((line_no, line)) = reader.next_line()? {
        warnings.clear();
        match parse_meta(line, &mut warnings) {
            Ok(rec) => {
                for &w in &warnings {
                    report.record(w, meta, line_no);
                }
                if table.insert(rec.asin, rec.item) {
                    report.record(Issue::DuplicateItem, meta, line_no);
                }
            }
            Err(issue) => report.record(issue, meta, line_no),
        }
    }
    report.add_file(meta, reader.lines());
    report.meta_items = table.len();

    // 2. Reviews → per-reviewer lists of (meta position, time), reviewers in first-review order.
    let mut user_index: HashMap<String, usize> = HashMap::new();
    let mut users: Vec<(String, Vec<(usize, i64)>)> = Vec::new();
    let mut reader = LineReader::open(reviews, "reviews", progress)?;
    while let Some((line_no, line)) = reader.next_line()? {
        let rec = match parse_review(line) {
            Ok(rec) => rec,
            Err(issue) => {
                report.record(issue, reader.path(), line_no);
                continue;
            }
        };
        let time = match rec.time {
            Ok(t) => t,
            Err(issue) => {
                report.record(issue, reader.path(), line_no);
                continue;
            }
        };
        let Some(pos) = table.position(&rec.asin) else {
            report.reviews_without_meta += 1;
            continue;
        };
        let u = *user_index.entry(rec.user).or_insert_with_key(|user| {
            users.push((user.clone(), Vec::new()));
            users.len() - 1
        });
        users[u].1.push((pos, time));
    }
    report.add_file(reviews, reader.lines());
    drop(user_index);

    // 3. Keep users with > 3 interactions; ids in first-kept order; items by first appearance.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut iid_of: Vec<Option<usize>> = vec![None; table.len()];
    let mut smap: Vec<(&str, usize)> = Vec::new();
    let mut umap: Vec<(&str, usize)> = Vec::new();
    let mut kept: Vec<Vec<(usize, i64)>> = Vec::new();
    for (user, seq) in &users {
        if seq.len() <= 3 {
            report.users_too_short += 1;
            continue;
        }
        if let Some(fraction) = opts.sample_users {
            if !rng.random_bool(fraction) {
                report.users_sampled_out += 1;
                continue;
            }
        }
        umap.push((user.as_str(), umap.len()));
        let seq: Vec<(usize, i64)> = seq
            .iter()
            .map(|&(pos, time)| {
                let iid = *iid_of[pos].get_or_insert_with(|| {
                    smap.push((table.entries[pos].0.as_str(), smap.len()));
                    smap.len() - 1
                });
                (iid, time)
            })
            .collect();
        kept.push(seq);
    }

    // 4. Stable sort by time, leave-one-out split.
    let mut train: Vec<(usize, Vec<usize>)> = Vec::with_capacity(kept.len());
    let mut val: Vec<(usize, [usize; 1])> = Vec::with_capacity(kept.len());
    let mut test: Vec<(usize, [usize; 1])> = Vec::with_capacity(kept.len());
    for (uid, mut seq) in kept.into_iter().enumerate() {
        seq.sort_by_key(|&(_, time)| time);
        let items: Vec<usize> = seq.into_iter().map(|(iid, _)| iid).collect();
        report.interactions += items.len();
        let n = items.len();
        if n < 3 {
            train.push((uid, items));
        } else {
            val.push((uid, [items[n - 2]]));
            test.push((uid, [items[n - 1]]));
            train.push((uid, items[..n - 2].to_vec()));
        }
    }
    report.users = umap.len();
    report.items = smap.len();

    // 5. Outputs.
    create_out_dir(out_dir)?;
    write_json_py(&out_dir.join("umap.json"), &AsMap(&umap))?;
    write_json_py(&out_dir.join("smap.json"), &AsMap(&smap))?;
    write_json_py(&out_dir.join("train.json"), &AsMap(&train))?;
    write_json_py(&out_dir.join("val.json"), &AsMap(&val))?;
    write_json_py(&out_dir.join("test.json"), &AsMap(&test))?;
    write_json_py(&out_dir.join("meta_data.json"), &MetaJson(&table.entries))?;
    log::info!(
        "prepared {}: {} users, {} items, {} interactions",
        out_dir.display(),
        report.users,
        report.items,
        report.interactions
    );
    Ok(report)
}
