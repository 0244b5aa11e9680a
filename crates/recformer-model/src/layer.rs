//! The post-LN Longformer block: `LongformerSelfOutput`, `LongformerAttention`,
//! `LongformerIntermediate`, `LongformerOutput`, `LongformerLayer` (HF transformers 4.28).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{backend::Backend, Tensor};

use crate::attention::{AttentionImpl, AttentionMasks, LongformerSelfAttention};
use crate::config::RecformerConfig;
use crate::dropout::dropout;
use crate::init::linear;
use crate::layer_norm::add_layer_norm;
use crate::token_linear::{per_token, per_token_feed_forward, per_token_gelu};

/// `LN(input + Dropout(Dense(hidden)))` after the attention (HF keys `attention.output.*`).
#[derive(Module, Debug)]
pub struct LongformerSelfOutput<B: Backend> {
    /// `dense` hidden -> hidden.
    pub dense: Linear<B>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// The LayerNorm's epsilon (`config.layer_norm_eps`; burn-nn keeps its own private).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> LongformerSelfOutput<B> {
    /// Random init.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: linear(h, h, true, config.initializer_range, device),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// # Shapes
    /// - hidden_states, input_tensor: `[batch, seq_len, hidden]` -> same
    pub fn forward(&self, hidden_states: Tensor<B, 3>, input_tensor: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = dropout(&self.dropout, per_token(&self.dense, hidden_states));
        add_layer_norm(&self.layer_norm, self.layer_norm_eps, x, input_tensor)
    }
}

/// Self-attention + its output block (HF keys `attention.self.*` -> field `self_attn`, `attention.output.*`).
#[derive(Module, Debug)]
pub struct LongformerAttention<B: Backend> {
    /// HF `self` (a Rust keyword).
    pub self_attn: LongformerSelfAttention<B>,
    /// HF `output`.
    pub output: LongformerSelfOutput<B>,
}

impl<B: Backend> LongformerAttention<B> {
    /// Random init for layer `layer_id`.
    pub fn init(config: &RecformerConfig, layer_id: usize, device: &B::Device) -> Self {
        Self {
            self_attn: LongformerSelfAttention::init(config, layer_id, device),
            output: LongformerSelfOutput::init(config, device),
        }
    }

    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` -> same
    pub fn forward(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        attention_impl: AttentionImpl,
    ) -> Tensor<B, 3> {
        let attn = self
            .self_attn
            .forward(hidden_states.clone(), masks, attention_impl);
        self.output.forward(attn, hidden_states)
    }

    /// Token 0's row of [`forward`](Self::forward) alone, when it is global in every row and no
    /// other token is ([`AttentionMasks::only_first_global_everywhere`]).
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
        let first = hidden_states.clone().slice([0..b, 0..1, 0..hidden]);
        let attn = self.self_attn.forward_first(hidden_states, masks);
        self.output.forward(attn, first)
    }
}

/// `GELU(Dense(x))`, hidden -> intermediate (exact erf GELU).
#[derive(Module, Debug)]
pub struct LongformerIntermediate<B: Backend> {
    /// `dense` hidden -> intermediate.
    pub dense: Linear<B>,
}

impl<B: Backend> LongformerIntermediate<B> {
    /// Random init.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        Self {
            dense: linear(
                config.hidden_size,
                config.intermediate_size,
                true,
                config.initializer_range,
                device,
            ),
        }
    }

    /// # Shapes
    /// - `[batch, seq_len, hidden]` -> `[batch, seq_len, intermediate]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>) -> Tensor<B, 3> {
        per_token_gelu(&self.dense, hidden_states)
    }
}

/// `LN(input + Dropout(Dense(intermediate)))` (HF keys `output.*`).
#[derive(Module, Debug)]
pub struct LongformerOutput<B: Backend> {
    /// `dense` intermediate -> hidden.
    pub dense: Linear<B>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// The LayerNorm's epsilon (`config.layer_norm_eps`; burn-nn keeps its own private).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> LongformerOutput<B> {
    /// Random init.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: linear(
                config.intermediate_size,
                h,
                true,
                config.initializer_range,
                device,
            ),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// # Shapes
    /// - hidden_states: `[batch, seq_len, intermediate]`, input_tensor: `[batch, seq_len, hidden]`
    /// - output: `[batch, seq_len, hidden]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, input_tensor: Tensor<B, 3>) -> Tensor<B, 3> {
        self.residual(per_token(&self.dense, hidden_states), input_tensor)
    }

    /// `LN(input + Dropout(x))`: [`forward`](Self::forward) after its `dense` layer.
    ///
    /// # Shapes
    /// - x, input_tensor: `[batch, seq_len, hidden]` -> same
    pub fn residual(&self, x: Tensor<B, 3>, input_tensor: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = dropout(&self.dropout, x);
        add_layer_norm(&self.layer_norm, self.layer_norm_eps, x, input_tensor)
    }
}

/// One post-LN encoder layer.
#[derive(Module, Debug)]
pub struct LongformerLayer<B: Backend> {
    /// Attention block.
    pub attention: LongformerAttention<B>,
    /// FFN up-projection.
    pub intermediate: LongformerIntermediate<B>,
    /// FFN down-projection + residual + LayerNorm.
    pub output: LongformerOutput<B>,
}

impl<B: Backend> LongformerLayer<B> {
    /// Random init for layer `layer_id`.
    pub fn init(config: &RecformerConfig, layer_id: usize, device: &B::Device) -> Self {
        Self {
            attention: LongformerAttention::init(config, layer_id, device),
            intermediate: LongformerIntermediate::init(config, device),
            output: LongformerOutput::init(config, device),
        }
    }

    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` -> same
    pub fn forward(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        attention_impl: AttentionImpl,
    ) -> Tensor<B, 3> {
        let attention_output = self.attention.forward(hidden_states, masks, attention_impl);
        self.feed_forward(attention_output)
    }

    /// Token 0's row of [`forward`](Self::forward) alone, when it is global in every row and no
    /// other token is ([`AttentionMasks::only_first_global_everywhere`]): every other row of the
    /// layer's output would only feed the rows of later layers, and this one has none. The local
    /// attention does not run and the feed-forward block sees one row per sequence.
    ///
    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]`
    /// - output: `[batch, 1, hidden]`
    pub fn forward_first(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
    ) -> Tensor<B, 3> {
        let attention_output = self.attention.forward_first(hidden_states, masks);
        self.feed_forward(attention_output)
    }

    /// The feed-forward block with its residual and LayerNorm: `self.output.forward(
    /// self.intermediate.forward(x), x)`, with both linear layers in one op where
    /// [`per_token_feed_forward`] has one.
    fn feed_forward(&self, attention_output: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = per_token_feed_forward(
            &self.intermediate.dense,
            &self.output.dense,
            attention_output.clone(),
        );
        self.output.residual(x, attention_output)
    }
}
