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
use rayon::prelude::*;

use super::avx512::{padded, with_buffer, Block, Target, Tile, PACKED_A, PACKED_B};
use super::layout::Layout;
use super::{Dense, NR};
use crate::ndarray_ops::filled::{written, RowWriter};

/// A weight packed as [`Layout::pack_b`] packs it, every block of the sum one after the other.
struct Packed<'a> {
    packed: &'a [f32],
    layout: Layout,
    /// Panels per block (`⌈n / NR⌉`).
    panels: usize,
    k: usize,
}

impl Packed<'_> {
    /// Block `p0 ..`'s depth and panels (every block before it is [`KC`] deep).
    fn block(&self, p0: usize) -> (usize, &[f32]) {
        let whole = self.layout.kc();
        let kc = whole.min(self.k - p0);
        let start = p0 / whole * self.panels * self.layout.panel_len(whole);
        let len = self.panels * self.layout.panel_len(kc);
        (kc, &self.packed[start..start + len])
    }
}

/// Floats of a `[k, n]` weight packed block after block.
fn packed_len(layout: Layout, k: usize, n: usize) -> usize {
    (0..k)
        .step_by(layout.kc())
        .map(|p0| n.div_ceil(NR) * layout.panel_len(layout.kc().min(k - p0)))
        .sum()
}

/// Floats of `rows` rows of a `[rows, k]` operand packed block after block.
fn strips_len(layout: Layout, rows: usize, k: usize) -> usize {
    (0..k)
        .step_by(layout.kc())
        .map(|p| layout.strips_len(rows, layout.kc().min(k - p)))
        .sum()
}

/// Where block `p0 ..` of `rows` packed rows starts (every block before it whole).
fn strips_start(layout: Layout, rows: usize, p0: usize) -> usize {
    p0 / layout.kc() * layout.strips_len(rows, layout.kc())
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
    let layout = match (Layout::of(x, &up.weight), Layout::of(x, &down.weight)) {
        (Layout::Amx, Layout::Amx) => Layout::Amx,
        _ => Layout::Fma,
    };
    let up_len = packed_len(layout, d_model, d_ff);
    let down_len = packed_len(layout, d_ff, n);
    with_buffer(&PACKED_B, up_len + down_len, |packed| {
        let (w1, w2) = packed.split_at_mut(up_len);
        let (w1, w2) = (
            pack(simd, layout, &up.weight, w1),
            pack(simd, layout, &down.weight, w2),
        );
        let mc = layout.task_rows(m);
        let data = written(m, n, mc, |task, out| {
            let rows = out.rows();
            let x = x.slice(s![task * mc..task * mc + rows, ..]);
            let task = Task {
                simd,
                layout,
                rows,
                w1: &w1,
                b1: b1.as_deref(),
                w2: &w2,
                b2: b2.as_deref(),
            };
            let len = strips_len(layout, rows, d_model);
            with_buffer(&PACKED_X, len, |packed_x| {
                let whole = layout.kc();
                for p0 in (0..d_model).step_by(whole) {
                    let kc = whole.min(d_model - p0);
                    let start = strips_start(layout, rows, p0);
                    let dst = &mut packed_x[start..start + layout.strips_len(rows, kc)];
                    layout.pack_a(simd, &x, 0..rows, p0, kc, dst);
                }
                with_buffer(&INTERMEDIATE, rows * whole.min(d_ff), |hidden| {
                    for c0 in (0..d_ff).step_by(whole) {
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
    layout: Layout,
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
        let (rows, simd, layout) = (self.rows, self.simd, self.layout);
        let whole = layout.kc();
        let width = whole.min(self.w2.k - c0);
        let mut hidden = ArrayViewMut2::from_shape((rows, width), &mut hidden[..rows * width])
            .expect("rows · width");
        // The up-projection for these columns: its panels `c0 / NR ..` of every block.
        let panels = c0 / NR..(c0 + width).div_ceil(NR);
        for p0 in (0..self.w1.k).step_by(whole) {
            let (kc, packed_b) = self.w1.block(p0);
            let last = p0 + kc == self.w1.k;
            let block = Block {
                p0,
                first: p0 == 0,
                bias: self.b1.filter(|_| last).map(|b| &b[c0..]),
                gelu: last,
                kc,
            };
            let start = strips_start(layout, rows, p0);
            let panel = layout.panel_len(kc);
            layout.run(Tile {
                simd,
                block: &block,
                packed_a: &packed_x[start..start + layout.strips_len(rows, kc)],
                packed_b: &packed_b[panels.start * panel..panels.end * panel],
                c: Target::Rows(hidden.view_mut()),
            });
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
        with_buffer(&PACKED_A, layout.strips_len(rows, kc), |packed_a| {
            layout.pack_a(simd, &hidden.view(), 0..rows, 0, kc, packed_a);
            let n = out.width();
            let c = if block.first {
                Target::New(out)
            } else {
                let done = out.finished().expect("the first block wrote every row");
                Target::Rows(ArrayViewMut2::from_shape((rows, n), done).expect("whole rows"))
            };
            layout.run(Tile {
                simd,
                block: &block,
                packed_a,
                packed_b,
                c,
            });
        });
    }
}

/// `weight` packed into `out`, block after block, panels in parallel.
fn pack<'p>(
    simd: V4,
    layout: Layout,
    weight: &ArrayView2<'_, f32>,
    out: &'p mut [f32],
) -> Packed<'p> {
    let (k, n) = weight.dim();
    let panels = n.div_ceil(NR);
    let mut start = 0;
    for p0 in (0..k).step_by(layout.kc()) {
        let kc = layout.kc().min(k - p0);
        let len = panels * layout.panel_len(kc);
        out[start..start + len]
            .par_chunks_mut(layout.panel_len(kc))
            .enumerate()
            .for_each(|(panel, out)| layout.pack_b(simd, weight, p0, kc, panel, out));
        start += len;
    }
    Packed {
        packed: out,
        layout,
        panels,
        k,
    }
}
