//! `LongformerLMHead` and `RecformerForPretraining` (encoder + untied MLM head).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{backend::Backend, Tensor};

use crate::activation::gelu;
use crate::config::RecformerConfig;
use crate::init::{linear, materialize};
use crate::input::{RecformerInput, RecformerModelOutput};
use crate::layer_norm::layer_norm;
use crate::model::RecformerModel;
use crate::precision::full;
use crate::reshape::reshape;
use crate::token_linear::rows;

/// MLM head: `Decoder(LayerNorm(GELU(Dense(h)))) + bias` (HF keys `lm_head.*`). The decoder weight is
/// **not** tied to the word embeddings in RecFormer; `lm_head.bias` is the decoder bias.
#[derive(Module, Debug)]
pub struct LongformerLMHead<B: Backend> {
    /// `dense` hidden -> hidden.
    pub dense: Linear<B>,
    /// `layer_norm` (lower-case in HF here).
    pub layer_norm: LayerNorm<B>,
    /// The LayerNorm's epsilon (`config.layer_norm_eps`; burn-nn keeps its own private).
    pub layer_norm_eps: f64,
    /// `decoder` hidden -> vocab, without its own bias.
    pub decoder: Linear<B>,
    /// `bias` `[vocab]` (= `decoder.bias` in PyTorch).
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> LongformerLMHead<B> {
    /// Random init (normal weights, zero biases), materialised.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        materialize(Self::init_lazy(config, device))
    }

    /// Random init with lazy parameters.
    pub(crate) fn init_lazy(config: &RecformerConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        Self {
            dense: linear(h, h, true, std, device),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            decoder: linear(h, config.vocab_size, false, std, device),
            bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = layer_norm(
            &self.layer_norm,
            self.layer_norm_eps,
            gelu(rows(&self.dense, hidden)),
        );
        // f32 logits whatever the activations' type (`crate::precision`).
        full(rows(&self.decoder, x)) + self.bias.val().unsqueeze()
    }

    /// # Shapes
    /// - hidden: `[batch, seq_len, hidden]` -> logits `[batch, seq_len, vocab]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        // One 2-D matmul over all tokens (see `token_linear`).
        let [batch, seq_len, h] = hidden.dims();
        let logits = self.logits(reshape(hidden, [batch * seq_len, h]));
        let vocab = logits.dims()[1];
        reshape(logits, [batch, seq_len, vocab])
    }

    /// Logits only for selected rows (e.g. the masked positions gathered by the caller), which
    /// avoids the `[batch, seq_len, vocab]` tensor.
    ///
    /// # Shapes
    /// - hidden_rows: `[n, hidden]` -> `[n, vocab]`
    pub fn forward_rows(&self, hidden_rows: Tensor<B, 2>) -> Tensor<B, 2> {
        self.logits(hidden_rows)
    }
}

/// `RecformerForPretraining`: `longformer` encoder + `lm_head` (keys `longformer.*`, `lm_head.*`).
/// The losses live in `recformer-train`.
#[derive(Module, Debug)]
pub struct RecformerForPretraining<B: Backend> {
    /// The encoder.
    pub longformer: RecformerModel<B>,
    /// The MLM head.
    pub lm_head: LongformerLMHead<B>,
}

impl<B: Backend> RecformerForPretraining<B> {
    /// Random init (see [`RecformerConfig::init_pretraining`]).
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        Self {
            longformer: RecformerModel::init(config, device),
            lm_head: LongformerLMHead::init(config, device),
        }
    }

    /// Encoder forward (see [`RecformerModel::forward`]).
    pub fn forward(&self, input: RecformerInput<B>) -> RecformerModelOutput<B> {
        self.longformer.forward(input)
    }
}
