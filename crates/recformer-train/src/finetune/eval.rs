//! Item encoding and split evaluation with the data of a finetuning run.

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use recformer_data::{EvalExample, Split};
use recformer_model::RecformerModel;

use super::FinetuneData;
use crate::encode::encode_all_items;
use crate::error::Result;
use crate::evaluate::{evaluate, EvalOptions, Evaluation};
use crate::progress::Progress;

/// Encodes the item matrix with the current weights (no autodiff).
pub fn encode_items_with<B: AutodiffBackend>(
    model: &RecformerModel<B>,
    data: &FinetuneData<'_>,
    batch_size: usize,
    device: &B::Device,
    progress: &dyn Progress,
) -> Tensor<B::InnerBackend, 2> {
    encode_all_items(
        &model.valid(),
        data.item_tokens,
        &data.builder(),
        batch_size,
        device,
        progress,
    )
}

/// Evaluates `split` with a given item matrix.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_split<B: Backend>(
    model: &RecformerModel<B>,
    items: &Tensor<B, 2>,
    data: &FinetuneData<'_>,
    split: Split,
    options: &EvalOptions,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let examples: Vec<EvalExample> = data.dataset.eval_examples(split);
    evaluate(
        model,
        items,
        data.item_tokens,
        &examples,
        &data.builder(),
        options,
        device,
        progress,
    )
}
