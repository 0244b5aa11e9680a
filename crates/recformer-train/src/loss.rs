//! Training losses of RecFormer.
//!
//! * MLM: cross-entropy over the vocabulary, mean over positions whose label is not
//!   [`IGNORE_LABEL`] (-100). [`mlm_loss_lean`] (default) runs the LM head only on the masked
//!   positions; [`mlm_loss_full`] computes logits for every position like the official code.
//!   Both give the same value (tested).
//! * IIC (item-item contrastive): `cos(z_seq_i, z_item_j) / temp` over in-batch targets,
//!   cross-entropy with target `i` (sequence → item direction only) plus in-batch accuracy.
//! * Finetune: full-softmax cross-entropy of `cos(seq, every item row) / temp`, computed as a
//!   matmul of L2-normalised vectors and chunked over items (never a `B × N × d` product).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use recformer_model::{cosine_scores, l2_normalize, normalized_scores, LongformerLMHead};

/// Label value ignored by the MLM loss (PyTorch's `ignore_index`): the label the masking in
/// `recformer-data` writes for unmasked positions, one constant for both crates.
pub use recformer_data::IGNORE_LABEL;

/// Cross-entropy (mean) of `logits` against `labels`, ignoring [`IGNORE_LABEL`].
///
/// Returns 0 (with a graph attached) when every label is ignored, where PyTorch would return NaN.
///
/// # Shapes
/// `logits: [N, V]`, `labels.len() == N`, output `[1]`.
///
/// # Panics
/// If `labels.len() != N` or a label is outside `[0, V)` and not ignored.
pub fn cross_entropy_ignore<B: Backend>(logits: Tensor<B, 2>, labels: &[i64]) -> Tensor<B, 1> {
    let [n, v] = logits.dims();
    assert_eq!(labels.len(), n, "one label per logits row");
    let device = logits.device();
    let count = labels.iter().filter(|&&l| l != IGNORE_LABEL).count();
    for &l in labels {
        assert!(
            l == IGNORE_LABEL || (0..v as i64).contains(&l),
            "label {l} outside vocabulary of {v}"
        );
    }
    let idx: Vec<i64> = labels
        .iter()
        .map(|&l| if l == IGNORE_LABEL { 0 } else { l })
        .collect();
    let weight: Vec<f32> = labels
        .iter()
        .map(|&l| if l == IGNORE_LABEL { 0.0 } else { 1.0 })
        .collect();
    let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [n, 1]), &device);
    let weight = Tensor::<B, 2>::from_data(TensorData::new(weight, [n, 1]), &device);
    let picked = log_softmax(logits, 1).gather(1, idx) * weight;
    picked.sum().neg().div_scalar(count.max(1) as f64)
}

/// MLM loss from full logits (the official path).
///
/// # Shapes
/// `logits: [B, L, V]`, `labels.len() == B * L` (row-major), output `[1]`.
pub fn mlm_loss_full<B: Backend>(logits: Tensor<B, 3>, labels: &[i64]) -> Tensor<B, 1> {
    let [b, l, v] = logits.dims();
    cross_entropy_ignore(logits.reshape([b * l, v]), labels)
}

/// MLM loss computing vocabulary logits only at the labelled positions (lean mode, default).
///
/// Gathers the hidden states of positions whose label is not [`IGNORE_LABEL`] and runs
/// `lm_head.forward_rows` on them: same value as [`mlm_loss_full`], far less memory.
///
/// # Shapes
/// `hidden: [B, L, H]`, `labels.len() == B * L` (row-major), output `[1]`.
pub fn mlm_loss_lean<B: Backend>(
    lm_head: &LongformerLMHead<B>,
    hidden: Tensor<B, 3>,
    labels: &[i64],
) -> Tensor<B, 1> {
    let [b, l, h] = hidden.dims();
    assert_eq!(labels.len(), b * l, "one label per token");
    let device = hidden.device();
    let positions: Vec<i64> = labels
        .iter()
        .enumerate()
        .filter(|(_, &lab)| lab != IGNORE_LABEL)
        .map(|(i, _)| i as i64)
        .collect();
    if positions.is_empty() {
        // keep the graph connected so that backward() still works
        return hidden.sum().mul_scalar(0.0);
    }
    let kept: Vec<i64> = positions.iter().map(|&p| labels[p as usize]).collect();
    let idx = Tensor::<B, 1, Int>::from_data(
        TensorData::new(positions.clone(), [positions.len()]),
        &device,
    );
    let rows = hidden.reshape([b * l, h]).select(0, idx);
    cross_entropy_ignore(lm_head.forward_rows(rows), &kept)
}

/// Output of [`iic_loss`].
#[derive(Debug, Clone)]
pub struct IicOutput<B: Backend> {
    /// Cross-entropy on the diagonal, shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// `cos / temp` logits, shape `[B, B]` (row = sequence, column = target item).
    pub logits: Tensor<B, 2>,
}

/// Item-item contrastive loss: `CE(cos(seq_i, item_j) / temp, target = i)`, one direction.
///
/// # Shapes
/// `seq: [B, H]` (pooled history), `item: [B, H]` (pooled target item), output loss `[1]`.
pub fn iic_loss<B: Backend>(seq: Tensor<B, 2>, item: Tensor<B, 2>, temp: f64) -> IicOutput<B> {
    let [b, _] = seq.dims();
    let logits = cosine_scores(seq, l2_normalize(item), temp);
    let labels: Vec<i64> = (0..b as i64).collect();
    let loss = cross_entropy_ignore(logits.clone(), &labels);
    IicOutput { loss, logits }
}

/// Fraction of rows whose arg-max is the diagonal (the official pretraining "accuracy").
///
/// # Shapes
/// `logits: [B, B]`.
pub fn in_batch_accuracy<B: Backend>(logits: Tensor<B, 2>) -> f64 {
    let [b, _] = logits.dims();
    if b == 0 {
        return 0.0;
    }
    let device = logits.device();
    let target = Tensor::<B, 1, Int>::arange(0..b as i64, &device).reshape([b, 1]);
    let hits = logits.argmax(1).equal(target).int().sum().into_scalar();
    hits.elem::<f64>() / b as f64
}

/// Full-softmax finetuning loss against a frozen item matrix.
///
/// `items_normalized` must already be L2-normalised (rows) and carry no gradient; it is processed
/// in chunks of `chunk_size` rows, so memory is `O(B × N)` for the logits and never `O(B × N × H)`.
/// Since `|cos| ≤ 1`, the log-sum-exp uses the constant shift `1 / temp` (exact and stable).
///
/// # Shapes
/// `seq: [B, H]`, `items_normalized: [N, H]`, `labels.len() == B`, output `[1]`.
///
/// # Panics
/// If a label is `>= N` or `labels.len() != B`.
pub fn finetune_loss<B: Backend>(
    seq: Tensor<B, 2>,
    items_normalized: Tensor<B, 2>,
    labels: &[usize],
    temp: f64,
    chunk_size: usize,
) -> Tensor<B, 1> {
    let [b, _] = seq.dims();
    let [n, h] = items_normalized.dims();
    assert_eq!(labels.len(), b, "one label per sequence");
    assert!(
        labels.iter().all(|&l| l < n),
        "label outside the item matrix"
    );
    let device = seq.device();
    let seq_n = l2_normalize(seq);
    let shift = 1.0 / temp;
    let chunk = chunk_size.max(1);
    let mut sum_exp: Option<Tensor<B, 2>> = None;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let items_c = items_normalized.clone().slice([start..end, 0..h]);
        let part = normalized_scores(seq_n.clone(), items_c, temp)
            .sub_scalar(shift)
            .exp()
            .sum_dim(1);
        sum_exp = Some(match sum_exp {
            Some(acc) => acc + part,
            None => part,
        });
        start = end;
    }
    let lse = sum_exp
        .expect("item matrix must not be empty")
        .log()
        .add_scalar(shift); // [B, 1]
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [b]), &device);
    let label_rows = items_normalized.select(0, idx);
    let label_logit = (seq_n * label_rows).sum_dim(1).div_scalar(temp); // [B, 1]
    (lse - label_logit).mean()
}
