//! What a preparation run did: counts, and every skipped or repaired record by reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// How many example locations are kept per issue kind.
pub const MAX_EXAMPLES: usize = 5;

/// A problem found in one line of a raw file, and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Issue {
    /// The line is not valid UTF-8: record skipped.
    NonUtf8,
    /// The line is not a JSON object (bad JSON, blank line, other value): record skipped.
    BadJson,
    /// A required field (`asin`, `title`, `reviewerID`, `unixReviewTime`) is missing or null:
    /// record skipped.
    MissingRequired(&'static str),
    /// A required field has the wrong JSON type: record skipped.
    InvalidRequired(&'static str),
    /// `brand` or `category` is missing or null: the value becomes `""`, record kept.
    MissingOptional(&'static str),
    /// `brand` is not a string or `category` not a list of strings: the value becomes `""`,
    /// record kept.
    InvalidOptional(&'static str),
    /// A metadata record repeats an earlier asin: the later record replaces the earlier one
    /// (Python dict semantics of the official scripts).
    DuplicateItem,
}

impl Issue {
    /// Whether the record was dropped.
    pub fn skips_record(&self) -> bool {
        matches!(
            self,
            Self::NonUtf8 | Self::BadJson | Self::MissingRequired(_) | Self::InvalidRequired(_)
        )
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonUtf8 => write!(f, "skipped: line is not valid UTF-8"),
            Self::BadJson => write!(f, "skipped: line is not a JSON object"),
            Self::MissingRequired(field) => write!(f, "skipped: missing or null `{field}`"),
            Self::InvalidRequired(field) => write!(f, "skipped: `{field}` has the wrong type"),
            Self::MissingOptional(field) => write!(f, "kept with \"\": missing or null `{field}`"),
            Self::InvalidOptional(field) => {
                write!(f, "kept with \"\": `{field}` has the wrong type")
            }
            Self::DuplicateItem => write!(f, "replaced: asin repeated, later record wins"),
        }
    }
}

/// A line of a file (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// The file.
    pub file: PathBuf,
    /// The line number, 1-based.
    pub line: u64,
}

impl fmt::Display for SourceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// How often one [`Issue`] happened, with the first few locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueStats {
    /// The issue.
    pub issue: Issue,
    /// How many lines had it.
    pub count: u64,
    /// The first [`MAX_EXAMPLES`] locations.
    pub examples: Vec<SourceLine>,
}

/// Lines read from one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    /// The file.
    pub file: PathBuf,
    /// Lines read (each pass counted once).
    pub lines: u64,
}

/// The outcome of [`prepare_finetune`](super::prepare_finetune) or
/// [`prepare_pretrain`](super::prepare_pretrain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareReport {
    /// Finetuning: users written to `umap.json`. Pretraining: train + dev sequences.
    pub users: usize,
    /// Finetuning: items in `smap.json`. Pretraining: items in `meta_data.json`.
    pub items: usize,
    /// Interactions written (all splits / all sequences).
    pub interactions: usize,
    /// Pretraining: sequences in `dev.json` (0 for finetuning).
    pub dev_sequences: usize,
    /// Items with usable metadata (finetuning: the entries of `meta_data.json`).
    pub meta_items: usize,
    /// Valid reviews whose item has no usable metadata (not used, as in the official scripts).
    pub reviews_without_meta: u64,
    /// Finetuning: users with 3 or fewer interactions, dropped by the official rule.
    pub users_too_short: usize,
    /// Finetuning: users with enough interactions left out by `sample_users`.
    pub users_sampled_out: usize,
    /// Lines read per input file.
    pub files: Vec<FileStats>,
    /// Issues in input order of first occurrence.
    pub issues: Vec<IssueStats>,
}

impl PrepareReport {
    /// Lines dropped because of an issue.
    pub fn skipped_records(&self) -> u64 {
        self.issues
            .iter()
            .filter(|s| s.issue.skips_record())
            .map(|s| s.count)
            .sum()
    }

    /// The count of one issue (0 if it never happened).
    pub fn count(&self, issue: Issue) -> u64 {
        self.issues
            .iter()
            .find(|s| s.issue == issue)
            .map_or(0, |s| s.count)
    }

    pub(crate) fn record(&mut self, issue: Issue, file: &Path, line: u64) {
        let stats = match self.issues.iter_mut().position(|s| s.issue == issue) {
            Some(i) => &mut self.issues[i],
            None => {
                self.issues.push(IssueStats {
                    issue,
                    count: 0,
                    examples: Vec::new(),
                });
                self.issues.last_mut().expect("just pushed")
            }
        };
        stats.count += 1;
        if stats.examples.len() < MAX_EXAMPLES {
            stats.examples.push(SourceLine {
                file: file.into(),
                line,
            });
        }
    }

    pub(crate) fn add_file(&mut self, file: &Path, lines: u64) {
        match self.files.iter_mut().find(|f| f.file == file) {
            Some(stats) => stats.lines = stats.lines.max(lines),
            None => self.files.push(FileStats {
                file: file.into(),
                lines,
            }),
        }
    }
}

impl fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "users/sequences: {}, items: {}, interactions: {}",
            self.users, self.items, self.interactions
        )?;
        if self.dev_sequences > 0 {
            writeln!(f, "dev sequences: {}", self.dev_sequences)?;
        }
        writeln!(
            f,
            "items with metadata: {}, reviews without metadata: {}",
            self.meta_items, self.reviews_without_meta
        )?;
        if self.users_too_short + self.users_sampled_out > 0 {
            writeln!(
                f,
                "users dropped: {} with <= 3 interactions, {} by sampling",
                self.users_too_short, self.users_sampled_out
            )?;
        }
        for file in &self.files {
            writeln!(f, "read {} lines from {}", file.lines, file.file.display())?;
        }
        if self.issues.is_empty() {
            writeln!(f, "no bad records")?;
        }
        for stats in &self.issues {
            let examples: Vec<String> = stats.examples.iter().map(|e| e.to_string()).collect();
            writeln!(
                f,
                "{} record(s) {} (e.g. {})",
                stats.count,
                stats.issue,
                examples.join(", ")
            )?;
        }
        Ok(())
    }
}
