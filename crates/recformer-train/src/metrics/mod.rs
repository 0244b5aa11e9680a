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

impl<'a> RankingCase<'a> {
    /// The cases of a split's evaluation examples, in order.
    pub fn of_examples(examples: &'a [recformer_data::EvalExample]) -> Vec<Self> {
        examples
            .iter()
            .map(|e| RankingCase {
                history: &e.history,
                label: e.label,
            })
            .collect()
    }
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
mod tests;
