//! Cold-start evaluation (paper Table 3): the evaluated users split by whether their target item
//! occurs in the training data.
//!
//! An item is *in-set* when it occurs in at least one training sequence (`train.json`), and
//! *cold* otherwise. Only the training sequences count, also for the test split: a test target
//! that occurs only as some user's validation item is cold (the paper's "in-set" = occurs in the
//! training data).

use recformer_data::FinetuneDataset;
use serde::{Deserialize, Serialize};

use crate::metrics::{metrics_from_ranks, Metrics};

/// The set of items that occur in the training sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingItems {
    seen: Vec<bool>,
}

impl TrainingItems {
    /// Items occurring in any of `sequences` (rows `>= num_items` are ignored).
    pub fn from_sequences<'a>(
        num_items: usize,
        sequences: impl IntoIterator<Item = &'a Vec<usize>>,
    ) -> Self {
        let mut seen = vec![false; num_items];
        for seq in sequences {
            for &item in seq {
                if let Some(s) = seen.get_mut(item) {
                    *s = true;
                }
            }
        }
        Self { seen }
    }

    /// Items occurring in the dataset's training sequences (`dataset.train`; never val or test).
    pub fn of_dataset(dataset: &FinetuneDataset) -> Self {
        Self::from_sequences(dataset.num_items(), dataset.train.values())
    }

    /// Whether `item` occurs in the training sequences (false for unknown rows).
    pub fn contains(&self, item: usize) -> bool {
        self.seen.get(item).copied().unwrap_or(false)
    }

    /// Whether `item` never occurs in the training sequences.
    pub fn is_cold(&self, item: usize) -> bool {
        !self.contains(item)
    }

    /// Number of distinct items in the training sequences.
    pub fn len(&self) -> usize {
        self.seen.iter().filter(|&&s| s).count()
    }

    /// Whether no item occurs in the training sequences.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Metrics of the two user groups. Serialises as `{"in_set": {...}, "cold": {...}}`; each
/// group's `users` is its size (0 and all-zero metrics for an empty group).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ColdStartMetrics {
    /// Users whose target item occurs in the training sequences.
    pub in_set: Metrics,
    /// Users whose target item never occurs in the training sequences.
    pub cold: Metrics,
}

impl ColdStartMetrics {
    /// Splits per-user `ranks` by the users' `labels` (same order and length) and averages each
    /// group over its users.
    ///
    /// # Panics
    /// If `labels` and `ranks` differ in length.
    pub fn from_ranks(labels: &[usize], ranks: &[usize], training: &TrainingItems) -> Self {
        assert_eq!(
            labels.len(),
            ranks.len(),
            "one rank per label is needed for the cold-start split"
        );
        let (mut warm, mut cold) = (Vec::new(), Vec::new());
        for (&label, &rank) in labels.iter().zip(ranks) {
            if training.is_cold(label) {
                cold.push(rank);
            } else {
                warm.push(rank);
            }
        }
        Self {
            in_set: metrics_from_ranks(&warm),
            cold: metrics_from_ranks(&cold),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use recformer_data::{ItemMeta, Split};

    use super::*;

    /// 6 items; training uses 0, 1, 2; item 3 is only a val item, 4 only a test item, 5 unused.
    fn dataset() -> FinetuneDataset {
        let items: Vec<ItemMeta> = (0..6)
            .map(|i| ItemMeta::new(format!("item {i}"), "brand", "cat"))
            .collect();
        FinetuneDataset {
            item_keys: (0..6).map(|i| format!("I{i}")).collect(),
            items,
            train: BTreeMap::from([(0, vec![0, 1]), (1, vec![1, 2]), (2, vec![2, 0])]),
            val: BTreeMap::from([(0, 2), (1, 3), (2, 1)]),
            test: BTreeMap::from([(0, 3), (1, 4), (2, 0)]),
            user_keys: (0..3).map(|u| format!("U{u}")).collect(),
        }
    }

    #[test]
    fn only_training_sequences_make_an_item_in_set() {
        let ds = dataset();
        let t = TrainingItems::of_dataset(&ds);
        assert_eq!(t.len(), 3);
        assert!(t.contains(0) && t.contains(1) && t.contains(2));
        // item 3 is a validation item (part of the test input) but never in train: cold
        assert!(t.is_cold(3) && t.is_cold(4) && t.is_cold(5));
        assert!(t.is_cold(99));
        assert!(TrainingItems::from_sequences(3, &[]).is_empty());
    }

    #[test]
    fn groups_partition_the_users_and_average_within_each_group() {
        let ds = dataset();
        let t = TrainingItems::of_dataset(&ds);
        let test = ds.eval_examples(Split::Test); // labels 3, 4, 0
        let labels: Vec<usize> = test.iter().map(|e| e.label).collect();
        assert_eq!(labels, vec![3, 4, 0]);
        let ranks = [0, 9, 1];
        let g = ColdStartMetrics::from_ranks(&labels, &ranks, &t);
        assert_eq!((g.in_set.users, g.cold.users), (1, 2));
        assert!((g.in_set.ndcg_10 - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert!((g.cold.ndcg_10 - (1.0 + 1.0 / 11f64.log2()) / 2.0).abs() < 1e-12);
        assert!((g.cold.mrr - (1.0 + 0.1) / 2.0).abs() < 1e-12);
        // users-weighted mean of the groups = the whole
        let whole = metrics_from_ranks(&ranks);
        let mix = (g.in_set.ndcg_10 * 1.0 + g.cold.ndcg_10 * 2.0) / 3.0;
        assert!((mix - whole.ndcg_10).abs() < 1e-12);

        // val split: labels 2, 3, 1 -> user 1 cold
        let val: Vec<usize> = ds
            .eval_examples(Split::Val)
            .iter()
            .map(|e| e.label)
            .collect();
        let g = ColdStartMetrics::from_ranks(&val, &[0, 0, 0], &t);
        assert_eq!((g.in_set.users, g.cold.users), (2, 1));
        // an empty group is all zeros
        let g = ColdStartMetrics::from_ranks(&[0], &[5], &t);
        assert_eq!(g.cold, Metrics::default());
        let v = serde_json::to_value(g).unwrap();
        assert!(v["in_set"]["NDCG@10"].is_number() && v["cold"]["users"] == 0);
    }
}
