//! Ranking metrics exactly as the official `utils.py :: Ranker` computes them.
//!
//! * `rank` = number of items whose score is **strictly greater** than the label's score
//!   (0-based; ties are resolved in the label's favour).
//! * `NDCG@K = 1 / log2(rank + 2)` if `rank < K`, else 0; `Recall@K = [rank < K]`;
//!   `MRR = 1 / (rank + 1)` (not truncated); K ∈ {10, 50}.
//! * [`MetricsAccumulator::mean_over_users`] is the plain mean over users (what this crate reports);
//!   [`MetricsAccumulator::mean_of_batch_means`] reproduces the official aggregation (mean of
//!   per-batch means, which over-weights the last, smaller batch).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Cut-offs reported by the official code (`--metric_ks 10 50`).
pub const METRIC_KS: [usize; 2] = [10, 50];

/// Aggregated ranking metrics of one evaluation.
///
/// Serialises with the keys `NDCG@10`, `Recall@10`, `NDCG@50`, `Recall@50`, `MRR`, `users`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// NDCG@10.
    #[serde(rename = "NDCG@10")]
    pub ndcg_10: f64,
    /// Recall@10 (= HR@10).
    #[serde(rename = "Recall@10")]
    pub recall_10: f64,
    /// NDCG@50.
    #[serde(rename = "NDCG@50")]
    pub ndcg_50: f64,
    /// Recall@50 (= HR@50).
    #[serde(rename = "Recall@50")]
    pub recall_50: f64,
    /// Mean reciprocal rank (untruncated).
    #[serde(rename = "MRR")]
    pub mrr: f64,
    /// Number of evaluated users.
    pub users: usize,
}

/// NDCG@k of one user whose label has 0-based `rank`.
pub fn ndcg_at(rank: usize, k: usize) -> f64 {
    if rank < k {
        1.0 / ((rank + 2) as f64).log2()
    } else {
        0.0
    }
}

/// Recall@k (hit rate) of one user whose label has 0-based `rank`.
pub fn recall_at(rank: usize, k: usize) -> f64 {
    if rank < k {
        1.0
    } else {
        0.0
    }
}

/// Reciprocal rank of one user (untruncated).
pub fn reciprocal_rank(rank: usize) -> f64 {
    1.0 / (rank + 1) as f64
}

/// The official rank: number of items scoring strictly higher than `scores[label]`.
///
/// Items listed in `excluded` (e.g. the user's history) are ignored, except the label itself.
/// NaN scores never count as higher.
///
/// # Panics
/// If `label >= scores.len()`.
pub fn rank_of(scores: &[f32], label: usize, excluded: &[usize]) -> usize {
    let target = scores[label];
    let mut rank = scores.iter().filter(|&&s| s > target).count();
    let mut seen: Vec<usize> = excluded
        .iter()
        .copied()
        .filter(|&i| i != label && i < scores.len())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    rank -= seen.iter().filter(|&&i| scores[i] > target).count();
    rank
}

/// Accumulates per-user ranks, batch by batch.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccumulator {
    sums: [f64; 5],
    users: usize,
    batch_mean_sums: [f64; 5],
    batches: usize,
}

fn per_user(rank: usize) -> [f64; 5] {
    [
        ndcg_at(rank, 10),
        recall_at(rank, 10),
        ndcg_at(rank, 50),
        recall_at(rank, 50),
        reciprocal_rank(rank),
    ]
}

impl MetricsAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the ranks of one evaluation batch (one "batch" for the official batch-mean variant).
    /// Empty batches are ignored.
    pub fn push_batch(&mut self, ranks: &[usize]) {
        if ranks.is_empty() {
            return;
        }
        let mut batch = [0.0; 5];
        for &rank in ranks {
            for (acc, v) in batch.iter_mut().zip(per_user(rank)) {
                *acc += v;
            }
        }
        for ((sum, mean_sum), v) in self
            .sums
            .iter_mut()
            .zip(&mut self.batch_mean_sums)
            .zip(batch)
        {
            *sum += v;
            *mean_sum += v / ranks.len() as f64;
        }
        self.users += ranks.len();
        self.batches += 1;
    }

    /// Number of users pushed so far.
    pub fn users(&self) -> usize {
        self.users
    }

    /// Mean over users (the number this crate reports). All zeros when empty.
    pub fn mean_over_users(&self) -> Metrics {
        Self::build(&self.sums, self.users as f64, self.users)
    }

    /// Official aggregation: unweighted mean of per-batch means. All zeros when empty.
    pub fn mean_of_batch_means(&self) -> Metrics {
        Self::build(&self.batch_mean_sums, self.batches as f64, self.users)
    }

    fn build(sums: &[f64; 5], n: f64, users: usize) -> Metrics {
        let d = if n > 0.0 { n } else { 1.0 };
        Metrics {
            ndcg_10: sums[0] / d,
            recall_10: sums[1] / d,
            ndcg_50: sums[2] / d,
            recall_50: sums[3] / d,
            mrr: sums[4] / d,
            users,
        }
    }
}

/// One evaluation case for the CPU baselines: the history (oldest first) and the label item.
#[derive(Debug, Clone)]
pub struct RankingCase<'a> {
    /// Item rows of the input sequence, oldest first.
    pub history: &'a [usize],
    /// Item row of the label.
    pub label: usize,
}

/// Popularity scores: number of occurrences of each item in the given training sequences.
pub fn popularity_scores<'a>(
    num_items: usize,
    train_sequences: impl IntoIterator<Item = &'a Vec<usize>>,
) -> Vec<f32> {
    let mut counts = vec![0f32; num_items];
    for seq in train_sequences {
        for &item in seq {
            if item < num_items {
                counts[item] += 1.0;
            }
        }
    }
    counts
}

/// Mean-over-users metrics of a list of 0-based ranks (all zeros when empty).
pub fn metrics_from_ranks(ranks: &[usize]) -> Metrics {
    let mut acc = MetricsAccumulator::new();
    acc.push_batch(ranks);
    acc.mean_over_users()
}

/// Official ranks of each case's label under a fixed score vector shared by all users
/// (e.g. popularity), in case order.
///
/// With `exclude_history`, history items are ignored when ranking (the label never is).
pub fn static_score_ranks(
    scores: &[f32],
    cases: &[RankingCase<'_>],
    exclude_history: bool,
) -> Vec<usize> {
    cases
        .iter()
        .map(|c| {
            rank_of(
                scores,
                c.label,
                if exclude_history { c.history } else { &[] },
            )
        })
        .collect()
}

/// Evaluates a fixed score vector shared by all users (e.g. popularity) with the official rank rule.
///
/// With `exclude_history`, history items are ignored when ranking (the label never is).
/// Ties count in the label's favour, as in the official `Ranker`, which makes the popularity
/// baseline optimistic.
pub fn evaluate_static_scores(
    scores: &[f32],
    cases: &[RankingCase<'_>],
    exclude_history: bool,
    batch_size: usize,
) -> Metrics {
    let mut acc = MetricsAccumulator::new();
    for chunk in cases.chunks(batch_size.max(1)) {
        acc.push_batch(&static_score_ranks(scores, chunk, exclude_history));
    }
    acc.mean_over_users()
}

/// Ranks of the random baseline, in case order: each user gets fresh uniform random scores over
/// all items (the same draws as [`evaluate_random`] with the same `rng`).
pub fn random_ranks<R: Rng>(
    num_items: usize,
    cases: &[RankingCase<'_>],
    exclude_history: bool,
    rng: &mut R,
) -> Vec<usize> {
    let mut scores = vec![0f32; num_items];
    cases
        .iter()
        .map(|c| {
            for s in scores.iter_mut() {
                *s = rng.random::<f32>();
            }
            rank_of(
                &scores,
                c.label,
                if exclude_history { c.history } else { &[] },
            )
        })
        .collect()
}

/// Random baseline: each user gets fresh uniform random scores over all items.
pub fn evaluate_random<R: Rng>(
    num_items: usize,
    cases: &[RankingCase<'_>],
    exclude_history: bool,
    rng: &mut R,
) -> Metrics {
    metrics_from_ranks(&random_ranks(num_items, cases, exclude_history, rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_greater_rank_with_ties_favouring_label() {
        // label 2 has score 0.5; items 0 (0.9) and 4 (0.7) are higher, item 3 ties.
        let scores = [0.9, 0.1, 0.5, 0.5, 0.7];
        assert_eq!(rank_of(&scores, 2, &[]), 2);
        assert_eq!(rank_of(&scores, 3, &[]), 2);
        assert_eq!(rank_of(&scores, 0, &[]), 0);
        assert_eq!(rank_of(&scores, 1, &[]), 4);
        // all equal => rank 0 for everybody
        assert_eq!(rank_of(&[1.0; 7], 5, &[]), 0);
    }

    #[test]
    fn excluding_history_removes_only_higher_history_items() {
        let scores = [0.9, 0.1, 0.5, 0.5, 0.7];
        // history {0, 1, 0 again, 2 (= label, never excluded)}
        assert_eq!(rank_of(&scores, 2, &[0, 1, 0, 2]), 1);
        assert_eq!(rank_of(&scores, 2, &[4, 0]), 0);
        assert_eq!(rank_of(&scores, 1, &[3]), 3);
    }

    #[test]
    fn per_user_formulas() {
        assert!((ndcg_at(0, 10) - 1.0).abs() < 1e-12);
        assert!((ndcg_at(1, 10) - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert!((ndcg_at(9, 10) - 1.0 / 11f64.log2()).abs() < 1e-12);
        assert_eq!(ndcg_at(10, 10), 0.0);
        assert!((ndcg_at(10, 50) - 1.0 / 12f64.log2()).abs() < 1e-12);
        assert_eq!(recall_at(9, 10), 1.0);
        assert_eq!(recall_at(10, 10), 0.0);
        assert!((reciprocal_rank(99) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn user_mean_and_batch_mean_of_means() {
        let mut acc = MetricsAccumulator::new();
        acc.push_batch(&[0, 1, 60]); // batch means: recall@10 = 2/3
        acc.push_batch(&[20]); // recall@10 = 0, recall@50 = 1
        let m = acc.mean_over_users();
        assert_eq!(m.users, 4);
        assert!((m.recall_10 - 0.5).abs() < 1e-12);
        assert!((m.recall_50 - 0.75).abs() < 1e-12);
        let mrr = (1.0 + 0.5 + 1.0 / 61.0 + 1.0 / 21.0) / 4.0;
        assert!((m.mrr - mrr).abs() < 1e-12);
        let ndcg10 = (1.0 + 1.0 / 3f64.log2()) / 4.0;
        assert!((m.ndcg_10 - ndcg10).abs() < 1e-12);
        let ndcg50 = (1.0 + 1.0 / 3f64.log2() + 1.0 / 22f64.log2()) / 4.0;
        assert!((m.ndcg_50 - ndcg50).abs() < 1e-12);

        let b = acc.mean_of_batch_means();
        assert_eq!(b.users, 4);
        assert!((b.recall_10 - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((b.recall_50 - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn metrics_serialise_with_official_names() {
        let m = Metrics {
            ndcg_10: 0.5,
            users: 3,
            ..Default::default()
        };
        let v = serde_json::to_value(m).unwrap();
        for key in [
            "NDCG@10",
            "Recall@10",
            "NDCG@50",
            "Recall@50",
            "MRR",
            "users",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let back: Metrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn popularity_baseline_counts_and_ranks() {
        let train = vec![vec![0, 1, 1], vec![1, 2], vec![3]];
        let pop = popularity_scores(5, &train);
        assert_eq!(pop, vec![1.0, 3.0, 1.0, 1.0, 0.0]);
        let h0 = [0usize, 1];
        let cases = [
            RankingCase {
                history: &h0,
                label: 1,
            }, // rank 0
            RankingCase {
                history: &h0,
                label: 2,
            }, // items scoring > 1: only item 1 => rank 1; excluding history => 0
            RankingCase {
                history: &h0,
                label: 4,
            }, // rank 4
        ];
        let m = evaluate_static_scores(&pop, &cases, false, 16);
        assert!((m.mrr - (1.0 + 0.5 + 0.2) / 3.0).abs() < 1e-12);
        let m = evaluate_static_scores(&pop, &cases, true, 16);
        // excluded: label 2 -> rank 0; label 4 -> items {2,3} remain higher -> rank 2
        assert!((m.mrr - (1.0 + 1.0 + 1.0 / 3.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn random_baseline_is_near_chance() {
        use rand::SeedableRng;
        let h: [usize; 0] = [];
        let cases: Vec<RankingCase<'_>> = (0..400)
            .map(|i| RankingCase {
                history: &h,
                label: i % 100,
            })
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let m = evaluate_random(100, &cases, false, &mut rng);
        // expected Recall@10 = 0.1, Recall@50 = 0.5
        assert!((m.recall_10 - 0.1).abs() < 0.05, "{m:?}");
        assert!((m.recall_50 - 0.5).abs() < 0.08, "{m:?}");
    }

    #[test]
    fn metrics_from_ranks_is_the_user_mean_and_rank_helpers_agree() {
        let m = metrics_from_ranks(&[0, 1, 60, 20]);
        let mut acc = MetricsAccumulator::new();
        acc.push_batch(&[0, 1]);
        acc.push_batch(&[60, 20]);
        let a = acc.mean_over_users();
        assert_eq!(m.users, 4);
        for (x, y) in [
            (m.ndcg_10, a.ndcg_10),
            (m.recall_10, a.recall_10),
            (m.ndcg_50, a.ndcg_50),
            (m.recall_50, a.recall_50),
            (m.mrr, a.mrr),
        ] {
            assert!((x - y).abs() < 1e-12);
        }
        assert_eq!(metrics_from_ranks(&[]), Metrics::default());

        let pop = [1.0, 3.0, 1.0, 1.0, 0.0];
        let h0 = [0usize, 1];
        let cases = [
            RankingCase {
                history: &h0,
                label: 2,
            },
            RankingCase {
                history: &h0,
                label: 4,
            },
        ];
        assert_eq!(static_score_ranks(&pop, &cases, false), vec![1, 4]);
        assert_eq!(static_score_ranks(&pop, &cases, true), vec![0, 2]);

        use rand::SeedableRng;
        let r1 = random_ranks(
            50,
            &cases,
            false,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
        );
        let m1 = evaluate_random(
            50,
            &cases,
            false,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(metrics_from_ranks(&r1), m1);
    }
}
