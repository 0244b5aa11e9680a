//! One pretraining micro-batch: pair sampling, the four-pass forward with its losses, and dev
//! validation.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recformer_data::{mask_mlm, MlmConfig};
use recformer_model::RecformerForPretraining;

use super::PretrainData;
use crate::config::PretrainConfig;
use crate::inputs::with_input_ids;
use crate::loss::{iic_loss, in_batch_accuracy, mlm_loss_full, mlm_loss_lean};
use crate::progress::Progress;
use crate::seeds::derive_seed;

/// One pretraining pair: history (oldest first) and target item.
pub type PretrainPair = (Vec<usize>, usize);

/// The official `sample_pairs`: target index uniform in `[(n-1)//2, n-1]`. Empty sequences are
/// skipped.
pub fn sample_pair<R: Rng>(seq: &[usize], rng: &mut R) -> Option<PretrainPair> {
    let n = seq.len();
    if n == 0 {
        return None;
    }
    let t = rng.random_range((n - 1) / 2..n);
    Some((seq[..t].to_vec(), seq[t]))
}

/// Samples of one epoch, shuffled.
pub fn sample_pretrain_epoch<R: Rng>(seqs: &[Vec<usize>], rng: &mut R) -> Vec<PretrainPair> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.shuffle(rng);
    order
        .into_iter()
        .filter_map(|i| sample_pair(&seqs[i], rng))
        .collect()
}

/// Losses of one micro-batch.
#[derive(Debug)]
pub struct PretrainLosses<B: Backend> {
    /// Total loss `iic + w (mlm_a + mlm_b)`, shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// IIC loss.
    pub iic: Tensor<B, 1>,
    /// MLM loss on the histories.
    pub mlm_a: Tensor<B, 1>,
    /// MLM loss on the targets.
    pub mlm_b: Tensor<B, 1>,
    /// In-batch accuracy (sequence → target arg-max on the diagonal).
    pub accuracy: f64,
}

/// Forward of one pretraining micro-batch (four encoder passes).
#[allow(clippy::too_many_arguments)]
pub fn pretrain_step<B: Backend, R: Rng>(
    model: &RecformerForPretraining<B>,
    pairs: &[PretrainPair],
    data: &PretrainData<'_>,
    mlm: &MlmConfig,
    temp: f64,
    mlm_weight: f64,
    lean_mlm: bool,
    rng: &mut R,
    device: &B::Device,
) -> PretrainLosses<B> {
    let histories: Vec<&[usize]> = pairs.iter().map(|(h, _)| h.as_slice()).collect();
    let targets: Vec<[usize; 1]> = pairs.iter().map(|(_, t)| [*t]).collect();
    let target_refs: Vec<&[usize]> = targets.iter().map(|t| t.as_slice()).collect();
    let (batch_a, input_a) = data
        .builder()
        .batch::<B>(&histories, data.item_tokens, device);
    let (batch_b, input_b) = data
        .builder()
        .batch::<B>(&target_refs, data.item_tokens, device);
    let masked_a = mask_mlm(&batch_a, data.tokenizer(), mlm, rng);
    let masked_b = mask_mlm(&batch_b, data.tokenizer(), mlm, rng);

    let z1 = model.longformer.forward_pooled(input_a.clone());
    let z2 = model.longformer.forward_pooled(input_b.clone());
    let iic = iic_loss(z1, z2, temp);
    let accuracy = in_batch_accuracy(iic.logits.clone().detach());

    let mut mlm_losses = Vec::with_capacity(2);
    if mlm_weight == 0.0 {
        // IIC-only pretraining: the masked passes would not change the loss; skip them.
        let zero = || Tensor::<B, 1>::zeros([1], device);
        return PretrainLosses {
            loss: iic.loss.clone(),
            iic: iic.loss,
            mlm_a: zero(),
            mlm_b: zero(),
            accuracy,
        };
    }
    for (input, masked) in [(&input_a, &masked_a), (&input_b, &masked_b)] {
        let hidden = model
            .longformer
            .forward(with_input_ids(input, &masked.input_ids, device))
            .last_hidden_state;
        mlm_losses.push(if lean_mlm {
            mlm_loss_lean(&model.lm_head, hidden, &masked.labels)
        } else {
            mlm_loss_full(model.lm_head.forward(hidden), &masked.labels)
        });
    }
    let mlm_b = mlm_losses.pop().expect("two MLM losses");
    let mlm_a = mlm_losses.pop().expect("two MLM losses");
    let loss = iic.loss.clone() + (mlm_a.clone() + mlm_b.clone()).mul_scalar(mlm_weight);
    PretrainLosses {
        loss,
        iic: iic.loss,
        mlm_a,
        mlm_b,
        accuracy,
    }
}

/// Dev in-batch accuracy (mean over validation batches) with a fixed sample of pairs.
pub fn validate_pretrain<B: Backend>(
    model: &RecformerForPretraining<B>,
    data: &PretrainData<'_>,
    config: &PretrainConfig,
    temp: f64,
    device: &B::Device,
    progress: &dyn Progress,
) -> Option<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, &[1]));
    let dev: &[Vec<usize>] = match config.val_max_sequences {
        Some(m) => &data.corpus.dev[..m.min(data.corpus.dev.len())],
        None => &data.corpus.dev,
    };
    let pairs: Vec<PretrainPair> = dev
        .iter()
        .filter_map(|s| sample_pair(s, &mut rng))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    progress.on_start("validate", pairs.len() as u64);
    let mut sum = 0.0;
    let mut batches = 0usize;
    for chunk in pairs.chunks(config.val_batch_size) {
        let histories: Vec<&[usize]> = chunk.iter().map(|(h, _)| h.as_slice()).collect();
        let targets: Vec<[usize; 1]> = chunk.iter().map(|(_, t)| [*t]).collect();
        let target_refs: Vec<&[usize]> = targets.iter().map(|t| t.as_slice()).collect();
        let (_, a) = data
            .builder()
            .batch::<B>(&histories, data.item_tokens, device);
        let (_, b) = data
            .builder()
            .batch::<B>(&target_refs, data.item_tokens, device);
        let z1 = model.longformer.forward_pooled(a);
        let z2 = model.longformer.forward_pooled(b);
        sum += in_batch_accuracy(iic_loss(z1, z2, temp).logits);
        batches += 1;
        progress.on_advance(chunk.len() as u64);
    }
    progress.on_finish();
    Some(sum / batches as f64)
}
