//! Model input and output structs.

use burn::tensor::{backend::Backend, Int, Tensor};

/// The five per-token id tensors of a RecFormer batch (right-padded; see spec §2).
///
/// # Shapes
/// All tensors are `[batch_size, seq_len]`.
#[derive(Debug, Clone)]
pub struct RecformerInput<B: Backend> {
    /// Token ids (`pad_token_id` at padding).
    pub input_ids: Tensor<B, 2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<B, 2, Int>,
    /// Token types (`0=<s>, 1=key, 2=value, 3=<pad>`).
    pub token_type_ids: Tensor<B, 2, Int>,
    /// Item positions (`0` for `<s>`, `1..` per item, padding as produced by the tokenizer).
    pub item_position_ids: Tensor<B, 2, Int>,
    /// 1 for tokens with global attention (RecFormer: only index 0, `<s>`), else 0.
    pub global_attention_mask: Tensor<B, 2, Int>,
}

impl<B: Backend> RecformerInput<B> {
    /// Builds an input from its five tensors.
    pub fn new(
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        item_position_ids: Tensor<B, 2, Int>,
        global_attention_mask: Tensor<B, 2, Int>,
    ) -> Self {
        Self {
            input_ids,
            attention_mask,
            token_type_ids,
            item_position_ids,
            global_attention_mask,
        }
    }

    /// Builds an input with RecFormer's global attention: only the first token (`<s>`) of every row.
    pub fn with_cls_global(
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        item_position_ids: Tensor<B, 2, Int>,
    ) -> Self {
        let [batch, seq_len] = input_ids.dims();
        let device = input_ids.device();
        let global = Tensor::<B, 2, Int>::zeros([batch, seq_len], &device).slice_assign(
            [0..batch, 0..1],
            Tensor::<B, 2, Int>::ones([batch, 1], &device),
        );
        Self::new(
            input_ids,
            attention_mask,
            token_type_ids,
            item_position_ids,
            global,
        )
    }

    /// `[batch_size, seq_len]`.
    pub fn dims(&self) -> [usize; 2] {
        self.input_ids.dims()
    }
}

/// Output of [`RecformerModel::forward`](crate::RecformerModel::forward).
#[derive(Debug, Clone)]
pub struct RecformerModelOutput<B: Backend> {
    /// Last-layer hidden states, `[batch_size, seq_len, hidden_size]` (window padding removed).
    pub last_hidden_state: Tensor<B, 3>,
    /// CLS pooling (last-layer first token, no projection), `[batch_size, hidden_size]`.
    pub pooler_output: Tensor<B, 2>,
}
