//! `RecformerEmbeddings` (`recformer/models.py :: RecformerEmbeddings`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::config::RecformerConfig;
use crate::dropout::dropout;
use crate::init::normal;
use crate::layer_norm::layer_norm;

/// Word + token position + token type + item position embeddings, LayerNorm, dropout.
///
/// `E = Dropout(LayerNorm(word[id] + pos[position_id] + type[type_id] + itempos[item_position_id]))`,
/// with position ids recomputed from the input ids (RoBERTa convention, see
/// [`create_position_ids_from_input_ids`]).
#[derive(Module, Debug)]
pub struct RecformerEmbeddings<B: Backend> {
    /// `word_embeddings.weight` `[vocab_size, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// `position_embeddings.weight` `[max_position_embeddings, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// `token_type_embeddings.weight` `[token_type_size, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// `item_position_embeddings.weight` `[max_item_embeddings, hidden]`.
    pub item_position_embeddings: Embedding<B>,
    /// `LayerNorm` (HF key `embeddings.LayerNorm.{weight,bias}`).
    pub layer_norm: LayerNorm<B>,
    /// The LayerNorm's epsilon (`config.layer_norm_eps`; burn-nn keeps its own private).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// Padding token id (`padding_idx`).
    pub pad_token_id: usize,
}

/// `create_position_ids_from_input_ids`: `cumsum(id != pad) * (id != pad) + pad`.
///
/// # Shapes
/// - input_ids: `[batch, seq_len]` -> `[batch, seq_len]`
pub fn create_position_ids_from_input_ids<B: Backend>(
    input_ids: Tensor<B, 2, Int>,
    padding_idx: usize,
) -> Tensor<B, 2, Int> {
    let mask = input_ids.not_equal_elem(padding_idx as i64).int();
    mask.clone().cumsum(1) * mask + padding_idx as i64
}

impl<B: Backend> RecformerEmbeddings<B> {
    /// Random init as HF `_init_weights` (normal tables with zeroed padding rows, LayerNorm 1/0).
    pub fn init(config: &RecformerConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        let table = |n: usize, zero_row: Option<usize>| {
            let mut emb = EmbeddingConfig::new(n, h)
                .with_initializer(normal(std))
                .init(device);
            if let Some(row) = zero_row {
                // Lazily, like the draw itself: a loader that overwrites the table never
                // draws it (47 MB for a BERT vocabulary at 384).
                emb.weight = emb.weight.init_mapper(move |weight| {
                    let tracked = weight.is_require_grad();
                    let device = weight.device();
                    let zeroed = weight
                        .detach()
                        .slice_assign([row..row + 1, 0..h], Tensor::zeros([1, h], &device));
                    // (`slice_assign` leaves a graph node even on detached inputs.)
                    zeroed.detach().set_require_grad(tracked)
                });
            }
            emb
        };
        Self {
            word_embeddings: table(config.vocab_size, Some(config.pad_token_id)),
            position_embeddings: table(config.max_position_embeddings, Some(config.pad_token_id)),
            token_type_embeddings: table(config.token_type_size, None),
            item_position_embeddings: table(config.max_item_embeddings, None),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            pad_token_id: config.pad_token_id,
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// # Shapes
    /// - each input: `[batch, seq_len]`
    /// - output: `[batch, seq_len, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        item_position_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let position_ids = create_position_ids_from_input_ids(input_ids.clone(), self.pad_token_id);
        let ids = [input_ids, position_ids, token_type_ids, item_position_ids];
        let embeddings = self.sum(ids);
        dropout(
            &self.dropout,
            layer_norm(&self.layer_norm, self.layer_norm_eps, embeddings),
        )
    }
}

impl<B: Backend> RecformerEmbeddings<B> {
    /// `word[ids[0]] + position[ids[1]] + type[ids[2]] + item_position[ids[3]]`, added in that
    /// order: one parallel pass on NdArray f32 in inference (`ndarray_ops::embedding_sum`, the
    /// same bits), else Burn's lookups and adds.
    ///
    /// # Shapes
    /// - each of ids: `[batch, seq_len]`; output `[batch, seq_len, hidden]`
    fn sum(&self, ids: [Tensor<B, 2, Int>; 4]) -> Tensor<B, 3> {
        #[cfg(feature = "ndarray")]
        let ids = {
            let tables = [
                self.word_embeddings.weight.val(),
                self.position_embeddings.weight.val(),
                self.token_type_embeddings.weight.val(),
                self.item_position_embeddings.weight.val(),
            ];
            match crate::ndarray_ops::embedding_sum::embedding_sum(tables, ids) {
                Ok(sum) => return sum,
                Err(ids) => ids,
            }
        };
        let [input_ids, position_ids, token_type_ids, item_position_ids] = ids;
        self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(position_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.item_position_embeddings.forward(item_position_ids)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;

    use super::*;
    use crate::backend::Cpu;

    /// Rows of a `[n, h]` table.
    fn rows<B: Backend>(table: Tensor<B, 2>) -> Vec<Vec<f32>> {
        let [_, h] = table.dims();
        let values = table.into_data().to_vec::<f32>().unwrap();
        values.chunks(h).map(<[f32]>::to_vec).collect()
    }

    #[test]
    fn padding_rows_are_zero_and_the_tables_stay_trainable_leaves() {
        type A = Autodiff<Cpu>;
        let device = Default::default();
        let config = crate::presets::by_name("tiny").unwrap();
        let emb = RecformerEmbeddings::<A>::init(&config, &device);
        let pad = config.pad_token_id;
        for table in [&emb.word_embeddings, &emb.position_embeddings] {
            let weight = table.weight.val();
            assert!(weight.is_require_grad());
            let rows = rows(weight.clone().inner());
            assert!(rows[pad].iter().all(|v| *v == 0.0));
            // The other rows are drawn (normal, std 0.02).
            for (i, row) in rows.iter().enumerate().filter(|(i, _)| *i != pad) {
                assert!(row.iter().any(|v| *v != 0.0), "row {i} is zero");
            }
            // A leaf: the gradient reaches the table itself.
            let grads = weight.clone().sum().backward();
            let grad = weight.grad(&grads).expect("the table gets a gradient");
            assert!(grad
                .into_data()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .all(|g| *g == 1.0));
        }
        // Tables without a padding row keep every drawn row.
        let rows = rows(emb.token_type_embeddings.weight.val().inner());
        assert!(rows.iter().all(|row| row.iter().any(|v| *v != 0.0)));
    }
}
