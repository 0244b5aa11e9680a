//! f32 GEMM on AVX-512 with matrixmultiply's arithmetic, for the large products of
//! [`super::linear`] and [`super::matmul`] (and optionally the bias of a linear layer).
//!
//! matrixmultiply 0.3 (under NdArray's products) runs a 16 × 16 AVX-512 micro-kernel at about
//! 55–65% of this CPU's FMA peak, packs the right operand on one thread while the others wait,
//! and threads through its own pool beside rayon's. This GEMM keeps its **arithmetic** and
//! changes the rest:
//!
//! - the same blocking of the sum: `k` in blocks of [`KC`] = 256 from index 0, each block's
//!   products accumulated one FMA at a time in index order (`acc = a_ik · b_kj + acc`), the
//!   first block stored, every later one added to C with one rounding (matrixmultiply's
//!   epilogue `α·ab + β·C` with α = β = 1 is one FMA with α = 1: the same single rounding);
//! - so every element of C is the same float, bit for bit, whatever the tile shape, the
//!   packing or the threads (the tests compare with ndarray's `general_mat_mul`);
//! - a 14 × 32 micro-kernel (28 accumulators, 2 loads and 14 broadcasts per 28 FMAs, against
//!   16 × 16's 1 load and 16 broadcasts per 16 FMAs);
//! - the right operand packed in parallel, then tasks of at most [`MC`] rows on rayon's pool,
//!   each packing its own rows of the left operand (into buffers kept by each thread);
//! - a bias row added in the last block's epilogue: `(ab + C) + b`, the same two roundings as
//!   the GEMM followed by Burn's bias addition.
//!
//! [`gemm`] answers `false` (and the caller runs matrixmultiply) without AVX-512, for f64, for
//! small products, and when C's rows are not contiguous.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};

/// The depth of one block of the sum (matrixmultiply's `S_KC`): part of the arithmetic.
const KC: usize = 256;
/// Rows of the micro-kernel.
const MR: usize = 14;
/// Columns of the micro-kernel (two 16-lane vectors).
const NR: usize = 32;
/// Rows of C per task (8 micro-panels; the task's packed rows, 112 × 256 floats, fit in L2).
const MC: usize = MR * 8;
/// Below this many multiply-adds, matrixmultiply (no packing of the whole right operand, no
/// task split) is as fast: the sliding window's blocks stay there.
const MIN_WORK: usize = 1 << 21;

/// `c = a · b` (`+ bias` on every row when given) if this module handles the operands: f32 on
/// a CPU with AVX-512, at least [`MIN_WORK`] multiply-adds, `k ≥ 1`, C's rows contiguous. The
/// result is bit for bit matrixmultiply's (`general_mat_mul` with α = 1, β = 0), followed by
/// the bias addition. `false` (and `c` untouched) otherwise.
///
/// # Shapes
/// - a: `[m, k]`, b: `[k, n]`, bias: `[n]`, c: `[m, n]` (any strides for a and b)
pub(crate) fn gemm(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    bias: Option<&ArrayView1<'_, f32>>,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    gemm_then(a, b, bias, Then::Nothing, c)
}

/// `a · b` (`+ bias`, then `then`) into a new standard-layout matrix if this module handles the
/// operands (as [`gemm_then`]; `None` otherwise). The first block of the sum runs inside
/// [`super::filled::filled`]: each task zeroes its rows of C right before storing them, instead
/// of a zeroing pass over the whole matrix first.
///
/// # Shapes
/// - a: `[m, k]`, b: `[k, n]`, bias: `[n]`; output `[m, n]`
pub(crate) fn product(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    bias: Option<&ArrayView1<'_, f32>>,
    then: Then,
) -> Option<Array2<f32>> {
    let ((m, k), n) = (a.dim(), b.ncols());
    debug_assert_eq!(b.nrows(), k);
    if k == 0 || m * n * k < MIN_WORK {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        return Some(avx512::product(simd, a, b, bias, then));
    }
    let _ = (bias, then);
    None
}

/// What the last block's epilogue applies to each element of C after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Nothing,
    /// The exact GELU, [`super::gelu`]'s forward element by element (the same bits as the
    /// product followed by that op), while the tile is in registers.
    Gelu,
}

/// [`gemm`], then `then` on every element of C.
///
/// # Shapes
/// - as [`gemm`]
pub(crate) fn gemm_then(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    bias: Option<&ArrayView1<'_, f32>>,
    then: Then,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    let ((m, k), n) = (a.dim(), b.ncols());
    debug_assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    if k == 0 || m * n * k < MIN_WORK || c.strides()[1] != 1 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        avx512::gemm(simd, a, b, bias, then, c);
        return true;
    }
    let _ = (bias, then);
    false
}

/// `a`'s rows `rows` and columns `p0 .. p0 + kc` packed as micro-panels of [`MR`] rows:
/// `out[panel][p][r]`, rows past the end zero.
fn pack_a(
    a: &ArrayView2<'_, f32>,
    rows: core::ops::Range<usize>,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    let mut block = a.view();
    block.slice_axis_inplace(Axis(0), rows.into());
    block.slice_axis_inplace(Axis(1), (p0..p0 + kc).into());
    for (panel, out) in block
        .axis_chunks_iter(Axis(0), MR)
        .zip(out.chunks_exact_mut(MR * kc))
    {
        let h = panel.nrows();
        if h < MR {
            out.fill(0.0);
        }
        if panel.strides()[0] == 1 {
            // Columns contiguous (a transposed operand): one column of the panel at a time.
            for (p, column) in panel.axis_iter(Axis(1)).enumerate() {
                let dst = &mut out[p * MR..p * MR + h];
                match column.as_slice() {
                    Some(src) => dst.copy_from_slice(src),
                    None => dst.iter_mut().zip(column).for_each(|(d, s)| *d = *s),
                }
            }
        } else {
            pack_rows::<MR>(panel, kc, out);
        }
    }
}

/// At most `R` rows of `kc` columns as `out[p][r]` (a micro-panel of `a`, or of `bᵀ`), read
/// along the rows: 16 columns of every row at a time, transposed through a fixed-size tile
/// (the compiler sees every bound).
fn pack_rows<const R: usize>(panel: ArrayView2<'_, f32>, kc: usize, out: &mut [f32]) {
    const Q: usize = 16;
    // The rows as slices, without allocating (this runs for every micro-panel of every block).
    let mut slices: [&[f32]; R] = [&[]; R];
    let mut contiguous = true;
    for (slot, row) in slices.iter_mut().zip(panel.axis_iter(Axis(0))) {
        match row.to_slice() {
            Some(row) => *slot = row,
            None => contiguous = false,
        }
    }
    if !contiguous {
        for (r, row) in panel.axis_iter(Axis(0)).enumerate() {
            for (p, &v) in row.iter().enumerate() {
                out[p * R + r] = v;
            }
        }
        return;
    }
    let slices = &slices[..panel.nrows()];
    let whole = kc / Q * Q;
    for (step, dst) in out[..whole * R].chunks_exact_mut(R * Q).enumerate() {
        let mut tile = [[0.0_f32; Q]; R];
        for (t, src) in tile.iter_mut().zip(slices) {
            *t = src[step * Q..step * Q + Q].try_into().expect("Q columns");
        }
        for (q, dst) in dst.chunks_exact_mut(R).enumerate() {
            let dst: &mut [f32; R] = dst.try_into().expect("R values");
            for (d, t) in dst.iter_mut().zip(&tile) {
                *d = t[q];
            }
        }
    }
    for p in whole..kc {
        for (r, src) in slices.iter().enumerate() {
            out[p * R + r] = src[p];
        }
    }
}

/// `b`'s rows `p0 .. p0 + kc` packed as micro-panels of [`NR`] columns: `out[panel][p][j]`,
/// columns past the end zero.
fn pack_b(b: &ArrayView2<'_, f32>, p0: usize, kc: usize, panel: usize, out: &mut [f32]) {
    let j0 = panel * NR;
    let mut cols = b.view();
    cols.slice_axis_inplace(Axis(0), (p0..p0 + kc).into());
    cols.slice_axis_inplace(Axis(1), (j0..(j0 + NR).min(b.ncols())).into());
    let w = cols.ncols();
    if w < NR {
        out.fill(0.0);
    }
    if cols.strides()[1] == 1 {
        for (row, dst) in cols.axis_iter(Axis(0)).zip(out.chunks_exact_mut(NR)) {
            let row = row.as_slice().expect("unit column stride");
            match (
                <&mut [f32; NR]>::try_from(&mut *dst),
                <&[f32; NR]>::try_from(row),
            ) {
                (Ok(dst), Ok(row)) => *dst = *row,
                _ => dst[..w].copy_from_slice(row),
            }
        }
    } else {
        // Columns contiguous (a transposed weight): the panel's columns are rows of `bᵀ`.
        pack_rows::<NR>(cols.t(), kc, out);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    use ndarray::parallel::prelude::*;
    use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
    use pulp::x86::V4;
    use pulp::{f32x16, Simd, WithSimd};
    use rayon::prelude::*;

    use super::{pack_a, pack_b, Then, KC, MC, MR, NR};
    use crate::ndarray_ops::filled::filled;
    use crate::ndarray_ops::gelu::gelu_value;

    /// [`super::gemm_then`] on a CPU with AVX-512.
    pub(super) fn gemm(
        simd: V4,
        a: &ArrayView2<'_, f32>,
        b: &ArrayView2<'_, f32>,
        bias: Option<&ArrayView1<'_, f32>>,
        then: Then,
        c: &mut ArrayViewMut2<'_, f32>,
    ) {
        let bias = padded(bias, b.ncols());
        let product = Product::new(simd, a, b, bias.as_deref(), then);
        with_buffer(&PACKED_B, product.packed_b_len(), |packed_b| {
            for p0 in (0..a.ncols()).step_by(KC) {
                product.block(p0, packed_b, c);
            }
        });
    }

    /// [`super::product`] on a CPU with AVX-512: the first block's tasks write rows of a new
    /// matrix ([`filled`]), the later blocks add to it.
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
            let data = filled(m * n, product.mc * n, |task, rows| {
                let rows =
                    ArrayViewMut2::from_shape((rows.len() / n, n), rows).expect("whole rows of C");
                product.task(&block, packed, task, rows);
            });
            let mut c = Array2::from_shape_vec((m, n), data).expect("m · n elements");
            for p0 in (KC..k).step_by(KC) {
                product.block(p0, packed_b, &mut c.view_mut());
            }
            c
        })
    }

    /// The bias padded to whole panels (the epilogue reads [`NR`] at a time).
    fn padded(bias: Option<&ArrayView1<'_, f32>>, n: usize) -> Option<Vec<f32>> {
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
            // Tasks of `mc` rows: at most MC, and at least four per thread when C has few rows
            // (a weight's gradient has `d_in` rows), so that they spread evenly.
            let mc = a
                .nrows()
                .div_ceil(4 * rayon::current_num_threads())
                .next_multiple_of(MR)
                .clamp(MR, MC);
            Product {
                simd,
                a,
                b,
                bias,
                then,
                mc,
            }
        }

        /// Floats of the packed right operand (one block of the sum).
        fn packed_b_len(&self) -> usize {
            let (k, n) = self.b.dim();
            n.div_ceil(NR) * NR * KC.min(k)
        }

        /// Block `p0 ..` of the sum: the right operand's rows packed in parallel, then the
        /// tasks, each packing its rows of the left operand and running them against every
        /// packed panel.
        fn block(&self, p0: usize, packed_b: &mut [f32], c: &mut ArrayViewMut2<'_, f32>) {
            let (block, packed_b) = self.pack(p0, packed_b);
            c.axis_chunks_iter_mut(Axis(0), self.mc)
                .into_par_iter()
                .enumerate()
                .for_each(|(task, rows)| self.task(&block, packed_b, task, rows));
        }

        /// Block `p0 ..`'s epilogue settings and its packed right operand.
        fn pack<'p>(&self, p0: usize, packed_b: &'p mut [f32]) -> (Block<'a>, &'p [f32]) {
            let (k, n) = self.b.dim();
            let kc = KC.min(k - p0);
            let packed_b = &mut packed_b[..n.div_ceil(NR) * NR * kc];
            packed_b
                .par_chunks_mut(NR * kc)
                .enumerate()
                .for_each(|(panel, out)| pack_b(self.b, p0, kc, panel, out));
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
        fn task(
            &self,
            block: &Block<'_>,
            packed_b: &[f32],
            task: usize,
            mut rows: ArrayViewMut2<'_, f32>,
        ) {
            let i0 = task * self.mc;
            let h = rows.nrows();
            with_buffer(&PACKED_A, h.div_ceil(MR) * MR * block.kc, |packed_a| {
                pack_a(self.a, i0..i0 + h, block.p0, block.kc, packed_a);
                Simd::vectorize(
                    self.simd,
                    Tile {
                        simd: self.simd,
                        block,
                        packed_a,
                        packed_b,
                        c: &mut rows,
                    },
                );
            });
        }
    }

    thread_local! {
        /// The packed left operand's rows of the task running on this thread.
        static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        /// The packed right operand of the product this thread called.
        static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    /// Buffers up to this many floats (16 MiB) stay with their thread for the next product;
    /// larger ones (an MLM head over a big vocabulary) are freed after it.
    const KEEP: usize = 1 << 22;

    /// `f` on `len` floats of this thread's buffer `key` (reused: no allocation, no zeroing
    /// per product), or of a new one when the buffer is in use (a product called from a task
    /// of another product on the same thread) or larger than [`KEEP`].
    fn with_buffer<R>(
        key: &'static LocalKey<RefCell<Vec<f32>>>,
        len: usize,
        f: impl FnOnce(&mut [f32]) -> R,
    ) -> R {
        key.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) if len <= KEEP => {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                f(&mut buffer[..len])
            }
            _ => f(&mut vec![0.0; len]),
        })
    }

    /// What one block of the sum does in its epilogue.
    struct Block<'a> {
        /// The block's first index of the sum.
        p0: usize,
        /// The first block stores; later ones add to C.
        first: bool,
        /// The padded bias, on the last block only.
        bias: Option<&'a [f32]>,
        /// GELU after the bias, on the last block only.
        gelu: bool,
        kc: usize,
    }

    /// A task's rows of C against every panel of the packed right operand.
    struct Tile<'a, 'c> {
        simd: V4,
        block: &'a Block<'a>,
        packed_a: &'a [f32],
        packed_b: &'a [f32],
        c: &'a mut ArrayViewMut2<'c, f32>,
    }

    impl WithSimd for Tile<'_, '_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            // `V4::vectorize` compiles this body (and the kernel inlined into it) for AVX-512.
            let Tile {
                simd,
                block,
                packed_a,
                packed_b,
                c,
            } = self;
            let (h, n) = c.dim();
            let kc = block.kc;
            for (panel, b) in packed_b.chunks_exact(NR * kc).enumerate() {
                let j0 = panel * NR;
                let w = NR.min(n - j0);
                for (strip, a) in packed_a.chunks_exact(MR * kc).enumerate() {
                    let acc = kernel(simd, a, b);
                    let i0 = strip * MR;
                    let bias = block.bias.map(|bias| &bias[j0..j0 + NR]);
                    for (r, acc) in acc.iter().enumerate().take(h.saturating_sub(i0)) {
                        let mut row = c.row_mut(i0 + r);
                        let row = row.as_slice_mut().expect("unit column stride");
                        let row = &mut row[j0..j0 + w];
                        epilogue(simd, *acc, row, block.first, bias);
                        if block.gelu {
                            row.iter_mut().for_each(|x| *x = gelu_value(*x));
                        }
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

    /// One row of a tile: `row = acc` (first block) or `acc + row`, then `+ bias`.
    #[inline(always)]
    fn epilogue(simd: V4, acc: [f32x16; 2], row: &mut [f32], first: bool, bias: Option<&[f32]>) {
        let w = row.len();
        let mut full = [0.0_f32; NR];
        let out: &mut [f32; NR] = match row.try_into() {
            Ok(out) => out,
            Err(_) => {
                full[..w].copy_from_slice(row);
                &mut full
            }
        };
        let mut v = acc;
        if !first {
            let old: [f32x16; 2] = pulp::bytemuck::cast(*out);
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
        *out = pulp::bytemuck::cast(v);
        if w < NR {
            row.copy_from_slice(&full[..w]);
        }
    }
}

#[cfg(test)]
mod tests;
