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
//! - the right operand packed in parallel, then tasks of [`MC`] rows on rayon's pool, each
//!   packing its own rows of the left operand;
//! - a bias row added in the last block's epilogue: `(ab + C) + b`, the same two roundings as
//!   the GEMM followed by Burn's bias addition.
//!
//! [`gemm`] answers `false` (and the caller runs matrixmultiply) without AVX-512, for f64, for
//! small products, and when C's rows are not contiguous.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis};

/// The depth of one block of the sum (matrixmultiply's `S_KC`): part of the arithmetic.
pub(crate) const KC: usize = 256;
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
    let ((m, k), n) = (a.dim(), b.ncols());
    debug_assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    if k == 0 || m * n * k < MIN_WORK || c.strides()[1] != 1 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        avx512::gemm(simd, a, b, bias, c);
        return true;
    }
    let _ = bias;
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
            for (r, row) in panel.axis_iter(Axis(0)).enumerate() {
                for (p, &v) in row.iter().enumerate() {
                    out[p * MR + r] = v;
                }
            }
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
            dst[..w].copy_from_slice(row.as_slice().expect("unit column stride"));
        }
    } else {
        for (j, column) in cols.axis_iter(Axis(1)).enumerate() {
            for (p, &v) in column.iter().enumerate() {
                out[p * NR + j] = v;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use ndarray::parallel::prelude::*;
    use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis};
    use pulp::x86::V4;
    use pulp::{f32x16, Simd, WithSimd};
    use rayon::prelude::*;

    use super::{pack_a, pack_b, KC, MC, MR, NR};

    /// [`super::gemm`] on a CPU with AVX-512.
    pub(super) fn gemm(
        simd: V4,
        a: &ArrayView2<'_, f32>,
        b: &ArrayView2<'_, f32>,
        bias: Option<&ArrayView1<'_, f32>>,
        c: &mut ArrayViewMut2<'_, f32>,
    ) {
        let (k, n) = b.dim();
        let panels = n.div_ceil(NR);
        // The bias padded to whole panels (the epilogue reads NR at a time).
        let bias: Option<Vec<f32>> = bias.map(|bias| {
            let mut padded = vec![0.0; panels * NR];
            padded.iter_mut().zip(bias).for_each(|(d, s)| *d = *s);
            padded
        });
        let mut packed_b = vec![0.0_f32; panels * NR * KC.min(k)];
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let packed_b = &mut packed_b[..panels * NR * kc];
            packed_b
                .par_chunks_mut(NR * kc)
                .enumerate()
                .for_each(|(panel, out)| pack_b(b, p0, kc, panel, out));
            let packed_b = &*packed_b;
            let block = Block {
                first: p0 == 0,
                bias: bias.as_deref().filter(|_| p0 + kc == k),
                kc,
            };
            c.axis_chunks_iter_mut(Axis(0), MC)
                .into_par_iter()
                .enumerate()
                .for_each_init(
                    || vec![0.0_f32; MC * KC],
                    |packed_a, (task, mut rows)| {
                        let i0 = task * MC;
                        let h = rows.nrows();
                        let packed_a = &mut packed_a[..h.div_ceil(MR) * MR * kc];
                        pack_a(a, i0..i0 + h, p0, kc, packed_a);
                        Simd::vectorize(
                            simd,
                            Tile {
                                simd,
                                block: &block,
                                packed_a,
                                packed_b,
                                c: &mut rows,
                            },
                        );
                    },
                );
        }
    }

    /// What one block of the sum does in its epilogue.
    struct Block<'a> {
        /// The first block stores; later ones add to C.
        first: bool,
        /// The padded bias, on the last block only.
        bias: Option<&'a [f32]>,
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
                        epilogue(simd, *acc, &mut row[j0..j0 + w], block.first, bias);
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
        let mut lanes: [f32; NR] = pulp::bytemuck::cast(acc);
        let w = row.len();
        if !first {
            let mut old = [0.0_f32; NR];
            old[..w].copy_from_slice(row);
            let old: [f32x16; 2] = pulp::bytemuck::cast(old);
            let sum = [
                simd.add_f32x16(acc[0], old[0]),
                simd.add_f32x16(acc[1], old[1]),
            ];
            lanes = pulp::bytemuck::cast(sum);
        }
        if let Some(bias) = bias {
            let v: [f32x16; 2] = pulp::bytemuck::cast(lanes);
            let sum = [
                simd.add_f32x16(v[0], load(&bias[..16])),
                simd.add_f32x16(v[1], load(&bias[16..])),
            ];
            lanes = pulp::bytemuck::cast(sum);
        }
        row.copy_from_slice(&lanes[..w]);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array1, Array2, ShapeBuilder};

    use super::*;

    /// Deterministic values of mixed magnitudes (so that a different order of the sums would
    /// round differently).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                u * (1.0 + (s >> 60) as f32)
            })
            .collect()
    }

    fn matrix(rows: usize, cols: usize, column_major: bool, seed: u64) -> Array2<f32> {
        Array2::from_shape_vec((rows, cols).set_f(column_major), values(rows * cols, seed))
            .expect("shape")
    }

    fn bits(a: &Array2<f32>) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    fn avx512() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }

    /// Every shape class (edges of the micro-kernel and of the tasks, one to three blocks of
    /// the sum), every operand layout, with and without a bias: the same bits as
    /// matrixmultiply's product followed by the bias addition.
    #[test]
    fn same_bits_as_matrixmultiply_then_the_bias() {
        let shapes = [
            (150, 300, 70),
            (113, 513, 47),
            (224, 256, 64),
            (29, 700, 130),
        ];
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            for (a_cm, b_cm) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = matrix(m, k, a_cm, 10 + case as u64);
                let b = matrix(k, n, b_cm, 20 + case as u64);
                let bias = Array1::from(values(n, 30 + case as u64));
                let mut expected = Array2::<f32>::zeros((m, n));
                general_mat_mul(1.0, &a, &b, 0.0, &mut expected);
                let mut with_bias = expected.clone();
                with_bias
                    .rows_mut()
                    .into_iter()
                    .for_each(|mut r| r += &bias);
                for (bias, expected) in [(None, &expected), (Some(&bias.view()), &with_bias)] {
                    let what = format!(
                        "{m}x{k}x{n} a_cm={a_cm} b_cm={b_cm} bias={}",
                        bias.is_some()
                    );
                    let mut c = Array2::<f32>::from_elem((m, n), f32::NAN);
                    let handled = gemm(&a.view(), &b.view(), bias, &mut c.view_mut());
                    assert_eq!(handled, avx512(), "{what}: handled iff AVX-512");
                    if handled {
                        assert_eq!(bits(&c), bits(expected), "{what}");
                    }
                }
            }
        }
    }

    /// What it leaves to matrixmultiply: small products, an empty sum, C's rows not
    /// contiguous; C untouched then.
    #[test]
    fn declines_small_products_empty_sums_and_strided_outputs() {
        let (a, b) = (matrix(64, 64, false, 1), matrix(64, 64, false, 2));
        let mut c = Array2::<f32>::from_elem((64, 64), 7.0);
        assert!(!gemm(&a.view(), &b.view(), None, &mut c.view_mut()));
        let (a, b) = (matrix(4096, 0, false, 1), matrix(0, 4096, false, 2));
        let mut c = Array2::<f32>::from_elem((4096, 4096), 7.0);
        assert!(!gemm(&a.view(), &b.view(), None, &mut c.view_mut()));
        let (a, b) = (matrix(150, 300, false, 1), matrix(300, 70, false, 2));
        let mut c = Array2::<f32>::from_elem((150, 70).f(), 7.0);
        assert!(!gemm(&a.view(), &b.view(), None, &mut c.view_mut()));
        assert!(c.iter().all(|&v| v == 7.0));
    }
}
