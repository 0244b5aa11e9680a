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
//!
//! On a CPU with AMX (Intel Xeons since Sapphire Rapids), products whose operands' rows are
//! contiguous run on the tile units instead ([`amx`]: six bf16 part products summed in f32;
//! f32's accuracy, not matrixmultiply's bits), unless `RECFORMER_GEMM=fma`.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};

/// The depth of one block of the sum (matrixmultiply's `S_KC`): part of the arithmetic, here
/// and in the one-pass attentions (each score, depth `head_dim`, must be one block; their
/// contexts' sums run in blocks of this many).
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

/// `c = a · b` into an existing matrix if this module handles the operands: f32 on a CPU with
/// AVX-512, `k ≥ 1`, C's rows contiguous, and either fewer than 16 rows with the right
/// operand's rows or columns contiguous ([`thin`]) or at least [`MIN_WORK`] multiply-adds. The result is
/// bit for bit matrixmultiply's (`general_mat_mul` with α = 1, β = 0). `false` (and `c`
/// untouched) otherwise. A new matrix (with a bias, a GELU) comes from [`product`].
///
/// # Shapes
/// - a: `[m, k]`, b: `[k, n]`, c: `[m, n]` (any strides for a and b)
pub(crate) fn gemm(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    let ((m, k), n) = (a.dim(), b.ncols());
    debug_assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    if k == 0 || c.strides()[1] != 1 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        if m < thin::ROWS && thin::gemm(simd, a, b, c) {
            return true;
        }
        if m * n * k >= MIN_WORK {
            avx512::gemm(simd, a, b, c);
            return true;
        }
    }
    false
}

/// `a · b` (`+ bias`, then `then`) into a new standard-layout matrix if this module handles the
/// operands (as [`gemm`]; `None` otherwise), the bias added after the sum as Burn adds it. The
/// first block of the sum runs inside [`super::filled::written`]: each task writes its rows of
/// C without zeroing them first.
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

/// One linear layer's operands: a `[k, n]` weight (any strides) and an optional `[n]` bias.
pub(crate) struct Dense<'v> {
    pub(crate) weight: ArrayView2<'v, f32>,
    pub(crate) bias: Option<ArrayView1<'v, f32>>,
}

/// `gelu(x · W₁ + b₁) · W₂ + b₂` into a new standard-layout matrix, each task's rows through
/// both products a block of intermediate columns at a time, without the whole intermediate
/// activation ([`feed_forward`](self::feed_forward)): the same bits as
/// [`product`] with [`Then::Gelu`] followed by [`product`]. `None` where [`product`] would not
/// run the first product (no AVX-512, too small).
///
/// # Shapes
/// - x: `[m, d_model]`, up: `[d_model, d_ff]`, down: `[d_ff, d_out]`; output `[m, d_out]`
pub(crate) fn feed_forward(
    x: &ArrayView2<'_, f32>,
    up: &Dense<'_>,
    down: &Dense<'_>,
) -> Option<Array2<f32>> {
    let ((m, k), d_ff) = (x.dim(), up.weight.ncols());
    debug_assert_eq!((up.weight.nrows(), down.weight.nrows()), (k, d_ff));
    if k == 0 || d_ff == 0 || m * d_ff * k < MIN_WORK {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        return Some(feed_forward::feed_forward(simd, x, up, down));
    }
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

mod pack;

pub(crate) use pack::pack_rows;
use pack::{pack_a, pack_b};

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod amx_tile;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::with_buffer;
#[cfg(target_arch = "x86_64")]
mod feed_forward;
#[cfg(target_arch = "x86_64")]
mod layout;
#[cfg(target_arch = "x86_64")]
mod thin;

#[cfg(test)]
pub(crate) mod tests;
