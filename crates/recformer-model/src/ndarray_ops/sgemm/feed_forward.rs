//! The feed-forward block's two products, `gelu(x · W₁ + b₁) · W₂ + b₂`, task by task and
//! [`KC`] columns of the intermediate activation at a time: each task computes those columns
//! for its rows into a buffer of its thread and adds their part of the down-projection's sum
//! to its rows of the output at once, while they are in its core's L2 cache.
//!
//! Two products one after the other write the whole intermediate activation (`[tokens, d_ff]`,
//! the largest array of a layer: 16 MiB for a mini batch of 8 × 512) to memory, zero it first,
//! and read it back to pack it; the down-projection's blocks of the sum (`d_ff / KC` of them)
//! are parallel sections of their own, each ending when its slowest task does. Here the
//! intermediate activation never leaves the task, and the layer's feed-forward is one parallel
//! section.
//!
//! Every element is the two products' own arithmetic: an intermediate column's blocks of the
//! up-projection's sum in order, then its bias and GELU; the output's blocks of the
//! down-projection's sum in order (a block of [`KC`] intermediate columns each), the first
//! stored and each later one added, then its bias. The output is [`super::product`] with
//! [`Then::Gelu`] followed by [`super::product`], bit for bit.
//!
//! [`Then::Gelu`]: super::Then::Gelu

use std::cell::RefCell;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use pulp::x86::V4;
use pulp::Simd;
use rayon::prelude::*;

use super::avx512::{padded, task_rows, with_buffer, Block, Target, Tile, PACKED_A, PACKED_B};
use super::{pack_a, pack_b, Dense, KC, MR, NR};
use crate::ndarray_ops::filled::{written, RowWriter};

/// A weight packed as [`pack_b`] packs it, every block of the sum one after the other.
struct Packed<'a> {
    panels: &'a [f32],
    /// Floats of one block's panels per index of the sum (`⌈n / NR⌉ · NR`).
    width: usize,
    k: usize,
}

impl Packed<'_> {
    /// Block `p0 ..`'s depth and panels.
    fn block(&self, p0: usize) -> (usize, &[f32]) {
        let kc = KC.min(self.k - p0);
        (kc, &self.panels[p0 * self.width..(p0 + kc) * self.width])
    }
}

thread_local! {
    /// A task's rows of x, packed for every block of the up-projection's sum.
    static PACKED_X: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A task's rows of one block of intermediate columns.
    static INTERMEDIATE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `gelu(x · up.weight + up.bias) · down.weight + down.bias`.
///
/// # Shapes
/// - x: `[m, d_model]`, up: `[d_model, d_ff]`, down: `[d_ff, d_out]`; output `[m, d_out]`
pub(super) fn feed_forward(
    simd: V4,
    x: &ArrayView2<'_, f32>,
    up: &Dense<'_>,
    down: &Dense<'_>,
) -> Array2<f32> {
    let ((m, d_model), d_ff, n) = (x.dim(), up.weight.ncols(), down.weight.ncols());
    let (b1, b2) = (
        padded(up.bias.as_ref(), d_ff),
        padded(down.bias.as_ref(), n),
    );
    let up_len = d_ff.div_ceil(NR) * NR * d_model;
    let down_len = n.div_ceil(NR) * NR * d_ff;
    with_buffer(&PACKED_B, up_len + down_len, |packed| {
        let (w1, w2) = packed.split_at_mut(up_len);
        let (w1, w2) = (pack(&up.weight, w1), pack(&down.weight, w2));
        let mc = task_rows(m);
        let data = written(m, n, mc, |task, out| {
            let rows = out.rows();
            let x = x.slice(s![task * mc..task * mc + rows, ..]);
            let task = Task {
                simd,
                rows,
                w1: &w1,
                b1: b1.as_deref(),
                w2: &w2,
                b2: b2.as_deref(),
            };
            let padded_rows = rows.div_ceil(MR) * MR;
            with_buffer(&PACKED_X, padded_rows * d_model, |packed_x| {
                for p0 in (0..d_model).step_by(KC) {
                    let kc = KC.min(d_model - p0);
                    let dst = &mut packed_x[p0 * padded_rows..(p0 + kc) * padded_rows];
                    pack_a(&x, 0..rows, p0, kc, dst);
                }
                with_buffer(&INTERMEDIATE, rows * KC.min(d_ff), |hidden| {
                    for c0 in (0..d_ff).step_by(KC) {
                        task.columns(c0, packed_x, hidden, out);
                    }
                });
            });
        });
        Array2::from_shape_vec((m, n), data).expect("m · n elements")
    })
}

/// One task's operands.
struct Task<'a> {
    simd: V4,
    /// The task's rows.
    rows: usize,
    w1: &'a Packed<'a>,
    /// `b₁` padded to whole panels.
    b1: Option<&'a [f32]>,
    w2: &'a Packed<'a>,
    /// `b₂` padded to whole panels.
    b2: Option<&'a [f32]>,
}

impl Task<'_> {
    /// Intermediate columns `c0 .. c0 + KC` (the last block may be narrower): computed into
    /// `hidden` from the task's packed rows of x, then block `c0` of the down-projection's sum
    /// into `out` (the first block writes its rows, the later ones add to them).
    fn columns(
        &self,
        c0: usize,
        packed_x: &[f32],
        hidden: &mut [f32],
        out: &mut RowWriter<'_, f32>,
    ) {
        let (rows, simd) = (self.rows, self.simd);
        let width = KC.min(self.w2.k - c0);
        let mut hidden = ArrayViewMut2::from_shape((rows, width), &mut hidden[..rows * width])
            .expect("rows · width");
        let padded_rows = rows.div_ceil(MR) * MR;
        // The up-projection for these columns: its panels `c0 / NR ..` of every block.
        let panels = c0 / NR..(c0 + width).div_ceil(NR);
        for p0 in (0..self.w1.k).step_by(KC) {
            let (kc, packed_b) = self.w1.block(p0);
            let last = p0 + kc == self.w1.k;
            let block = Block {
                p0,
                first: p0 == 0,
                bias: self.b1.filter(|_| last).map(|b| &b[c0..]),
                gelu: last,
                kc,
            };
            Simd::vectorize(
                simd,
                Tile {
                    simd,
                    block: &block,
                    packed_a: &packed_x[p0 * padded_rows..(p0 + kc) * padded_rows],
                    packed_b: &packed_b[panels.start * NR * kc..panels.end * NR * kc],
                    c: Target::Rows(hidden.view_mut()),
                },
            );
        }
        // The down-projection's block `c0`.
        let (kc, packed_b) = self.w2.block(c0);
        let block = Block {
            p0: c0,
            first: c0 == 0,
            bias: self.b2.filter(|_| c0 + kc == self.w2.k),
            gelu: false,
            kc,
        };
        with_buffer(&PACKED_A, padded_rows * kc, |packed_a| {
            pack_a(&hidden.view(), 0..rows, 0, kc, packed_a);
            let n = out.width();
            let c = if block.first {
                Target::New(out)
            } else {
                let done = out.finished().expect("the first block wrote every row");
                Target::Rows(ArrayViewMut2::from_shape((rows, n), done).expect("whole rows"))
            };
            Simd::vectorize(
                simd,
                Tile {
                    simd,
                    block: &block,
                    packed_a,
                    packed_b,
                    c,
                },
            );
        });
    }
}

/// `weight` packed into `out`, block after block, panels in parallel.
fn pack<'p>(weight: &ArrayView2<'_, f32>, out: &'p mut [f32]) -> Packed<'p> {
    let (k, n) = weight.dim();
    let width = n.div_ceil(NR) * NR;
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        out[p0 * width..(p0 + kc) * width]
            .par_chunks_mut(NR * kc)
            .enumerate()
            .for_each(|(panel, out)| pack_b(weight, p0, kc, panel, out));
    }
    Packed {
        panels: out,
        width,
        k,
    }
}
