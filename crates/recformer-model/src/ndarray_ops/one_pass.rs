//! What the two one-pass local attentions ([`super::band::attention`] for the sliding window,
//! [`super::dense_attention`] for short sequences) share: when they run, their operands as f32
//! views, one parallel task per batch-and-head pair with a scratch buffer of its thread, and
//! the output as a tensor.

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::ArrayViewD;
use pulp::x86::V4;

use super::filled::filled;
use super::sgemm::KC;
use super::{primitive, tensor, Float, Kind};
use crate::attention::AttentionMasks;

/// The query, key and value tensors, handed back.
pub(crate) type Operands<B> = (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>);

/// `run` on the f32 views of the query, key and value, its `[batch, heads, seq_len, head_dim]`
/// output as a tensor, when `fits` (the op's own shape rules), the three have one shape whose
/// `head_dim` is a multiple of 16 up to 256, `masks` are `[batch, seq_len]`, the three are f32
/// on NdArray without autodiff, the CPU has AVX-512 and the query and value rows are
/// contiguous. `Err` hands the operands back otherwise.
///
/// # Shapes
/// - query, key, value: `[batch, heads, seq_len, head_dim]`; `run`'s output as many floats
/// - masks: `[batch, seq_len]`
pub(crate) fn attention<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    fits: bool,
    run: impl FnOnce(V4, [&ArrayViewD<'_, f32>; 3]) -> Vec<f32>,
) -> Result<Tensor<B, 4>, Operands<B>> {
    let [b, _, l, d] = query.dims();
    let fits = fits
        && key.dims() == query.dims()
        && value.dims() == query.dims()
        && masks.is_index_masked.dims() == [b, l]
        // Each score is one block of matrixmultiply's sum.
        && (1..=KC).contains(&d)
        && d.is_multiple_of(16)
        && [&query, &key, &value]
            .iter()
            .all(|t| t.dtype() == DType::F32)
        && Kind::of::<B>() == Some(Kind::Plain(DType::F32));
    if let (true, Some(simd)) = (fits, V4::try_new()) {
        let (q, k, v): (NdArrayTensor, NdArrayTensor, NdArrayTensor) = (
            primitive(query.clone()),
            primitive(key.clone()),
            primitive(value.clone()),
        );
        let (q, k, v) = (
            f32::view(&q).expect("f32"),
            f32::view(&k).expect("f32"),
            f32::view(&v).expect("f32"),
        );
        if q.strides()[3] == 1 && v.strides()[3] == 1 {
            let shape = q.shape().to_vec();
            let out = run(simd, [&q, &k, &v]);
            let array = ndarray::ArcArray::from_shape_vec(ndarray::IxDyn(&shape), out)
                .expect("the shape's element count");
            return Ok(tensor::<B, 4, _>(f32::wrap(array)));
        }
    }
    Err((query, key, value))
}

/// The output of every batch-and-head pair of a `[b, h, l, d]` view, one pair per parallel
/// task: `pair(i, scratch, out)` writes pair `i`'s `[l, d]` rows into `out` (zeros on entry),
/// with `scratch_len` floats of its thread's buffer.
pub(crate) fn per_pair(
    view: &ArrayViewD<'_, f32>,
    scratch_len: usize,
    pair: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    let (l, d) = (view.shape()[2], view.shape()[3]);
    filled(view.len(), (l * d).max(1), |i, out| {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            if scratch.len() < scratch_len {
                scratch.resize(scratch_len, 0.0);
            }
            pair(i, &mut scratch[..scratch_len], out);
        });
    })
}

thread_local! {
    /// A task's packed keys, scores and probabilities.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
