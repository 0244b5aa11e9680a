//! `LongformerEncoder`: a stack of [`LongformerLayer`]s.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use crate::attention::{AttentionImpl, AttentionMasks};
use crate::config::RecformerConfig;
use crate::layer::LongformerLayer;

/// The encoder (HF keys `encoder.layer.{i}.*`; the field keeps HF's singular `layer`).
#[derive(Module, Debug)]
pub struct LongformerEncoder<B: Backend> {
    /// The layers, in order.
    pub layer: Vec<LongformerLayer<B>>,
}

impl<B: Backend> LongformerEncoder<B> {
    /// Random init of `num_hidden_layers` layers.
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        Self {
            layer: (0..config.num_hidden_layers)
                .map(|i| LongformerLayer::init(config, i, device))
                .collect(),
        }
    }

    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` (padded to the window multiple) -> same
    pub fn forward(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        attention_impl: AttentionImpl,
    ) -> Tensor<B, 3> {
        self.layer.iter().fold(hidden_states, |hidden, layer| {
            layer.forward(hidden, masks, attention_impl)
        })
    }

    /// The first token's row of [`forward`](Self::forward) alone, when it is global in every row
    /// and no other token is ([`AttentionMasks::only_first_global_everywhere`]): every layer but
    /// the last runs in full, the last only for token 0 ([`LongformerLayer::forward_first`]).
    ///
    /// # Shapes
    /// - hidden_states: `[batch, seq_len, hidden]` (padded to the window multiple)
    /// - output: `[batch, 1, hidden]`
    pub fn forward_first(
        &self,
        hidden_states: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        attention_impl: AttentionImpl,
    ) -> Tensor<B, 3> {
        match self.layer.split_last() {
            Some((last, layers)) => {
                let hidden = layers.iter().fold(hidden_states, |hidden, layer| {
                    layer.forward(hidden, masks, attention_impl)
                });
                last.forward_first(hidden, masks)
            }
            None => {
                let [b, _, hidden] = hidden_states.dims();
                hidden_states.slice([0..b, 0..1, 0..hidden])
            }
        }
    }
}
