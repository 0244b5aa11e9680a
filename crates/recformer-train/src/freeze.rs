//! Freezing the word embeddings (`fix_word_embedding` of the official scripts).

use burn::tensor::backend::Backend;
use recformer_model::{RecformerForPretraining, RecformerModel};

/// Marks the word-embedding matrix as not requiring gradients, so the optimizer leaves it as is.
pub(crate) fn freeze_word_embeddings<B: Backend>(
    mut model: RecformerModel<B>,
) -> RecformerModel<B> {
    model.embeddings.word_embeddings.weight = model
        .embeddings
        .word_embeddings
        .weight
        .set_require_grad(false);
    model
}

/// [`freeze_word_embeddings`] on the encoder of a pretraining model.
pub(crate) fn freeze_pretraining_word_embeddings<B: Backend>(
    mut model: RecformerForPretraining<B>,
) -> RecformerForPretraining<B> {
    model.longformer = freeze_word_embeddings(model.longformer);
    model
}
