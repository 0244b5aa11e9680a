//! The conversion report: what each RecFormer tensor is and which source tensors were dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::source::SourceKind;

/// How a RecFormer tensor was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The source tensor, unchanged.
    Copied,
    /// Computed from source tensors (re-indexed positions, repeated rows, copied projections).
    Derived,
    /// Newly initialised (no source tensor).
    Fresh,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Origin::Copied => "copied",
            Origin::Derived => "derived",
            Origin::Fresh => "fresh",
        })
    }
}

/// One RecFormer tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// RecFormer key.
    pub target: String,
    /// How it was made.
    pub origin: Origin,
    /// The source key, or what was computed.
    pub detail: String,
}

/// What a conversion did, tensor by tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionReport {
    /// The source weights file.
    pub source: PathBuf,
    /// The source family.
    pub kind: SourceKind,
    /// Every RecFormer tensor.
    pub rows: Vec<ReportRow>,
    /// Source keys not used, with the reason.
    pub dropped: Vec<(String, String)>,
}

impl ConversionReport {
    /// Number of RecFormer tensors with this origin.
    pub fn count(&self, origin: Origin) -> usize {
        self.rows.iter().filter(|r| r.origin == origin).count()
    }

    /// The row of a RecFormer key.
    pub fn row(&self, target: &str) -> Option<&ReportRow> {
        self.rows.iter().find(|r| r.target == target)
    }

    /// Whether the MLM head came from the source (else it is new, its decoder a copy of the word
    /// embeddings).
    pub fn source_had_mlm_head(&self) -> bool {
        self.row("lm_head.dense.weight")
            .is_some_and(|r| r.origin == Origin::Copied)
    }
}

/// Replaces `layer.<n>.` by `layer.*.` so that the per-layer rows collapse into one.
fn layer_pattern(s: &str) -> (String, Option<usize>) {
    let Some(start) = s.find("layer.") else {
        return (s.to_string(), None);
    };
    let digits_from = start + "layer.".len();
    let digits: String = s[digits_from..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse() {
        Ok(n) => (
            format!("{}*{}", &s[..digits_from], &s[digits_from + digits.len()..])
                .replace(&format!("layer.{n}."), "layer.*."),
            Some(n),
        ),
        Err(_) => (s.to_string(), None),
    }
}

impl fmt::Display for ConversionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}): {} tensors copied, {} derived, {} fresh; {} source tensors dropped",
            self.source.display(),
            self.kind.name(),
            self.count(Origin::Copied),
            self.count(Origin::Derived),
            self.count(Origin::Fresh),
            self.dropped.len()
        )?;
        // Collapse the per-layer rows: (pattern, origin, detail pattern) -> layers.
        let mut groups: BTreeMap<(usize, String, Origin, String), Vec<usize>> = BTreeMap::new();
        for (i, row) in self.rows.iter().enumerate() {
            let (target, layer) = layer_pattern(&row.target);
            let (detail, _) = layer_pattern(&row.detail);
            let first = groups
                .keys()
                .find(|(_, t, o, d)| t == &target && *o == row.origin && d == &detail)
                .map(|k| k.0)
                .unwrap_or(i);
            groups
                .entry((first, target, row.origin, detail))
                .or_default()
                .extend(layer);
        }
        for ((_, target, origin, detail), layers) in &groups {
            let layers = match (layers.first(), layers.last()) {
                (Some(a), Some(b)) if layers.len() > 1 => format!(" (layers {a}-{b})"),
                _ => String::new(),
            };
            writeln!(f, "  {origin:<8} {target}{layers} <- {detail}")?;
        }
        for (key, reason) in &self.dropped {
            writeln!(f, "  dropped  {key}: {reason}")?;
        }
        Ok(())
    }
}
