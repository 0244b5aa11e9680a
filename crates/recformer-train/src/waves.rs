//! Independent inference batches side by side on the CPU backends.
//!
//! The CPU backends (NdArray, Flex) thread their matrix products but run most elementwise
//! kernels (GELU's erf, softmax, layer norm, layout copies) on one thread: a profile of item
//! encoding showed 1.1 of 2 cores busy (`docs/performance.md`). Item encoding and evaluation
//! batches do not depend on each other, so they run a *wave* at a time, one batch per rayon
//! thread (`RAYON_NUM_THREADS=1` turns this off), and their results are consumed in order on the
//! calling thread: every vector, rank and metric is the same as one batch at a time. A GPU
//! backend takes one batch at a time.

use std::any::TypeId;

use burn::tensor::backend::Backend;
use rayon::prelude::*;

/// How many batches an inference loop runs at once on backend `B`.
pub fn concurrent_batches<B: Backend>() -> usize {
    if is_cpu_backend::<B>() {
        rayon::current_num_threads().max(1)
    } else {
        1
    }
}

fn is_cpu_backend<B: Backend>() -> bool {
    let b = TypeId::of::<B>();
    #[cfg(feature = "ndarray")]
    if b == TypeId::of::<recformer_model::backend::NdArray>() {
        return true;
    }
    #[cfg(feature = "flex")]
    if b == TypeId::of::<recformer_model::backend::Flex>() {
        return true;
    }
    let _ = b;
    false
}

/// Runs `work` on every batch, [`concurrent_batches`] at a time, and hands each result to
/// `then` on this thread in batch order; stops at the first error `then` returns.
pub(crate) fn in_waves<B, T, R, E>(
    batches: &[T],
    work: impl Fn(&T) -> R + Sync,
    mut then: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E>
where
    B: Backend,
    T: Sync,
    R: Send,
{
    for wave in batches.chunks(concurrent_batches::<B>()) {
        let results: Vec<R> = if wave.len() == 1 {
            vec![work(&wave[0])]
        } else {
            wave.par_iter().map(&work).collect()
        };
        for (batch, result) in wave.iter().zip(results) {
            then(batch, result)?;
        }
    }
    Ok(())
}
