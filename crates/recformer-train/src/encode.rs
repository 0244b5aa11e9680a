//! Item matrix: every catalogue item encoded alone as `[<s>] + item tokens`, pooled `<s>` vector
//! (official `finetune.py :: encode_all_items`), and the same for whole histories (user vectors).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use recformer_data::{EncodedSequence, ItemTokens};
use recformer_model::RecformerModel;

use crate::inputs::{to_input, InputBuilder};
use crate::progress::Progress;
use crate::waves::in_waves;

/// Encodes all items, returning the raw (not normalised) pooled vectors in catalogue-row order.
///
/// Pass a model without autodiff (`model.valid()` of a training model): no graph is recorded and
/// dropout is off. Items are batched by similar length (`batch_size` per batch) to avoid padding;
/// since padding is masked, this does not change any vector.
///
/// # Shapes
/// Output `[tokens.len(), hidden_size]`.
///
/// # Panics
/// If `tokens` is empty or `batch_size == 0`.
pub fn encode_all_items<B: Backend>(
    model: &RecformerModel<B>,
    tokens: &[ItemTokens],
    builder: &InputBuilder,
    batch_size: usize,
    device: &B::Device,
    progress: &dyn Progress,
) -> Tensor<B, 2> {
    assert!(!tokens.is_empty(), "no items to encode");
    let histories: Vec<[usize; 1]> = (0..tokens.len()).map(|i| [i]).collect();
    let refs: Vec<&[usize]> = histories.iter().map(|h| h.as_slice()).collect();
    encode_histories(
        model,
        &refs,
        tokens,
        builder,
        batch_size,
        device,
        progress,
        "encode items",
    )
}

/// Encodes histories (catalogue rows, oldest first) into raw pooled vectors, row `i` =
/// `histories[i]`: the user side of the model, without autodiff (pass `model.valid()`).
///
/// Sequences are batched by similar token length (`batch_size` per batch); padding is masked,
/// so the order does not change any vector. On a CPU backend several batches run at once
/// ([`crate::waves`]); the vectors are the same.
///
/// # Shapes
/// Output `[histories.len(), hidden_size]`.
///
/// # Panics
/// If `histories` is empty or `batch_size == 0`.
#[allow(clippy::too_many_arguments)]
pub fn encode_histories<B: Backend>(
    model: &RecformerModel<B>,
    histories: &[&[usize]],
    tokens: &[ItemTokens],
    builder: &InputBuilder,
    batch_size: usize,
    device: &B::Device,
    progress: &dyn Progress,
    label: &str,
) -> Tensor<B, 2> {
    assert!(!histories.is_empty(), "no sequences to encode");
    assert!(batch_size > 0, "batch_size must be at least 1");
    let seqs: Vec<EncodedSequence> = histories
        .iter()
        .map(|h| builder.sequence(h, tokens))
        .collect();
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| (seqs[i].len(), i));
    progress.on_start(label, seqs.len() as u64);
    let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
    let mut parts: Vec<Tensor<B, 2>> = Vec::with_capacity(batches.len());
    let encode = |chunk: &&[usize]| {
        let batch: Vec<EncodedSequence> = chunk.iter().map(|&i| seqs[i].clone()).collect();
        let input = to_input::<B>(&builder.pad(&batch), device);
        model.forward_pooled(input)
    };
    let done = in_waves::<B, _, _, std::convert::Infallible>(&batches, encode, |chunk, part| {
        parts.push(part);
        progress.on_advance(chunk.len() as u64);
        Ok(())
    });
    let Ok(()) = done;
    let sorted = Tensor::cat(parts, 0);
    // row r of `sorted` is sequence order[r]; invert the permutation
    let mut inverse = vec![0i64; order.len()];
    for (r, &i) in order.iter().enumerate() {
        inverse[i] = r as i64;
    }
    let idx = Tensor::<B, 1, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(inverse, [order.len()]),
        device,
    );
    let out = sorted.select(0, idx);
    progress.on_finish();
    out
}
