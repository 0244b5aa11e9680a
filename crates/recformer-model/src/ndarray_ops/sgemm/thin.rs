//! Products with fewer rows than a vector has lanes, in matrixmultiply's arithmetic, without
//! packing the large right operand. The first token's global attention has them: one row per
//! head against a layer's hidden states (`crate::attention::global`).
//!
//! matrixmultiply packs both operands and runs a 16 × 16 micro-kernel. With 4 rows (mini's
//! heads), three quarters of its FMAs are padding, and the packed copy of the right operand (the
//! hidden states `[l, hidden]`, or their transpose for the scores) costs as much as the products.
//! Here the right operand is read in place:
//! - **rows contiguous** (`[k, n]`, the hidden states): 4 rows of A broadcast against 64 columns
//!   of B at a time;
//! - **columns contiguous** (the transposed hidden states): C's transpose, 8 rows of `Bᵀ`
//!   broadcast against A's transpose, packed as `[k, 16]` with C's rows in the lanes.
//!
//! Each element of C is matrixmultiply's sum: blocks of [`KC`] from index 0, each a chain of
//! FMAs from zero, the first block stored and each later one added with one rounding.

use ndarray::{ArrayView2, ArrayViewMut2};
use pulp::x86::V4;
use pulp::{f32x16, Simd, WithSimd};

use super::KC;
use crate::ndarray_ops::rows_kernel::{epilogue, kernel, load, LANES};

/// Products with fewer rows than this take this path.
pub(super) const ROWS: usize = LANES;

/// `c = a · b` (α = 1, β = 0) if the right operand's rows or columns are contiguous (and, for
/// rows, its width a multiple of 16); `false` (and `c` untouched) otherwise.
///
/// # Shapes
/// - a: `[m, k]` (`m < 16`, any strides), b: `[k, n]`, c: `[m, n]` with contiguous rows
pub(super) fn gemm(
    simd: V4,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    let (m, k) = a.dim();
    debug_assert!(m < ROWS && c.strides()[1] == 1);
    if let (Some(b), true) = (b.as_slice(), b.ncols().is_multiple_of(LANES)) {
        // A's rows packed, padded with zero rows to whole groups of four.
        let mut rows = vec![0.0_f32; m.next_multiple_of(4) * k];
        for (dst, src) in rows.chunks_exact_mut(k).zip(a.rows()) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
        }
        Simd::vectorize(
            simd,
            RowsOfB {
                simd,
                a: &rows,
                k,
                b,
                c,
            },
        );
        return true;
    }
    let bt = b.t();
    if let Some(bt) = bt.as_slice() {
        // Aᵀ as `[k, 16]`: lane `i` of row `p` is `a[i][p]`.
        let mut at = vec![0.0_f32; k * LANES];
        for (i, row) in a.rows().into_iter().enumerate() {
            for (p, &x) in row.iter().enumerate() {
                at[p * LANES + i] = x;
            }
        }
        Simd::vectorize(
            simd,
            ColumnsOfB {
                simd,
                at: &at,
                bt,
                c,
            },
        );
        return true;
    }
    false
}

/// The blocks of the sum: `(index of the block, its range)`.
fn blocks(k: usize) -> impl Iterator<Item = (usize, core::ops::Range<usize>)> {
    (0..k)
        .step_by(KC)
        .enumerate()
        .map(move |(i, p0)| (i, p0..(p0 + KC).min(k)))
}

/// B with contiguous rows: `c[i][j..]` from four rows of A and 64 (or 16) columns of B.
struct RowsOfB<'a, 'c> {
    simd: V4,
    /// A's rows, `[m rounded up to 4, k]`.
    a: &'a [f32],
    k: usize,
    /// `[k, n]`, standard layout.
    b: &'a [f32],
    c: &'a mut ArrayViewMut2<'c, f32>,
}

impl WithSimd for RowsOfB<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let RowsOfB { simd, a, k, b, c } = self;
        let n = c.ncols();
        for (group, a) in a.chunks_exact(4 * k).enumerate() {
            let i0 = 4 * group;
            let mut j = 0;
            while j < n {
                let wide = j + 4 * LANES <= n;
                for (first, range) in blocks(k) {
                    let rows: [&[f32]; 4] =
                        core::array::from_fn(|r| &a[r * k + range.start..r * k + range.end]);
                    let at = |p: usize| &b[(range.start + p) * n + j..];
                    let depth = range.len();
                    if wide {
                        let acc = kernel(simd, &rows, depth, |p| {
                            let x = at(p);
                            [
                                load(x),
                                load(&x[LANES..]),
                                load(&x[2 * LANES..]),
                                load(&x[3 * LANES..]),
                            ]
                        });
                        store_rows(simd, c, i0, j, first == 0, &acc);
                    } else {
                        let acc = kernel(simd, &rows, depth, |p| [load(at(p))]);
                        store_rows(simd, c, i0, j, first == 0, &acc);
                    }
                }
                j += if wide { 4 * LANES } else { LANES };
            }
        }
    }
}

/// The four rows of a [`RowsOfB`] tile into C's rows `i0 ..` (those that exist) from column
/// `j`: stored by the first block of the sum, added by later ones.
#[inline(always)]
fn store_rows<const NV: usize>(
    simd: V4,
    c: &mut ArrayViewMut2<'_, f32>,
    i0: usize,
    j: usize,
    first: bool,
    acc: &[[f32x16; NV]; 4],
) {
    for (r, acc) in acc.iter().enumerate().take(c.nrows() - i0) {
        let mut row = c.row_mut(i0 + r);
        let out = &mut row.as_slice_mut().expect("contiguous rows of C")[j..];
        epilogue(simd, first, acc, out);
    }
}

/// B with contiguous columns: `c[..][j]` for eight columns `j` at a time, C's rows in the lanes.
struct ColumnsOfB<'a, 'c> {
    simd: V4,
    /// Aᵀ, `[k, 16]`.
    at: &'a [f32],
    /// Bᵀ, `[n, k]`, standard layout.
    bt: &'a [f32],
    c: &'a mut ArrayViewMut2<'c, f32>,
}

impl WithSimd for ColumnsOfB<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        const R: usize = 8;
        let ColumnsOfB { simd, at, bt, c } = self;
        let (m, n) = c.dim();
        let k = at.len() / LANES;
        let zeros = vec![0.0_f32; k];
        for j0 in (0..n).step_by(R) {
            for (first, range) in blocks(k) {
                let rows: [&[f32]; R] = core::array::from_fn(|r| {
                    let row = if j0 + r < n {
                        &bt[(j0 + r) * k..(j0 + r + 1) * k]
                    } else {
                        &zeros[..]
                    };
                    &row[range.clone()]
                });
                let acc = kernel(simd, &rows, range.len(), |p| {
                    [load(&at[(range.start + p) * LANES..])]
                });
                for (r, acc) in acc.iter().enumerate().take(n - j0) {
                    let lanes: [f32; LANES] = pulp::bytemuck::cast(acc[0]);
                    for (i, &x) in lanes.iter().enumerate().take(m) {
                        let out = &mut c[[i, j0 + r]];
                        *out = if first == 0 { x } else { x + *out };
                    }
                }
            }
        }
    }
}
