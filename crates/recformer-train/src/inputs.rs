//! Turning item-row histories into model inputs.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use recformer_data::{
    build_sequence_from_rows, pad_batch, EncodedSequence, ItemTokens, PaddedBatch,
    RecformerDataConfig, RecformerTokenizer,
};
use recformer_model::RecformerInput;

/// Builds padded model inputs from histories of catalogue rows (the official collator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputBuilder {
    /// First token of every sequence (`<s>` / `[CLS]`).
    pub cls_token_id: u32,
    /// Padding token.
    pub pad_token_id: u32,
    /// Sequence limits.
    pub data_config: RecformerDataConfig,
}

impl InputBuilder {
    /// Takes the special ids from `tokenizer`.
    pub fn new(tokenizer: &RecformerTokenizer, data_config: RecformerDataConfig) -> Self {
        Self {
            cls_token_id: tokenizer.cls_token_id(),
            pad_token_id: tokenizer.pad_token_id(),
            data_config,
        }
    }

    /// The sequence of a history given as catalogue rows, oldest first.
    pub fn sequence(&self, history: &[usize], catalogue: &[ItemTokens]) -> EncodedSequence {
        build_sequence_from_rows(history, catalogue, self.cls_token_id, &self.data_config)
    }

    /// Pads sequences into a batch.
    pub fn pad(&self, seqs: &[EncodedSequence]) -> PaddedBatch {
        pad_batch(seqs, self.pad_token_id, &self.data_config)
    }

    /// Pads the histories and builds the model input.
    pub fn batch<B: Backend>(
        &self,
        histories: &[&[usize]],
        catalogue: &[ItemTokens],
        device: &B::Device,
    ) -> (PaddedBatch, RecformerInput<B>) {
        let seqs: Vec<EncodedSequence> = histories
            .iter()
            .map(|h| self.sequence(h, catalogue))
            .collect();
        let batch = self.pad(&seqs);
        let input = to_input(&batch, device);
        (batch, input)
    }
}

/// Moves a padded batch to `device` as a [`RecformerInput`].
pub fn to_input<B: Backend>(batch: &PaddedBatch, device: &B::Device) -> RecformerInput<B> {
    let t = batch.to_tensors::<B>(device);
    RecformerInput::new(
        t.input_ids,
        t.attention_mask,
        t.token_type_ids,
        t.item_position_ids,
        t.global_attention_mask,
    )
}

/// The same input with other token ids (MLM-masked ids), `[batch_size, seq_len]` row-major.
pub fn with_input_ids<B: Backend>(
    input: &RecformerInput<B>,
    ids: &[u32],
    device: &B::Device,
) -> RecformerInput<B> {
    let [b, l] = input.dims();
    let data: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
    let mut out = input.clone();
    out.input_ids =
        Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(data, [b, l]), device);
    out
}
