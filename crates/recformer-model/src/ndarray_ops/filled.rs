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
//! [`written`] goes one step further for kernels that write every row of their part in order
//! (the GEMM's first block of the sum): nothing is zeroed first, a [`RowWriter`] appends each
//! row's elements and remembers how far each row got, and whatever a task left unwritten is
//! zeroed after it. Zeroing the GEMM's outputs was ~2% of a MiniLM forward (its stores fetch
//! every line of the new array from memory before the kernel writes it again); the kernel's
//! own stores now do that while its multiply-adds run.
//!
//! One of the model crate's three `unsafe` modules (the others are [`super::prefetch`] and the
//! GEMM's AMX path): four lines, each with its argument.

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

/// `rows × width` elements (row-major) written by parallel tasks without zeroing them first:
/// task `i` gets rows `[i·task_rows, min((i + 1)·task_rows, rows))` through a [`RowWriter`],
/// which appends to each row in order; every element a task did not write is zero.
///
/// # Panics
/// If `task_rows` is 0 (with elements to write), or if `fill` panics (the vector is then
/// dropped empty).
#[allow(unsafe_code)]
pub(crate) fn written<E, F>(rows: usize, width: usize, task_rows: usize, fill: F) -> Vec<E>
where
    E: Copy + Default + Send + Sync,
    F: Fn(usize, &mut RowWriter<'_, E>) + Sync,
{
    let len = rows * width;
    let mut out: Vec<E> = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(task_rows * width)
        // Every task its own job (as in `filled_with`).
        .with_max_len(1)
        .enumerate()
        .for_each(|(i, part)| {
            let mut writer = RowWriter {
                written: vec![0; part.len() / width],
                part,
                width,
            };
            fill(i, &mut writer);
            writer.zero_the_rest();
        });
    // SAFETY: the chunks of `par_chunks_mut` cover `[0, len)`, and each task's writer
    // initialised every element of its chunk (`put` the first `written[r]` of each row,
    // `zero_the_rest` the others) before `for_each` returned (a panic propagates before this
    // line, and the vector is dropped with length 0). `len` is within the capacity reserved
    // above.
    unsafe { out.set_len(len) };
    out
}

/// A task's rows of a new `[rows, width]` array ([`written`]): each row is written from its
/// first element on, in order, and only what was written can be read back.
pub(crate) struct RowWriter<'a, E> {
    part: &'a mut [MaybeUninit<E>],
    width: usize,
    /// Elements written so far, per row.
    written: Vec<usize>,
}

impl<E: Copy + Default> RowWriter<'_, E> {
    /// The task's rows.
    pub(crate) fn rows(&self) -> usize {
        self.written.len()
    }

    /// Elements per row.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Appends `values` to row `row`.
    ///
    /// # Panics
    /// If `row` is not one of the task's rows, or the row has fewer than `values.len()`
    /// elements left.
    #[inline]
    pub(crate) fn put(&mut self, row: usize, values: &[E]) {
        let start = self.written[row];
        let end = start + values.len();
        assert!(
            end <= self.width,
            "row {row}: {end} elements of {}",
            self.width
        );
        let at = row * self.width;
        for (dst, &v) in self.part[at + start..at + end].iter_mut().zip(values) {
            dst.write(v);
        }
        self.written[row] = end;
    }

    /// The task's rows as an initialised `[rows, width]` slice once every row is written to
    /// its end (`None` before).
    #[allow(unsafe_code)]
    pub(crate) fn finished(&mut self) -> Option<&mut [E]> {
        if self.written.iter().any(|&w| w != self.width) {
            return None;
        }
        // SAFETY: every row's `width` elements were written by `put` (checked above), and
        // `MaybeUninit<E>` has the layout of `E` (as in `filled_with`).
        Some(unsafe { &mut *(&mut *self.part as *mut [MaybeUninit<E>] as *mut [E]) })
    }

    /// Zeroes every element not yet written.
    fn zero_the_rest(&mut self) {
        for (row, &w) in self.part.chunks_exact_mut(self.width).zip(&self.written) {
            row[w..].fill(MaybeUninit::new(E::default()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{filled, filled_with, written};

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

    #[test]
    fn written_rows_keep_what_was_put_and_zero_the_rest() {
        for (rows, width, task_rows) in [(0, 5, 2), (1, 1, 1), (7, 3, 2), (300, 17, 112)] {
            let out = written::<f32, _>(rows, width, task_rows, |i, w| {
                assert!(w.rows() == task_rows || (i + 1) * task_rows >= rows);
                for r in 0..w.rows() {
                    let row = i * task_rows + r;
                    // Row `row` gets its first `row % (width + 1)` elements, in two pieces.
                    let n = row % (width + 1);
                    let values: Vec<f32> = (0..n).map(|c| (row * width + c) as f32 + 1.0).collect();
                    let (a, b) = values.split_at(n / 2);
                    w.put(r, a);
                    w.put(r, b);
                }
                assert_eq!(
                    w.finished().is_some(),
                    (0..w.rows()).all(|r| (i * task_rows + r) % (width + 1) == width)
                );
            });
            assert_eq!(out.len(), rows * width);
            for (k, &x) in out.iter().enumerate() {
                let (row, c) = (k / width, k % width);
                let expected = if c < row % (width + 1) {
                    k as f32 + 1.0
                } else {
                    0.0
                };
                assert_eq!(x, expected, "{rows} × {width} / {task_rows}: element {k}");
            }
        }
    }

    #[test]
    fn finished_rows_read_back_what_was_put() {
        let out = written::<u32, _>(10, 4, 3, |i, w| {
            for r in 0..w.rows() {
                w.put(r, &[1, 2]);
                w.put(r, &[3, 4]);
            }
            let rows = w.finished().expect("every row written");
            rows.iter_mut().for_each(|x| *x += 10 * i as u32);
        });
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
        assert_eq!(&out[36..], &[31, 32, 33, 34]);
    }

    #[test]
    #[should_panic(expected = "row 0: 5 elements of 4")]
    fn a_row_cannot_overflow() {
        written::<f32, _>(2, 4, 2, |_, w| w.put(0, &[1.0; 5]));
    }
}
