//! What the two one-pass local attentions ([`super::band::attention`] for the sliding window,
//! [`super::dense_attention`] for short sequences) share: when they run, their operands as f32
//! views, one parallel task per batch-and-head pair with a scratch buffer of its thread, and
//! the output as a tensor (token-major: see [`per_pair`]).

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::{Array4, ArrayD, ArrayViewD, ArrayViewMut3, Axis};
use pulp::x86::V4;
use rayon::prelude::*;

use super::filled::filled;
use super::sgemm::{with_buffer, KC};
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
/// - query, key, value: `[batch, heads, seq_len, head_dim]`; `run`'s output too (any strides)
/// - masks: `[batch, seq_len]`
pub(crate) fn attention<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    fits: bool,
    run: impl FnOnce(V4, [&ArrayViewD<'_, f32>; 3]) -> ArrayD<f32>,
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
            let out = run(simd, [&q, &k, &v]);
            debug_assert_eq!(out.shape(), q.shape());
            return Ok(tensor::<B, 4, _>(f32::wrap(out.into_shared())));
        }
    }
    Err((query, key, value))
}

/// The output of every batch-and-head pair of a `[b, h, l, d]` view, one pair per parallel
/// task: `pair(i, scratch, rows)` writes pair `i`'s `l` output rows of `d` floats each (zeros
/// on entry), with `scratch_len` floats of its thread's buffer.
///
/// The output is token-major: `[b, h, l, d]` viewed over a `[b, l, h, d]` standard-layout
/// array (a pair's rows are `h·d` floats apart), so that the merge of heads after the
/// attention (`swap_dims(1, 2)` and a reshape to `[b, l, h·d]`) copies nothing; that copy was
/// ~1.3% of a MiniLM forward (docs/performance.md).
pub(crate) fn per_pair(
    view: &ArrayViewD<'_, f32>,
    scratch_len: usize,
    pair: impl Fn(usize, &mut [f32], &mut [&mut [f32]]) + Sync,
) -> ArrayD<f32> {
    let [b, h, l, d]: [usize; 4] = view.shape().try_into().expect("a 4-d view");
    // A task per sequence zeroes its `[l, h, d]` rows while they are in its core's cache
    // ([`filled`]), then runs its heads.
    let out = filled(view.len(), (l * h * d).max(1), |sequence, part| {
        let mut tokens = ArrayViewMut3::from_shape((l, h, d), part).expect("a sequence's elements");
        tokens
            .axis_iter_mut(Axis(1))
            .into_par_iter()
            // Every pair its own job, as in `filled`.
            .with_max_len(1)
            .enumerate()
            .for_each(|(head, mut rows)| {
                let mut rows: Vec<&mut [f32]> = rows
                    .axis_iter_mut(Axis(0))
                    .map(|row| row.into_slice().expect("unit stride along head_dim"))
                    .collect();
                with_buffer(&SCRATCH, scratch_len, |scratch| {
                    pair(sequence * h + head, scratch, &mut rows);
                });
            });
    });
    Array4::from_shape_vec((b, l, h, d), out)
        .expect("the view's element count")
        .permuted_axes([0, 2, 1, 3])
        .into_dyn()
}

thread_local! {
    /// A task's packed keys, scores and probabilities.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
