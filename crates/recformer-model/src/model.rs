//! `RecformerModel` (`recformer/models.py :: RecformerModel`): embeddings + Longformer encoder + CLS pooler.

use burn::module::{Module, ParamId};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::attention::{AttentionImpl, AttentionMasks};
use crate::config::RecformerConfig;
use crate::embeddings::RecformerEmbeddings;
use crate::encoder::LongformerEncoder;
use crate::init::materialize;
use crate::input::{RecformerInput, RecformerModelOutput};
use crate::precision::{cast_to, full, Precision};

/// How the sequence vector is taken from the last hidden states (`pooler_type`). No parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// `cls`: the first token's vector (the official choice).
    #[default]
    Cls,
    /// `avg`: the mean over real tokens (`attention_mask == 1`). Unlike the official `avg`, which
    /// breaks on window padding, the mean is taken after the padding is removed.
    Avg,
}

impl Pooler {
    /// The pooler of a `pooler_type` string (`cls` or `avg`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cls" => Some(Pooler::Cls),
            "avg" => Some(Pooler::Avg),
            _ => None,
        }
    }

    /// Pools `[batch, seq_len, hidden]` hidden states into `[batch, hidden]`.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq_len, hidden]`, attention_mask: `[batch, seq_len]` (1 = real token)
    /// - output: `[batch, hidden]`
    pub fn forward<B: Backend>(
        self,
        hidden: Tensor<B, 3>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let [batch, _, hidden_size] = hidden.dims();
        match self {
            Pooler::Cls => hidden.narrow(1, 0, 1).reshape([batch, hidden_size]),
            Pooler::Avg => {
                let mask = attention_mask.float().unsqueeze_dim::<3>(2);
                let count = mask.clone().sum_dim(1).clamp_min(1.0);
                (hidden * mask)
                    .sum_dim(1)
                    .div(count)
                    .reshape([batch, hidden_size])
            }
        }
    }
}

/// The RecFormer encoder. Its pooler ([`Pooler`]) has no parameters.
#[derive(Module, Debug)]
pub struct RecformerModel<B: Backend> {
    /// `embeddings.*`.
    pub embeddings: RecformerEmbeddings<B>,
    /// `encoder.*`.
    pub encoder: LongformerEncoder<B>,
    /// Padding token id (window padding value for `input_ids` and `item_position_ids`).
    pub pad_token_id: usize,
    /// `max(attention_window)`: sequences are padded to a multiple of it, as in HF.
    pub max_attention_window: usize,
    /// Local attention implementation (default [`AttentionImpl::Auto`]).
    pub attention_impl: AttentionImpl,
    /// Pooling of the sequence vector (`pooler_type`).
    pub pooler: Pooler,
    /// Float type of the products and activations (default [`Precision::F32`]; see
    /// [`crate::precision`]). Outputs are f32 whatever it is.
    pub precision: Precision,
}

impl<B: Backend> RecformerModel<B> {
    /// Random init (see [`RecformerConfig::init_model`]). All parameters are materialised, so
    /// clones share the same values.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        materialize(Self::init_lazy(config, device))
    }

    /// Random init with Burn's lazy parameters (cheap when the values are overwritten by a loader).
    pub(crate) fn init_lazy(config: &RecformerConfig, device: &B::Device) -> Self {
        Self {
            embeddings: RecformerEmbeddings::init(config, device),
            encoder: LongformerEncoder::init(config, device),
            pad_token_id: config.pad_token_id,
            max_attention_window: config.max_attention_window(),
            attention_impl: AttentionImpl::default(),
            pooler: Pooler::from_name(&config.pooler_type).unwrap_or_default(),
            precision: Precision::default(),
        }
    }

    /// Whether some layer may run the banded attention on `padded_len` tokens.
    fn banded_on(&self, padded_len: usize) -> bool {
        self.encoder.layer.iter().any(|layer| {
            let w = layer.attention.self_attn.one_sided_attn_window_size;
            self.attention_impl.may_use_sliding(padded_len, w)
        })
    }

    /// Selects the local attention implementation.
    pub fn with_attention_impl(mut self, attention_impl: AttentionImpl) -> Self {
        self.attention_impl = attention_impl;
        self
    }

    /// Selects the float type of the products and activations ([`crate::precision`]): bf16 or
    /// f16 on a backend with half-precision tensors, parameters and outputs staying f32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Selects the pooler.
    pub fn with_pooler(mut self, pooler: Pooler) -> Self {
        self.pooler = pooler;
        self
    }

    /// Encodes a batch (`RecformerModel.forward`): merge masks, pad to the window multiple
    /// (ids and item positions with `pad_token_id`, token types 0, masks 0), embeddings, encoder,
    /// strip the padding, pooling ([`Pooler`]).
    ///
    /// HF always pads to the window multiple; here only when a layer will run the banded path,
    /// the one that needs it. The dense path masks padding keys, so on the unpadded tokens it
    /// gives the same result with less work: a Scientific item (~40 tokens) is no longer
    /// computed at 64.
    ///
    /// When only the sequence vectors are needed, [`forward_pooled`](Self::forward_pooled)
    /// computes less.
    ///
    /// # Shapes
    /// - input: `[batch, seq_len]` each
    /// - last_hidden_state: `[batch, seq_len, hidden]`, pooler_output: `[batch, hidden]`
    pub fn forward(&self, input: RecformerInput<B>) -> RecformerModelOutput<B> {
        let [batch, seq_len] = input.dims();
        let real_tokens = input.attention_mask.clone();
        let (embedding_output, masks) = self.embed(input);
        let hidden = self
            .encoder
            .forward(embedding_output, &masks, self.attention_impl);
        let hidden = full(hidden);
        let [_, padded_len, hidden_size] = hidden.dims();
        let last_hidden_state = if padded_len > seq_len {
            hidden.slice([0..batch, 0..seq_len, 0..hidden_size])
        } else {
            hidden
        };
        let pooler_output = self.pooler.forward(last_hidden_state.clone(), real_tokens);
        RecformerModelOutput {
            last_hidden_state,
            pooler_output,
        }
    }

    /// The sequence vectors alone: `forward(input).pooler_output`, computed with less work where
    /// the pooler reads only the first token ([`Pooler::Cls`]) and that token is the only global
    /// one in every row (RecFormer's inputs): the last layer then runs for token 0 only
    /// ([`LongformerEncoder::forward_first`]), about `1 / num_hidden_layers` of the encoder's
    /// work less. Otherwise the full forward. The same function; the last layer's products are
    /// computed on fewer rows, so results agree to rounding.
    ///
    /// In training, the last layer's local `query` / `key` / `value` then get no gradient (in the
    /// full forward theirs is exactly zero): with weight decay, an optimizer would not decay
    /// them ([`params_outside_pooled`](Self::params_outside_pooled)).
    ///
    /// # Shapes
    /// - input: `[batch, seq_len]` each
    /// - output: `[batch, hidden]`
    pub fn forward_pooled(&self, input: RecformerInput<B>) -> Tensor<B, 2> {
        if self.pooler != Pooler::Cls {
            return self.forward(input).pooler_output;
        }
        let [batch, _] = input.dims();
        let (embedding_output, masks) = self.embed(input);
        let first = if masks.only_first_global_everywhere {
            self.encoder
                .forward_first(embedding_output, &masks, self.attention_impl)
        } else {
            let hidden = self
                .encoder
                .forward(embedding_output, &masks, self.attention_impl);
            let hidden_size = hidden.dims()[2];
            hidden.slice([0..batch, 0..1, 0..hidden_size])
        };
        let hidden_size = first.dims()[2];
        full(first.reshape([batch, hidden_size]))
    }

    /// The ids of the parameters that [`forward_pooled`](Self::forward_pooled) does not use and
    /// the full forward uses only for rows the pooler discards: the last layer's local `query`,
    /// `key` and `value` (weights and biases). Their gradient through the full forward is
    /// exactly zero; an optimizer that should treat them as PyTorch does (weight decay on a zero
    /// gradient) registers zeros for them.
    pub fn params_outside_pooled(&self) -> Vec<ParamId> {
        let Some(last) = self.encoder.layer.last() else {
            return Vec::new();
        };
        let attn = &last.attention.self_attn;
        [&attn.query, &attn.key, &attn.value]
            .into_iter()
            .flat_map(|linear| {
                std::iter::once(linear.weight.id).chain(linear.bias.as_ref().map(|b| b.id))
            })
            .collect()
    }

    /// Window padding, masks and embeddings: the encoder's input.
    ///
    /// # Shapes
    /// - input: `[batch, seq_len]` each
    /// - output: `[batch, padded_len, hidden]`, where `padded_len` is `seq_len` or, when a layer
    ///   runs the banded path, its next window multiple
    fn embed(&self, input: RecformerInput<B>) -> (Tensor<B, 3>, AttentionMasks<B>) {
        let [batch, seq_len] = input.dims();
        let window = self.max_attention_window;
        let padded_len = seq_len.next_multiple_of(window);
        let padding_len = if self.banded_on(padded_len) {
            padded_len - seq_len
        } else {
            0
        };
        let device = input.input_ids.device();
        let pad = |t: Tensor<B, 2, Int>, value: i64| {
            if padding_len == 0 {
                t
            } else {
                let fill = Tensor::<B, 2, Int>::full([batch, padding_len], value, &device);
                Tensor::cat(vec![t, fill], 1)
            }
        };
        let pad_id = self.pad_token_id as i64;
        let input_ids = pad(input.input_ids, pad_id);
        let item_position_ids = pad(input.item_position_ids, pad_id);
        let token_type_ids = pad(input.token_type_ids, 0);
        let attention_mask = pad(input.attention_mask, 0);
        let global_attention_mask = pad(input.global_attention_mask, 0);

        let masks = AttentionMasks::new(attention_mask, global_attention_mask);
        let embedding_output =
            self.embeddings
                .forward(input_ids, token_type_ids, item_position_ids);
        let embedding_output = match self.precision {
            // The parameters' own type (f32; f64 in tests): no cast.
            Precision::F32 => embedding_output,
            half => cast_to(embedding_output, half.dtype()),
        };
        (embedding_output, masks)
    }
}
