//! Full-ranking evaluation against an item matrix (official `finetune.py :: eval` + `Ranker`).

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use recformer_data::{EvalExample, ItemTokens};
use recformer_model::{cosine_scores, l2_normalize, RecformerModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inputs::InputBuilder;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::progress::Progress;
use crate::waves::in_waves;

/// Evaluation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Users per batch. Default: 16 (also the "batch" of the official batch-mean aggregation).
    pub batch_size: usize,
    /// Cosine temperature (scores are `cos / temp`; only matters for ties). Default: 0.05.
    pub temp: f64,
    /// Remove the user's history items from the ranking (the label is never removed).
    /// Default: false (official).
    pub exclude_history: bool,
    /// Evaluate only the first `n` users (`None`: all). Default: None.
    pub max_users: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            batch_size: 16,
            temp: 0.05,
            exclude_history: false,
            max_users: None,
        }
    }
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean over users (what this crate reports).
    pub metrics: Metrics,
    /// Official aggregation: mean of per-batch means.
    pub batch_mean: Metrics,
    /// 0-based rank of each evaluated user's label, in example order.
    pub ranks: Vec<usize>,
}

/// Ranks of the labels of one batch of already-pooled sequence vectors.
///
/// `items_normalized` must be row-normalised. Scores are `cos / temp` against every item; the
/// rank is the number of items scoring strictly higher than the label (history items masked out
/// when `exclude` is given).
///
/// # Shapes
/// `seq: [B, H]`, `items_normalized: [N, H]`.
pub fn rank_batch<B: Backend>(
    seq: Tensor<B, 2>,
    items_normalized: &Tensor<B, 2>,
    labels: &[usize],
    exclude: Option<&[&[usize]]>,
    temp: f64,
) -> Vec<usize> {
    let [b, _] = seq.dims();
    let [n, _] = items_normalized.dims();
    let device = seq.device();
    let mut scores = cosine_scores(seq, items_normalized.clone(), temp); // [B, N]
    if let Some(histories) = exclude {
        let mut mask = vec![false; b * n];
        for (row, hist) in histories.iter().enumerate() {
            for &item in hist.iter() {
                if item < n && item != labels[row] {
                    mask[row * n + item] = true;
                }
            }
        }
        let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [b, n]), &device);
        scores = scores.mask_fill(mask, f32::NEG_INFINITY);
    }
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
    let target = scores.clone().gather(1, idx); // [B, 1]
    let ranks = scores.greater(target.expand([b, n])).int().sum_dim(1);
    ranks
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .expect("i64 ranks")
        .into_iter()
        .map(|r| r as usize)
        .collect()
}

/// Evaluates `examples` with full ranking against `items` (raw item matrix, row = item).
///
/// Pass a model without autodiff (`model.valid()`).
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: Backend>(
    model: &RecformerModel<B>,
    items: &Tensor<B, 2>,
    item_tokens: &[ItemTokens],
    examples: &[EvalExample],
    builder: &InputBuilder,
    options: &EvalOptions,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let [n, _] = items.dims();
    if n != item_tokens.len() {
        return Err(Error::InvalidData(format!(
            "item matrix has {n} rows but the catalogue has {} items",
            item_tokens.len()
        )));
    }
    rank_examples(items, examples, options, progress, |_, chunk| {
        let histories: Vec<&[usize]> = chunk.iter().map(|e| e.history.as_slice()).collect();
        let (_, input) = builder.batch::<B>(&histories, item_tokens, device);
        Ok(model.forward_pooled(input))
    })
}

/// The text baseline of an item encoder: each user is represented by the item vector of the
/// newest item of their history (`items[history.last()]`), and ranked against all items by
/// cosine exactly as [`evaluate`] ranks (same [`rank_batch`], same options).
///
/// # Errors
/// If a user's history is empty or an item row is out of range.
pub fn evaluate_newest_item<B: Backend>(
    items: &Tensor<B, 2>,
    examples: &[EvalExample],
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let device = items.device();
    rank_examples(items, examples, options, progress, |_, chunk| {
        let rows = chunk
            .iter()
            .map(|e| {
                e.history.last().map(|&r| r as i64).ok_or_else(|| {
                    Error::InvalidData(format!(
                        "user {} has an empty history: no newest item",
                        e.user
                    ))
                })
            })
            .collect::<Result<Vec<i64>>>()?;
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [chunk.len()]), &device);
        Ok(items.clone().select(0, idx))
    })
}

/// Ranks precomputed user vectors (row `i` = `examples[i]`, e.g. from
/// [`encode_histories`](crate::encode::encode_histories)) exactly as [`evaluate`] ranks.
///
/// # Shapes
/// `items: [N, H]`, `users: [examples.len(), H]`.
///
/// # Errors
/// If the row counts disagree or an item row is out of range.
pub fn evaluate_vectors<B: Backend>(
    items: &Tensor<B, 2>,
    users: &Tensor<B, 2>,
    examples: &[EvalExample],
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let [u, _] = users.dims();
    if u != examples.len() {
        return Err(Error::InvalidData(format!(
            "{u} user vectors for {} users",
            examples.len()
        )));
    }
    rank_examples(items, examples, options, progress, |start, chunk| {
        Ok(users.clone().slice(start..start + chunk.len()))
    })
}

/// The one ranking loop: checks the rows, applies `max_users`, asks `user_vectors` for the
/// `[chunk, H]` user vectors of each batch of `batch_size` examples (given the batch's first
/// example index), ranks them with [`rank_batch`] and accumulates the metrics in batch order
/// (on a CPU backend several batches are encoded and ranked at once, [`crate::waves`]).
fn rank_examples<B: Backend>(
    items: &Tensor<B, 2>,
    examples: &[EvalExample],
    options: &EvalOptions,
    progress: &dyn Progress,
    user_vectors: impl Fn(usize, &[EvalExample]) -> Result<Tensor<B, 2>> + Sync,
) -> Result<Evaluation> {
    let [n, _] = items.dims();
    let examples = match options.max_users {
        Some(m) => &examples[..m.min(examples.len())],
        None => examples,
    };
    for ex in examples {
        if ex.label >= n || ex.history.iter().any(|&h| h >= n) {
            return Err(Error::InvalidData(format!(
                "user {} refers to an item row >= {n}",
                ex.user
            )));
        }
    }
    let items_n = l2_normalize(items.clone());
    let mut acc = MetricsAccumulator::new();
    let mut all_ranks = Vec::with_capacity(examples.len());
    progress.on_start("evaluate", examples.len() as u64);
    let size = options.batch_size.max(1);
    let batches: Vec<(usize, &[EvalExample])> = examples
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| (i * size, chunk))
        .collect();
    let rank = |&(start, chunk): &(usize, &[EvalExample])| -> Result<Vec<usize>> {
        let histories: Vec<&[usize]> = chunk.iter().map(|e| e.history.as_slice()).collect();
        let labels: Vec<usize> = chunk.iter().map(|e| e.label).collect();
        let seq = user_vectors(start, chunk)?;
        let exclude = options.exclude_history.then_some(histories.as_slice());
        Ok(rank_batch(seq, &items_n, &labels, exclude, options.temp))
    };
    let done = in_waves::<B, _, _, Error>(&batches, rank, |(_, chunk), ranks| {
        let ranks = ranks?;
        acc.push_batch(&ranks);
        all_ranks.extend_from_slice(&ranks);
        progress.on_advance(chunk.len() as u64);
        Ok(())
    });
    if let Err(e) = done {
        progress.on_finish();
        return Err(e);
    }
    progress.on_finish();
    Ok(Evaluation {
        metrics: acc.mean_over_users(),
        batch_mean: acc.mean_of_batch_means(),
        ranks: all_ranks,
    })
}
