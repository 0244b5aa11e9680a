//! `LongformerSelfAttention` (HF transformers 4.28 `modeling_longformer.py`), with two
//! interchangeable implementations of the local part: a dense masked oracle ([`mod@reference`]) and a
//! banded chunked path ([`sliding`]); the first token's global attention through the `*_global`
//! weights ([`global`]).

mod dense;
pub mod global;
pub mod reference;
pub mod sliding;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{backend::Backend, bf16, f16, Bool, DType, Element, Int, Tensor};

use crate::config::RecformerConfig;
use crate::init::linear;
use crate::reshape::reshape;
use crate::token_linear::per_token;

/// Score given to disallowed (query, key) pairs before the softmax in f32: HF uses
/// `torch.finfo(torch.float32).min` for the window and global masks
/// (`modeling_longformer.py`, `_sliding_chunks_query_key_matmul` callers and
/// `_compute_global_attn_output_from_hidden`). Finite, so a fully masked row never yields NaN.
pub const MASK_VALUE: f32 = f32::MIN;

/// The mask score for a float type: [`MASK_VALUE`] for f32 (and f64), the most negative
/// *finite* value of f16 / bf16 for half precision, where `f32::MIN` would round to -inf and a
/// fully masked row would give NaN (`torch.finfo(dtype).min`, as HF does per dtype).
pub fn mask_value_for(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => f16::MIN.to_f32(),
        DType::BF16 => bf16::MIN.to_f32(),
        _ => MASK_VALUE,
    }
}

/// [`mask_value_for`] the float type of backend `B`.
pub fn mask_value<B: Backend>() -> f32 {
    mask_value_for(<B::FloatElem as Element>::dtype())
}

/// Which implementation of the local attention to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionImpl {
    /// Dense `[L, L]` masked attention (the oracle).
    Dense,
    /// Banded chunked attention; falls back to [`Dense`](Self::Dense) when tokens other than the
    /// first one are global or the length is not a multiple of the one-sided window.
    Sliding,
    /// [`Sliding`](Self::Sliding) when it applies and the sequence is longer than `6·w`
    /// (where the band is at least 2x smaller than the dense matrix), else dense. Default.
    #[default]
    Auto,
}

impl AttentionImpl {
    /// Whether the banded path runs for a layer with this one-sided window.
    pub fn use_sliding<B: Backend>(
        self,
        masks: &AttentionMasks<B>,
        seq_len: usize,
        one_sided_window: usize,
    ) -> bool {
        masks.global_only_first && self.may_use_sliding(seq_len, one_sided_window)
    }

    /// Whether the banded path can run on `seq_len` tokens with this one-sided window, given
    /// that only token 0 is global: the length is a window multiple and, for `Auto`, long
    /// enough for the band to pay off.
    pub fn may_use_sliding(self, seq_len: usize, one_sided_window: usize) -> bool {
        let possible = sliding::supports(seq_len, one_sided_window);
        match self {
            AttentionImpl::Dense => false,
            AttentionImpl::Sliding => possible,
            AttentionImpl::Auto => possible && seq_len > 6 * one_sided_window,
        }
    }
}

/// Per-token attention masks shared by all layers (HF `is_index_masked`, `is_index_global_attn`),
/// plus two host-side facts computed once per forward.
#[derive(Debug, Clone)]
pub struct AttentionMasks<B: Backend> {
    /// `[batch, seq_len]`, true at padding tokens.
    pub is_index_masked: Tensor<B, 2, Bool>,
    /// `[batch, seq_len]`, true at (non-padding) global tokens.
    pub is_index_global_attn: Tensor<B, 2, Bool>,
    /// Whether any token of the batch is global.
    pub any_global: bool,
    /// Whether no token other than index 0 is global (RecFormer's pattern, or no global at all).
    pub global_only_first: bool,
    /// Whether token 0 is global in every row and no other token is (RecFormer's pattern): the
    /// first token's output then depends only on its global attention
    /// ([`LongformerSelfAttention::forward_first`]).
    pub only_first_global_everywhere: bool,
}

impl<B: Backend> AttentionMasks<B> {
    /// From the 0/1 `attention_mask` and `global_attention_mask` (HF `_merge_to_attention_mask`:
    /// a padding token is never global). Reads the global mask to the host once.
    ///
    /// # Shapes
    /// - both inputs: `[batch, seq_len]`
    pub fn new(
        attention_mask: Tensor<B, 2, Int>,
        global_attention_mask: Tensor<B, 2, Int>,
    ) -> Self {
        let is_index_masked = attention_mask.equal_elem(0);
        let is_index_global_attn = global_attention_mask
            .not_equal_elem(0)
            .bool_and(is_index_masked.clone().bool_not());
        let [batch, seq_len] = is_index_global_attn.dims();
        let host = is_index_global_attn.clone().into_data();
        let flags: Vec<bool> = host.iter::<bool>().collect();
        let any_global = flags.iter().any(|&g| g);
        let global_only_first = (0..batch).all(|b| (1..seq_len).all(|i| !flags[b * seq_len + i]));
        let only_first_global_everywhere =
            global_only_first && seq_len > 0 && (0..batch).all(|b| flags[b * seq_len]);
        Self {
            is_index_masked,
            is_index_global_attn,
            any_global,
            global_only_first,
            only_first_global_everywhere,
        }
    }
}

/// Longformer self-attention: local `query/key/value` and global `query_global/key_global/value_global`
/// projections (HF keys `attention.self.*`).
#[derive(Module, Debug)]
pub struct LongformerSelfAttention<B: Backend> {
    /// Local query projection.
    pub query: Linear<B>,
    /// Local key projection.
    pub key: Linear<B>,
    /// Local value projection.
    pub value: Linear<B>,
    /// Global query projection.
    pub query_global: Linear<B>,
    /// Global key projection.
    pub key_global: Linear<B>,
    /// Global value projection.
    pub value_global: Linear<B>,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// Size of each head.
    pub head_dim: usize,
    /// One-sided window (`attention_window[layer] / 2`).
    pub one_sided_attn_window_size: usize,
}

impl<B: Backend> LongformerSelfAttention<B> {
    /// Random init for layer `layer_id`.
    pub fn init(config: &RecformerConfig, layer_id: usize, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        Self {
            query: linear(h, h, true, std, device),
            key: linear(h, h, true, std, device),
            value: linear(h, h, true, std, device),
            query_global: linear(h, h, true, std, device),
            key_global: linear(h, h, true, std, device),
            value_global: linear(h, h, true, std, device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim(),
            one_sided_attn_window_size: config.attention_window[layer_id] / 2,
        }
    }

    /// `[b, l, hidden] -> [b, heads, l, head_dim]`.
    fn split_heads(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, l, _] = x.dims();
        reshape(x, [b, l, self.num_heads, self.head_dim]).swap_dims(1, 2)
    }

    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` (seq_len already padded to the window multiple)
    /// - output: `[batch, seq_len, hidden]`; padding rows are zero
    pub fn forward(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        attention_impl: AttentionImpl,
    ) -> Tensor<B, 3> {
        let [b, l, hidden] = hidden_states.dims();
        let scale = (self.head_dim as f64).sqrt();
        let w = self.one_sided_attn_window_size;

        // Scaled before the head split, while the tensor is contiguous (the same values; after the
        // split, a CPU backend divides through a strided view).
        let query = self.split_heads(per_token(&self.query, hidden_states.clone()) / scale);
        let key = self.split_heads(per_token(&self.key, hidden_states.clone()));
        let value = self.split_heads(per_token(&self.value, hidden_states.clone()));

        let sliding = attention_impl.use_sliding(masks, l, w);
        let local = if sliding {
            sliding::local_attention_sliding(
                query,
                key,
                value,
                masks,
                w,
                &self.dropout,
                sliding::BandProduct::for_backend::<B>(),
            )
        } else {
            dense::local_attention_dense(query, key, value, masks, w, &self.dropout)
        };

        let output = if !masks.any_global {
            local
        } else if masks.global_only_first {
            // Only token 0 can be global (RecFormer's pattern): one global query row, on both
            // paths, with `key_global` / `value_global` applied through their weights. The
            // other rows' global outputs would be discarded by the merge below.
            let global_out = self.first_token_global(hidden_states, masks);
            let first_is_global = masks
                .is_index_global_attn
                .clone()
                .slice([0..b, 0..1])
                .reshape([b, 1, 1, 1])
                .expand([b, self.num_heads, 1, self.head_dim]);
            let row0 = local
                .clone()
                .slice([0..b, 0..self.num_heads, 0..1, 0..self.head_dim])
                .mask_where(first_is_global, global_out);
            local.slice_assign([0..b, 0..self.num_heads, 0..1, 0..self.head_dim], row0)
        } else {
            let global_key = self.split_heads(per_token(&self.key_global, hidden_states.clone()));
            let global_value =
                self.split_heads(per_token(&self.value_global, hidden_states.clone()));
            let heads = [b, self.num_heads, l, self.head_dim];
            let global_query =
                self.split_heads(per_token(&self.query_global, hidden_states) / scale);
            let global_out = reference::global_attention(
                global_query,
                global_key,
                global_value,
                masks,
                &self.dropout,
            );
            let is_global = masks
                .is_index_global_attn
                .clone()
                .reshape([b, 1, l, 1])
                .expand(heads);
            local.mask_where(is_global, global_out)
        };
        reshape(output.swap_dims(1, 2), [b, l, hidden])
    }

    /// Token 0's output alone, for when it is global in every row and no other token is
    /// ([`AttentionMasks::only_first_global_everywhere`]): its global attention, exactly what
    /// [`forward`](Self::forward) puts in row 0. The local projections do not run.
    ///
    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]`
    /// - output: `[batch, 1, hidden]`
    pub fn forward_first(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
    ) -> Tensor<B, 3> {
        let [b, _, hidden] = hidden_states.dims();
        let out = self.first_token_global(hidden_states, masks);
        reshape(out.swap_dims(1, 2), [b, 1, hidden])
    }

    /// Global attention of token 0 ([`global::first_token_global_attention`]).
    ///
    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` -> `[batch, heads, 1, head_dim]`
    fn first_token_global(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
    ) -> Tensor<B, 4> {
        let [b, _, hidden] = hidden_states.dims();
        let scale = (self.head_dim as f64).sqrt();
        let first = hidden_states.clone().slice([0..b, 0..1, 0..hidden]);
        let first_query = self.split_heads(per_token(&self.query_global, first) / scale);
        global::first_token_global_attention(
            first_query,
            hidden_states,
            &self.key_global,
            &self.value_global,
            masks,
            &self.dropout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_values_stay_finite_in_their_own_float_type() {
        assert_eq!(mask_value_for(DType::F32), f32::MIN);
        assert_eq!(mask_value::<crate::backend::Cpu>(), f32::MIN);
        // f32::MIN rounds to -inf in both half types; the per-type values do not.
        assert!(f16::from_f32(f32::MIN).is_infinite());
        assert!(bf16::from_f32(f32::MIN).is_infinite());
        for dtype in [DType::F16, DType::BF16] {
            let v = mask_value_for(dtype);
            let (h, b) = (f16::from_f32(v), bf16::from_f32(v));
            let in_own = if dtype == DType::F16 {
                h.is_finite()
            } else {
                b.is_finite()
            };
            assert!(in_own && v < -6.0e4, "{dtype:?}: {v}");
        }
    }
}
