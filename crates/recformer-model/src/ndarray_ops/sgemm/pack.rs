//! Packing of the GEMM's operands into micro-panels: the left operand's rows ([`pack_a`]),
//! the right operand's columns ([`pack_b`]), and the transposition both use when a panel is
//! read along its rows ([`pack_rows`], also the one-pass attentions' keys).
//!
//! Packing moves floats and changes none, so the products are the same bits whichever path
//! packs them. On AVX-512 the transposition runs on whole 16 × 16 tiles in registers (64
//! shuffles per 256 floats) instead of float by float (docs/performance.md: MiniLM forward
//! −2%; what is left of packing is mostly reading the operand from memory).

use ndarray::{ArrayView2, Axis};

use super::{MR, NR};

/// `a`'s rows `rows` and columns `p0 .. p0 + kc` packed as micro-panels of [`MR`] rows:
/// `out[panel][p][r]`, rows past the end zero.
pub(super) fn pack_a(
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
pub(crate) fn pack_rows<const R: usize>(panel: ArrayView2<'_, f32>, kc: usize, out: &mut [f32]) {
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
    #[cfg(target_arch = "x86_64")]
    let done = match pulp::x86::V4::try_new() {
        Some(simd) => {
            pulp::Simd::vectorize(
                simd,
                tiles::Tiles::<R> {
                    simd,
                    slices,
                    whole,
                    out,
                },
            );
            true
        }
        None => false,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = false;
    if !done {
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
    }
    for p in whole..kc {
        for (r, src) in slices.iter().enumerate() {
            out[p * R + r] = src[p];
        }
    }
}

/// `b`'s rows `p0 .. p0 + kc` packed as micro-panels of [`NR`] columns: `out[panel][p][j]`,
/// columns past the end zero.
pub(super) fn pack_b(b: &ArrayView2<'_, f32>, p0: usize, kc: usize, panel: usize, out: &mut [f32]) {
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

/// The transposition of whole 16 × 16 tiles on AVX-512.
#[cfg(target_arch = "x86_64")]
mod tiles {
    use core::arch::x86_64::{__m512, __m512d};

    use pulp::x86::V4;
    use pulp::{Simd, WithSimd};

    use crate::ndarray_ops::prefetch::prefetch;

    /// Lanes of a vector, and the side of a tile.
    const Q: usize = 16;
    /// How far ahead of the tile being transposed its rows are prefetched: 8 tiles, 512 bytes
    /// of each row (4 tiles measured −0.5%, 8 tiles −0.8% of a MiniLM forward).
    const AHEAD: usize = 8 * Q;

    /// Columns `0 .. whole` (a multiple of 16) of at most `R` rows as `out[p][r]`, a tile of
    /// 16 rows and 16 columns at a time; rows past `slices.len()` are written as zeros.
    pub(super) struct Tiles<'a, 'o, const R: usize> {
        pub(super) simd: V4,
        pub(super) slices: &'a [&'a [f32]],
        pub(super) whole: usize,
        pub(super) out: &'o mut [f32],
    }

    impl<const R: usize> WithSimd for Tiles<'_, '_, R> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            // `V4::vectorize` compiles this body (and the shuffles inlined into it) for
            // AVX-512. Plain loops, no closures: a closure's body would not be.
            let Tiles {
                simd,
                slices,
                whole,
                out,
            } = self;
            let zero: __m512 = pulp::cast(simd.splat_f32x16(0.0));
            for g in 0..R.div_ceil(Q) {
                // Rows `16g ..` of the panel: lanes `0 .. lanes` of every output vector.
                let rows = &slices[(g * Q).min(slices.len())..];
                let lanes = Q.min(R - g * Q);
                for c0 in (0..whole).step_by(Q) {
                    // The rows' lines [`AHEAD`] columns on, while this tile is transposed:
                    // packing an activation read from L3 stalled on these loads.
                    if c0 + AHEAD < whole {
                        for row in rows.iter().take(Q) {
                            prefetch(&row[c0 + AHEAD]);
                        }
                    }
                    let mut tile = [zero; Q];
                    for (t, row) in tile.iter_mut().zip(rows) {
                        let v: [f32; Q] = row[c0..c0 + Q].try_into().expect("16 columns");
                        *t = pulp::cast(v);
                    }
                    for (q, column) in transpose(simd, tile).into_iter().enumerate() {
                        let column: [f32; Q] = pulp::cast(column);
                        let at = (c0 + q) * R + g * Q;
                        // A whole vector where it fits: the lanes past `lanes` land on the next
                        // position's first rows, which the next store (or the scalar tail)
                        // writes afterwards.
                        match out.get_mut(at..at + Q) {
                            Some(dst) => dst.copy_from_slice(&column),
                            None => out[at..at + lanes].copy_from_slice(&column[..lanes]),
                        }
                    }
                }
            }
        }
    }

    /// The 16 × 16 transpose: `out[c]` lane `r` is `rows[r]` lane `c`. Written with plain
    /// loops and direct calls (no closures, no `array::from_fn`), which `V4::vectorize`
    /// compiles inline for AVX-512.
    #[inline(always)]
    fn transpose(simd: V4, rows: [__m512; Q]) -> [__m512; Q] {
        let f = simd.avx512f;
        // Pairs of rows interleaved by 32 bits within each 128-bit lane.
        let mut t = rows;
        for i in 0..Q / 2 {
            let (a, b) = (rows[2 * i], rows[2 * i + 1]);
            t[2 * i] = f._mm512_unpacklo_ps(a, b);
            t[2 * i + 1] = f._mm512_unpackhi_ps(a, b);
        }
        // Then by 64 bits: `u[4i + j]`'s 128-bit lane `k` holds column `4k + j` of rows
        // `4i .. 4i + 4`.
        let mut u = t;
        for i in 0..Q / 4 {
            for h in 0..2 {
                let a: __m512d = f._mm512_castps_pd(t[4 * i + h]);
                let b: __m512d = f._mm512_castps_pd(t[4 * i + 2 + h]);
                u[4 * i + 2 * h] = f._mm512_castpd_ps(f._mm512_unpacklo_pd(a, b));
                u[4 * i + 2 * h + 1] = f._mm512_castpd_ps(f._mm512_unpackhi_pd(a, b));
            }
        }
        // 128-bit lanes gathered in two rounds (`0b10_00_10_00`: lanes 0 and 2 of both
        // vectors; `0b11_01_11_01`: lanes 1 and 3). `x[j]`, `x[4 + j]`: row groups 0 and 1;
        // `y`: groups 2 and 3.
        let (mut x, mut y) = ([t[0]; 8], [t[0]; 8]);
        for j in 0..4 {
            x[j] = f._mm512_shuffle_f32x4::<0b10_00_10_00>(u[j], u[4 + j]);
            x[4 + j] = f._mm512_shuffle_f32x4::<0b11_01_11_01>(u[j], u[4 + j]);
            y[j] = f._mm512_shuffle_f32x4::<0b10_00_10_00>(u[8 + j], u[12 + j]);
            y[4 + j] = f._mm512_shuffle_f32x4::<0b11_01_11_01>(u[8 + j], u[12 + j]);
        }
        // Column `4k + j`: lane `k` of every row group.
        let mut out = rows;
        for j in 0..4 {
            out[j] = f._mm512_shuffle_f32x4::<0b10_00_10_00>(x[j], y[j]);
            out[4 + j] = f._mm512_shuffle_f32x4::<0b10_00_10_00>(x[4 + j], y[4 + j]);
            out[8 + j] = f._mm512_shuffle_f32x4::<0b11_01_11_01>(x[j], y[j]);
            out[12 + j] = f._mm512_shuffle_f32x4::<0b11_01_11_01>(x[4 + j], y[4 + j]);
        }
        out
    }
}
