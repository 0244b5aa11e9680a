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

/// Moves a padded batch to `device` as a [`RecformerInput`] (the one conversion from the data
/// crate's batches to model inputs).
pub fn to_input<B: Backend>(batch: &PaddedBatch, device: &B::Device) -> RecformerInput<B> {
    let shape = [batch.batch_size, batch.seq_len];
    let int = |values: &[u32]| int_tensor::<B>(values, shape, device);
    RecformerInput::new(
        int(&batch.input_ids),
        int(&batch.attention_mask),
        int(&batch.token_type_ids),
        int(&batch.item_position_ids),
        int(&batch.global_attention_mask),
    )
}

/// `[rows, cols]` int tensor of row-major `values`.
fn int_tensor<B: Backend>(
    values: &[u32],
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    Tensor::from_data(burn::tensor::TensorData::new(data, shape), device)
}

/// The same input with other token ids (MLM-masked ids), `[batch_size, seq_len]` row-major.
pub fn with_input_ids<B: Backend>(
    input: &RecformerInput<B>,
    ids: &[u32],
    device: &B::Device,
) -> RecformerInput<B> {
    let mut out = input.clone();
    out.input_ids = int_tensor(ids, input.dims(), device);
    out
}
