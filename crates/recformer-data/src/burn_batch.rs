//! Conversion of padded batches to Burn tensors (feature `burn`).
//!
//! Burn's `Batcher` trait lives in `burn::data`, behind burn's `dataset` feature (crate
//! `burn-dataset`), which this workspace does not build; [`RecformerBatcher::batch`] has the
//! trait's signature so that an `impl Batcher` is a one-line wrapper where that feature exists.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::batch::{pad_batch, PaddedBatch};
use crate::config::RecformerDataConfig;
use crate::mlm::MlmMasked;
use crate::sequence::EncodedSequence;

/// A padded batch on a device. Every tensor is `[batch_size, seq_len]`.
#[derive(Debug, Clone)]
pub struct BatchTensors<B: Backend> {
    /// Token ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// Token types (0 first token, 1 key, 2 value, 3 padding).
    pub token_type_ids: Tensor<B, 2, Int>,
    /// Item positions (0 first token, 1..=50 items, 50 padding).
    pub item_position_ids: Tensor<B, 2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<B, 2, Int>,
    /// 1 at index 0 of each row.
    pub global_attention_mask: Tensor<B, 2, Int>,
}

/// MLM inputs and labels on a device, `[batch_size, seq_len]`.
#[derive(Debug, Clone)]
pub struct MlmTensors<B: Backend> {
    /// Masked input ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// Original ids at predicted positions, -100 elsewhere.
    pub labels: Tensor<B, 2, Int>,
}

fn int_tensor<B: Backend, E: Copy + Into<i64>>(
    values: &[E],
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = values.iter().map(|&v| v.into()).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

impl PaddedBatch {
    /// Copies the batch to `device` as int tensors of shape `[batch_size, seq_len]`.
    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> BatchTensors<B> {
        let shape = [self.batch_size, self.seq_len];
        BatchTensors {
            input_ids: int_tensor(&self.input_ids, shape, device),
            token_type_ids: int_tensor(&self.token_type_ids, shape, device),
            item_position_ids: int_tensor(&self.item_position_ids, shape, device),
            attention_mask: int_tensor(&self.attention_mask, shape, device),
            global_attention_mask: int_tensor(&self.global_attention_mask, shape, device),
        }
    }
}

impl MlmMasked {
    /// Copies the masked ids and labels to `device` with the shape of the batch they came from.
    ///
    /// # Panics
    /// If `batch_size * seq_len` differs from the number of values.
    pub fn to_tensors<B: Backend>(
        &self,
        batch_size: usize,
        seq_len: usize,
        device: &B::Device,
    ) -> MlmTensors<B> {
        assert_eq!(self.input_ids.len(), batch_size * seq_len, "shape mismatch");
        let shape = [batch_size, seq_len];
        MlmTensors {
            input_ids: int_tensor(&self.input_ids, shape, device),
            labels: int_tensor(&self.labels, shape, device),
        }
    }
}

/// Pads encoded sequences and moves them to a device (the official collator's padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecformerBatcher {
    /// The pad token id of the tokenizer.
    pub pad_token_id: u32,
    /// Limits (for the padding item position).
    pub config: RecformerDataConfig,
}

impl RecformerBatcher {
    /// A batcher for `pad_token_id` and `config`.
    pub fn new(pad_token_id: u32, config: RecformerDataConfig) -> Self {
        Self {
            pad_token_id,
            config,
        }
    }

    /// Pads `items` to the longest one and copies them to `device` (signature of
    /// `burn::data::dataloader::batcher::Batcher::batch`).
    pub fn batch<B: Backend>(
        &self,
        items: Vec<EncodedSequence>,
        device: &B::Device,
    ) -> BatchTensors<B> {
        pad_batch(&items, self.pad_token_id, &self.config).to_tensors(device)
    }
}
