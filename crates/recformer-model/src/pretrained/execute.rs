//! Running one rule of the conversion table: copy, position-table surgery, constants and the
//! seeded normal initialisation of tensors the source does not have.

use std::collections::BTreeMap;

use super::report::Origin;
use super::rules::{self, Rule};
use super::source::{Array, Source, SourceKind};
use crate::config::RecformerConfig;

/// The source key a rule reads, if any.
pub(super) fn source_of<'a>(rule: &'a Rule, floats: &BTreeMap<String, Array>) -> Option<&'a str> {
    match rule {
        Rule::Copy(k) | Rule::Positions(k) | Rule::RepeatFirstRow(k) => Some(k),
        Rule::CopyFirst {
            preferred,
            fallback,
        } => Some(if floats.contains_key(preferred) {
            preferred
        } else {
            fallback
        }),
        Rule::Zeros | Rule::Ones | Rule::Normal(_) => None,
    }
}

pub(super) fn execute(
    rule: &Rule,
    planned: &rules::Planned,
    floats: &BTreeMap<String, Array>,
    source: &Source,
    config: &RecformerConfig,
) -> (Array, Origin, String) {
    let shape = planned.shape.clone();
    match rule {
        Rule::Copy(k) => (floats[k].clone(), Origin::Copied, k.clone()),
        Rule::CopyFirst {
            preferred,
            fallback,
        } => match floats.get(preferred) {
            Some(a) => (a.clone(), Origin::Copied, preferred.clone()),
            None => (
                floats[fallback].clone(),
                Origin::Derived,
                format!("copy of {fallback} (the source has no {preferred})"),
            ),
        },
        Rule::Positions(k) => {
            let src = &floats[k];
            let first = source.kind.first_position_row(source.pad_token_id);
            let learnt = source.learnt_positions();
            let (rows, width) = (shape[0], shape[1]);
            let pad = config.pad_token_id;
            let mut data = Vec::with_capacity(rows * width);
            for r in 0..rows {
                if r <= pad {
                    if r < first {
                        data.extend_from_slice(src.row(r));
                    } else {
                        data.extend(std::iter::repeat_n(0.0, width));
                    }
                } else {
                    data.extend_from_slice(src.row(first + (r - pad - 1) % learnt));
                }
            }
            let how = match source.kind {
                SourceKind::Bert => {
                    "source row i -> RecFormer position pad + 1 + i (BERT's [CLS] is at 0)"
                }
                _ => "same position ids as the source",
            };
            let extended = if rows - pad - 1 > learnt {
                format!(
                    ", extended from {learnt} to {} learnt rows by repetition",
                    rows - pad - 1
                )
            } else {
                String::new()
            };
            (
                Array { shape, data },
                Origin::Derived,
                format!("{k}: {how}{extended}"),
            )
        }
        Rule::RepeatFirstRow(k) => {
            let row = floats[k].row(0);
            let data = (0..shape[0]).flat_map(|_| row.iter().copied()).collect();
            (
                Array { shape, data },
                Origin::Derived,
                format!("{k} row 0 in every row (RecFormer's <s>/key/value/pad types start equal)"),
            )
        }
        Rule::Zeros => (Array::full(shape, 0.0), Origin::Fresh, "zeros".into()),
        Rule::Ones => (Array::full(shape, 1.0), Origin::Fresh, "ones".into()),
        Rule::Normal(std) => {
            let n: usize = shape.iter().product();
            let data = normal_values(&planned.target, n, *std);
            (
                Array { shape, data },
                Origin::Fresh,
                format!("normal(0, {std})"),
            )
        }
    }
}

/// Deterministic normal(0, std) values seeded by the key (splitmix64 + Box-Muller), so that a
/// conversion is reproducible.
fn normal_values(key: &str, n: usize, std: f64) -> Vec<f32> {
    let mut state = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let u1 = next().max(f64::MIN_POSITIVE);
            let u2 = next();
            (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}
