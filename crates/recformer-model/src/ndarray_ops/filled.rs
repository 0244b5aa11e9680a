//! Output arrays zeroed part by part by the tasks that then write them.
//!
//! Safe Rust has no uninitialised buffers, so every output array was zeroed before a kernel
//! overwrote it: [`super::zeroed`] fills the whole array in a pass of its own, and for arrays
//! larger than the caches the kernel then fetches every line from memory a second time (the
//! zeroing was ~9% of a mini forward's samples, docs/performance.md). Here each parallel task
//! zeroes its own part right before writing it, while the part is in its core's cache. The
//! elements are still zeroed first, so nothing uninitialised is ever read, whatever the kernel
//! writes.
//!
//! One of the model crate's two `unsafe` modules (the other is [`super::prefetch`]): two
//! lines, each with its argument.

use core::mem::MaybeUninit;

use rayon::prelude::*;

/// `len` elements written by parallel tasks: task `i` gets elements
/// `[i·task, min((i + 1)·task, len))` as zeros, and `fill(i, part)` overwrites them.
///
/// # Panics
/// If `task` is 0 (with `len > 0`), or if `fill` panics (the vector is then dropped empty).
pub(crate) fn filled<E, F>(len: usize, task: usize, fill: F) -> Vec<E>
where
    E: Copy + Default + Send + Sync,
    F: Fn(usize, &mut [E]) + Sync,
{
    filled_with(len, task, fill).0
}

/// [`filled`], also returning what each task returned, in task order.
#[allow(unsafe_code)]
pub(crate) fn filled_with<E, R, F>(len: usize, task: usize, fill: F) -> (Vec<E>, Vec<R>)
where
    E: Copy + Default + Send + Sync,
    R: Send,
    F: Fn(usize, &mut [E]) -> R + Sync,
{
    let mut out: Vec<E> = Vec::with_capacity(len);
    if len == 0 {
        return (out, Vec::new());
    }
    let results = out.spare_capacity_mut()[..len]
        .par_chunks_mut(task)
        // Every task its own job: rayon otherwise runs runs of several tasks as one unit, and
        // a thread that finishes first has nothing to steal while the other works through
        // its run (the end of each GEMM; docs/performance.md).
        .with_max_len(1)
        .enumerate()
        .map(|(i, part)| {
            part.fill(MaybeUninit::new(E::default()));
            // SAFETY: every element of `part` was initialised on the line above, and
            // `MaybeUninit<E>` has the size, alignment and layout of `E` (the cast is
            // `<[MaybeUninit<E>]>::assume_init_mut`, not yet stable).
            let part = unsafe { &mut *(part as *mut [MaybeUninit<E>] as *mut [E]) };
            fill(i, part)
        })
        .collect();
    // SAFETY: the chunks of `par_chunks_mut` cover `[0, len)`, and `collect` returned only
    // after every chunk was initialised (a panic in a task propagates before this line, and the
    // vector is dropped with length 0). `len` is within the capacity reserved above.
    unsafe { out.set_len(len) };
    (out, results)
}

#[cfg(test)]
mod tests {
    use super::{filled, filled_with};

    #[test]
    fn every_part_reaches_its_task_zeroed_and_in_order() {
        for (len, task) in [(0, 3), (1, 4), (10, 3), (4096, 1000), (100_003, 16_384)] {
            let out = filled::<f32, _>(len, task, |i, part| {
                assert!(
                    part.iter().all(|&x| x == 0.0),
                    "zeroed before the task writes"
                );
                assert!(
                    part.len() == task || (i + 1) * task >= len,
                    "only the last is short"
                );
                for (k, x) in part.iter_mut().enumerate() {
                    *x = (i * task + k) as f32;
                }
            });
            assert_eq!(out.len(), len);
            assert!(
                out.iter().enumerate().all(|(k, &x)| x == k as f32),
                "{len} / {task}"
            );
        }
    }

    #[test]
    fn elements_a_task_leaves_alone_stay_zero() {
        let out = filled::<f64, _>(1000, 64, |i, part| {
            if i % 2 == 0 {
                part.fill(1.0);
            }
        });
        let ones = out.iter().filter(|&&x| x == 1.0).count();
        assert_eq!(ones, 8 * 64);
        assert!(out.iter().all(|&x| x == 0.0 || x == 1.0));
    }

    #[test]
    fn results_come_back_in_task_order() {
        let (out, sums) = filled_with::<u64, _, _>(10_000, 999, |i, part| {
            part.iter_mut().for_each(|x| *x = i as u64);
            part.len() * i
        });
        assert_eq!(sums.len(), 11);
        assert!(sums
            .iter()
            .enumerate()
            .all(|(i, &s)| s == i * if i < 10 { 999 } else { 10 }));
        assert_eq!(out[9_990], 10);
    }
}
