//! `pretrain_data/meta_data_process.py` + `interaction_data_process.py`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::reader::{no_progress, LineReader, Progress};
use super::records::{parse_meta, parse_review};
use super::report::{Issue, PrepareReport};
use super::{create_out_dir, MetaJson, MetaTable};
use crate::error::Result;
use crate::json_io::write_json_py;

/// Builds the official pretraining layout in `out_dir`; see [`prepare_pretrain_with_progress`].
pub fn prepare_pretrain(
    reviews: &[PathBuf],
    metas: &[PathBuf],
    dev_reviews: &Path,
    dev_meta: &Path,
    out_dir: &Path,
) -> Result<PrepareReport> {
    prepare_pretrain_with_progress(reviews, metas, dev_reviews, dev_meta, out_dir, &no_progress)
}

/// Sequences keyed by `reviewerID + "_" + file name`, in first-review order; each holds
/// `(time, interned asin)`.
#[derive(Default)]
struct Sequences {
    index: HashMap<String, usize>,
    seqs: Vec<Vec<(i64, u32)>>,
}

impl Sequences {
    fn push(&mut self, key: String, time: i64, asin: u32) {
        let seqs = &mut self.seqs;
        let i = *self.index.entry(key).or_insert_with(|| {
            seqs.push(Vec::new());
            seqs.len() - 1
        });
        seqs[i].push((time, asin));
    }

    /// Sorted by `(time, asin)` and turned into asin strings.
    fn finish(self, names: &[String]) -> Vec<Vec<&str>> {
        self.seqs
            .into_iter()
            .map(|mut seq| {
                seq.sort_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then_with(|| names[a.1 as usize].cmp(&names[b.1 as usize]))
                });
                seq.into_iter()
                    .map(|(_, a)| names[a as usize].as_str())
                    .collect()
            })
            .collect()
    }
}

/// [`prepare_pretrain`] reporting read progress to `progress`.
///
/// The rules of the official pretraining scripts, with the categories given as files:
/// 1. `meta_asins`: asins of usable metadata records (with a title) in `metas` and `dev_meta`;
///    `seq_asins`: asins of reviews (with a reviewer) in `reviews` and `dev_reviews`; the selected
///    items are the intersection. `meta_data.json` = `{asin: {title, brand, category}}` of the
///    selected items, in first-record order over the metadata files (a repeated asin replaces
///    the value in place).
/// 2. Each review of a selected item is appended as `(time, asin)` to the sequence keyed
///    `reviewerID + "_" + <review file name>` (so one user in two categories gives two
///    sequences); sequences are sorted by `(time, asin)`.
/// 3. `train.json` = the sequences of `reviews`, `dev.json` = those of `dev_reviews`, as lists of
///    asin lists in first-review order. No minimum length.
pub fn prepare_pretrain_with_progress(
    reviews: &[PathBuf],
    metas: &[PathBuf],
    dev_reviews: &Path,
    dev_meta: &Path,
    out_dir: &Path,
    progress: Progress<'_>,
) -> Result<PrepareReport> {
    let mut report = PrepareReport::default();
    let meta_files: Vec<&Path> = metas
        .iter()
        .map(PathBuf::as_path)
        .chain([dev_meta])
        .collect();

    // 1a. meta_asins, interned.
    let mut asin_ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    for &path in &meta_files {
        let mut reader = LineReader::open(path, "metadata (titles)", progress)?;
        while let Some((line_no, line)) = reader.next_line()? {
            warnings.clear();
            match parse_meta(line, &mut warnings) {
                Ok(rec) => {
                    for &w in &warnings {
                        report.record(w, path, line_no);
                    }
                    if asin_ids.contains_key(&rec.asin) {
                        report.record(Issue::DuplicateItem, path, line_no);
                    } else {
                        asin_ids.insert(rec.asin.clone(), names.len() as u32);
                        names.push(rec.asin);
                    }
                }
                Err(issue) => report.record(issue, path, line_no),
            }
        }
        report.add_file(path, reader.lines());
    }

    // 1b + 2. Reviews: seq_asins ∩ meta_asins, and the sequences.
    let mut in_reviews = vec![false; names.len()];
    let mut train = Sequences::default();
    let mut dev = Sequences::default();
    let review_files = reviews
        .iter()
        .map(|p| (p.as_path(), false))
        .chain([(dev_reviews, true)]);
    for (path, is_dev) in review_files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut reader = LineReader::open(path, "reviews", progress)?;
        while let Some((line_no, line)) = reader.next_line()? {
            let rec = match parse_review(line) {
                Ok(rec) => rec,
                Err(issue) => {
                    report.record(issue, path, line_no);
                    continue;
                }
            };
            let Some(&id) = asin_ids.get(&rec.asin) else {
                report.reviews_without_meta += 1;
                continue;
            };
            in_reviews[id as usize] = true;
            let time = match rec.time {
                Ok(t) => t,
                Err(issue) => {
                    report.record(issue, path, line_no);
                    continue;
                }
            };
            let key = format!("{}_{}", rec.user, file_name);
            if is_dev {
                dev.push(key, time, id);
            } else {
                train.push(key, time, id);
            }
        }
        report.add_file(path, reader.lines());
    }

    // 1c. meta_data.json of the selected items (second pass, issues already counted).
    let mut table = MetaTable::default();
    for &path in &meta_files {
        let mut reader = LineReader::open(path, "metadata (selected)", progress)?;
        while let Some((_, line)) = reader.next_line()? {
            if let Ok(rec) = parse_meta(line, &mut warnings) {
                if asin_ids
                    .get(&rec.asin)
                    .is_some_and(|&id| in_reviews[id as usize])
                {
                    table.insert(rec.asin, rec.item);
                }
            }
            warnings.clear();
        }
    }
    report.meta_items = table.len();
    report.items = table.len();

    let train = train.finish(&names);
    let dev = dev.finish(&names);
    report.dev_sequences = dev.len();
    report.users = train.len() + dev.len();
    report.interactions = train.iter().chain(&dev).map(Vec::len).sum();

    create_out_dir(out_dir)?;
    write_json_py(&out_dir.join("meta_data.json"), &MetaJson(&table.entries))?;
    write_json_py(&out_dir.join("train.json"), &train)?;
    write_json_py(&out_dir.join("dev.json"), &dev)?;
    log::info!(
        "prepared {}: {} train + {} dev sequences, {} items, {} interactions",
        out_dir.display(),
        report.users - report.dev_sequences,
        report.dev_sequences,
        report.items,
        report.interactions
    );
    Ok(report)
}
