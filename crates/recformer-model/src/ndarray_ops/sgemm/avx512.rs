//! The AVX-512 micro-kernel and the loops around it: tasks, per-thread packing buffers, the
//! epilogue.

use std::cell::RefCell;
use std::thread::LocalKey;

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use pulp::x86::V4;
use pulp::{f32x16, Simd, WithSimd};
use rayon::prelude::*;

use super::layout::Layout;
use super::{Then, MR, NR};
use crate::ndarray_ops::filled::{written, RowWriter};
use crate::ndarray_ops::gelu::gelu_lanes;
use crate::ndarray_ops::prefetch::prefetch;

/// [`super::gemm`] on a CPU with AVX-512.
pub(super) fn gemm(
    simd: V4,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let product = Product::new(simd, a, b, None, Then::Nothing);
    with_buffer(&PACKED_B, product.packed_b_len(), |packed_b| {
        for p0 in (0..a.ncols()).step_by(product.layout.kc()) {
            product.block(p0, packed_b, c);
        }
    });
}

/// [`super::product`] on a CPU with AVX-512: the first block's tasks write rows of a new
/// matrix ([`written`]: not zeroed first), the later blocks add to it.
pub(super) fn product(
    simd: V4,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    bias: Option<&ArrayView1<'_, f32>>,
    then: Then,
) -> Array2<f32> {
    let ((m, k), n) = (a.dim(), b.ncols());
    let bias = padded(bias, n);
    let product = Product::new(simd, a, b, bias.as_deref(), then);
    with_buffer(&PACKED_B, product.packed_b_len(), |packed_b| {
        let (block, packed) = product.pack(0, packed_b);
        let data = written(m, n, product.mc, |task, rows| {
            product.task(&block, packed, task, Target::New(rows));
        });
        let mut c = Array2::from_shape_vec((m, n), data).expect("m · n elements");
        let kc = product.layout.kc();
        for p0 in (kc..k).step_by(kc) {
            product.block(p0, packed_b, &mut c.view_mut());
        }
        c
    })
}

/// The bias padded to whole panels (the epilogue reads [`NR`] at a time).
pub(super) fn padded(bias: Option<&ArrayView1<'_, f32>>, n: usize) -> Option<Vec<f32>> {
    bias.map(|bias| {
        let mut padded = vec![0.0; n.div_ceil(NR) * NR];
        padded.iter_mut().zip(bias).for_each(|(d, s)| *d = *s);
        padded
    })
}

/// The operands of one product and how it is split.
struct Product<'a, 'v> {
    simd: V4,
    a: &'a ArrayView2<'v, f32>,
    b: &'a ArrayView2<'v, f32>,
    /// The bias padded to whole panels.
    bias: Option<&'a [f32]>,
    /// Applied after the bias, in the last block.
    then: Then,
    /// How the operands are packed and multiplied.
    layout: Layout,
    /// Rows of C per task.
    mc: usize,
}

impl<'a, 'v> Product<'a, 'v> {
    fn new(
        simd: V4,
        a: &'a ArrayView2<'v, f32>,
        b: &'a ArrayView2<'v, f32>,
        bias: Option<&'a [f32]>,
        then: Then,
    ) -> Self {
        let layout = Layout::of(a, b);
        let mc = layout.task_rows(a.nrows());
        Product {
            simd,
            a,
            b,
            bias,
            then,
            layout,
            mc,
        }
    }

    /// Floats of the packed right operand (one block of the sum).
    fn packed_b_len(&self) -> usize {
        let (k, n) = self.b.dim();
        n.div_ceil(NR) * self.layout.panel_len(self.layout.kc().min(k))
    }

    /// Block `p0 ..` of the sum: the right operand's rows packed in parallel, then the
    /// tasks, each packing its rows of the left operand and running them against every
    /// packed panel.
    fn block(&self, p0: usize, packed_b: &mut [f32], c: &mut ArrayViewMut2<'_, f32>) {
        let (block, packed_b) = self.pack(p0, packed_b);
        c.axis_chunks_iter_mut(Axis(0), self.mc)
            .into_par_iter()
            // Every task its own job, as in `filled`.
            .with_max_len(1)
            .enumerate()
            .for_each(|(task, rows)| self.task(&block, packed_b, task, Target::Rows(rows)));
    }

    /// Block `p0 ..`'s epilogue settings and its packed right operand.
    fn pack<'p>(&self, p0: usize, packed_b: &'p mut [f32]) -> (Block<'a>, &'p [f32]) {
        let (k, n) = self.b.dim();
        let layout = self.layout;
        let kc = layout.kc().min(k - p0);
        let panel_len = layout.panel_len(kc);
        let packed_b = &mut packed_b[..n.div_ceil(NR) * panel_len];
        packed_b
            .par_chunks_mut(panel_len)
            .enumerate()
            .for_each(|(panel, out)| layout.pack_b(self.simd, self.b, p0, kc, panel, out));
        let last = p0 + kc == k;
        let block = Block {
            p0,
            first: p0 == 0,
            bias: self.bias.filter(|_| last),
            gelu: last && self.then == Then::Gelu,
            kc,
        };
        (block, packed_b)
    }

    /// Task `task` of a block: its rows of the left operand packed, then run against every
    /// packed panel into `rows` (its rows of C).
    fn task(&self, block: &Block<'_>, packed_b: &[f32], task: usize, rows: Target<'_, '_>) {
        let i0 = task * self.mc;
        let h = rows.dim().0;
        let layout = self.layout;
        with_buffer(&PACKED_A, layout.strips_len(h, block.kc), |packed_a| {
            layout.pack_a(self.simd, self.a, i0..i0 + h, block.p0, block.kc, packed_a);
            layout.run(Tile {
                simd: self.simd,
                block,
                packed_a,
                packed_b,
                c: rows,
            });
        });
    }
}

thread_local! {
    /// The packed left operand's rows of the task running on this thread.
    pub(super) static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The packed right operand of the product this thread called.
    pub(super) static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Buffers up to this many floats (16 MiB) stay with their thread for the next product;
/// larger ones (an MLM head over a big vocabulary) are freed after it.
const KEEP: usize = 1 << 22;

/// Floats of slack a buffer keeps so that its slice can start on a 64-byte boundary.
const ALIGN: usize = 16;

/// `f` on `len` floats of this thread's buffer `key` (reused: no allocation, no zeroing
/// per product), or of a new one when the buffer is in use (a product called from a task
/// of another product on the same thread) or larger than [`KEEP`]. The slice starts on a
/// 64-byte boundary: AMX's tile loads read rows of 64 bytes, and a row across two cache lines
/// halved the tile unit's rate (docs/performance.md).
pub(crate) fn with_buffer<R>(
    key: &'static LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) if len <= KEEP => {
            if buffer.len() < len + ALIGN {
                buffer.resize(len + ALIGN, 0.0);
            }
            f(aligned(&mut buffer, len))
        }
        _ => f(aligned(&mut vec![0.0; len + ALIGN], len)),
    })
}

/// `len` floats of `buffer` (at least `len + ALIGN` long) from its first 64-byte boundary.
fn aligned(buffer: &mut [f32], len: usize) -> &mut [f32] {
    let start = buffer.as_ptr().align_offset(64);
    &mut buffer[start..start + len]
}

/// What one block of the sum does in its epilogue.
pub(super) struct Block<'a> {
    /// The block's first index of the sum.
    pub(super) p0: usize,
    /// The first block stores; later ones add to C.
    pub(super) first: bool,
    /// The padded bias, on the last block only.
    pub(super) bias: Option<&'a [f32]>,
    /// GELU after the bias, on the last block only.
    pub(super) gelu: bool,
    pub(super) kc: usize,
}

/// Where a task's rows of C go.
pub(super) enum Target<'a, 'w> {
    /// Rows of an initialised matrix: the first block of the sum stores, later ones add.
    Rows(ArrayViewMut2<'a, f32>),
    /// Rows of a new matrix, each row written in order ([`written`]): the first block only.
    New(&'a mut RowWriter<'w, f32>),
}

impl Target<'_, '_> {
    /// `(rows, columns)`.
    pub(super) fn dim(&self) -> (usize, usize) {
        match self {
            Target::Rows(c) => c.dim(),
            Target::New(c) => (c.rows(), c.width()),
        }
    }
}

/// A task's rows of C against every panel of the packed right operand.
pub(super) struct Tile<'a, 'c, 'w> {
    pub(super) simd: V4,
    pub(super) block: &'a Block<'a>,
    pub(super) packed_a: &'a [f32],
    pub(super) packed_b: &'a [f32],
    pub(super) c: Target<'c, 'w>,
}

impl Tile<'_, '_, '_> {
    /// C's rows and columns, after checking that a later block of the sum adds to initialised
    /// rows.
    #[inline(always)]
    pub(super) fn checked_dim(&self) -> (usize, usize) {
        assert!(
            self.block.first || matches!(self.c, Target::Rows(_)),
            "a later block of the sum adds to initialised rows"
        );
        self.c.dim()
    }
}

impl WithSimd for Tile<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        // `V4::vectorize` compiles this body (and the kernel inlined into it) for AVX-512.
        let (h, n) = self.checked_dim();
        let Tile {
            simd,
            block,
            packed_a,
            packed_b,
            mut c,
        } = self;
        let kc = block.kc;
        for (panel, b) in packed_b.chunks_exact(NR * kc).enumerate() {
            let j0 = panel * NR;
            let w = NR.min(n - j0);
            for (strip, a) in packed_a.chunks_exact(MR * kc).enumerate() {
                let i0 = strip * MR;
                c.prefetch_rows(block, i0..h.min(i0 + MR), j0, w);
                let acc = kernel(simd, a, b);
                let bias = block.bias.map(|bias| &bias[j0..j0 + NR]);
                for (r, acc) in acc.iter().enumerate().take(h.saturating_sub(i0)) {
                    c.store(simd, i0 + r, j0, w, *acc, block, bias);
                }
            }
        }
    }
}

impl Target<'_, '_> {
    /// A later block adds to C rows stored long before (evicted when C is larger than the
    /// caches): fetch rows `rows`, columns `j0 .. j0 + w`, while the kernel runs.
    #[inline(always)]
    pub(super) fn prefetch_rows(
        &self,
        block: &Block<'_>,
        rows: core::ops::Range<usize>,
        j0: usize,
        w: usize,
    ) {
        if let (false, Target::Rows(c)) = (block.first, self) {
            for r in rows {
                let row = c.row(r);
                let row = row.as_slice().expect("unit column stride");
                prefetch(&row[j0]);
                if w > 16 {
                    prefetch(&row[j0 + 16]);
                }
            }
        }
    }

    /// One row of a tile (`w` columns from `j0`) through the epilogue into row `r`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        simd: V4,
        r: usize,
        j0: usize,
        w: usize,
        acc: [f32x16; 2],
        block: &Block<'_>,
        bias: Option<&[f32]>,
    ) {
        match self {
            Target::Rows(c) => {
                let mut row = c.row_mut(r);
                let row = row.as_slice_mut().expect("unit column stride");
                epilogue(simd, acc, &mut row[j0..j0 + w], block, bias);
            }
            Target::New(c) => {
                let v = finish(simd, acc, None, block, bias);
                if w == NR {
                    c.put(r, &v);
                } else {
                    c.put(r, &v[..w]);
                }
            }
        }
    }
}

/// The `MR × NR` products of one block: `acc[r][v] = Σ_p a[p][r] · b[p][16v ..]`, one
/// FMA per `p` in order.
#[inline(always)]
fn kernel(simd: V4, a: &[f32], b: &[f32]) -> [[f32x16; 2]; MR] {
    let zero = simd.splat_f32x16(0.0);
    let mut acc = [[zero; 2]; MR];
    for (a, b) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let b: &[f32; NR] = b.try_into().expect("NR columns");
        let (b0, b1) = (load(&b[..16]), load(&b[16..]));
        for (acc, &a) in acc.iter_mut().zip(a) {
            let a = simd.splat_f32x16(a);
            acc[0] = simd.mul_add_f32x16(a, b0, acc[0]);
            acc[1] = simd.mul_add_f32x16(a, b1, acc[1]);
        }
    }
    acc
}

#[inline(always)]
fn load(x: &[f32]) -> f32x16 {
    let x: [f32; 16] = x.try_into().expect("16 lanes");
    pulp::bytemuck::cast(x)
}

/// One row of a tile in an initialised matrix: `row = acc` (first block) or `acc + row`, then
/// [`finish`].
#[inline(always)]
fn epilogue(simd: V4, acc: [f32x16; 2], row: &mut [f32], block: &Block<'_>, bias: Option<&[f32]>) {
    let w = row.len();
    let mut full = [0.0_f32; NR];
    let out: &mut [f32; NR] = match row.try_into() {
        Ok(out) => out,
        Err(_) => {
            full[..w].copy_from_slice(row);
            &mut full
        }
    };
    // No closure here: a closure's body is not compiled for AVX-512 (docs/performance.md).
    let old = if block.first {
        None
    } else {
        Some(pulp::bytemuck::cast(*out))
    };
    *out = finish(simd, acc, old, block, bias);
    if w < NR {
        row.copy_from_slice(&full[..w]);
    }
}

/// One row of a tile's values: `acc` (+ `old`, C's values, on a later block), then `+ bias`,
/// then the GELU (on the last block, when the block says so) on all 16 lanes of each vector.
#[inline(always)]
fn finish(
    simd: V4,
    acc: [f32x16; 2],
    old: Option<[f32x16; 2]>,
    block: &Block<'_>,
    bias: Option<&[f32]>,
) -> [f32; NR] {
    let mut v = acc;
    if let Some(old) = old {
        v = [simd.add_f32x16(v[0], old[0]), simd.add_f32x16(v[1], old[1])];
    }
    if let Some(bias) = bias {
        let bias: [f32; NR] = bias.try_into().expect("NR bias values");
        let bias: [f32x16; 2] = pulp::bytemuck::cast(bias);
        v = [
            simd.add_f32x16(v[0], bias[0]),
            simd.add_f32x16(v[1], bias[1]),
        ];
    }
    if block.gelu {
        v = [gelu_lanes(simd, v[0]), gelu_lanes(simd, v[1])];
    }
    pulp::bytemuck::cast(v)
}
