//! A micro-kernel over a few rows read in place, with matrixmultiply's sum, and its loads and
//! stores: for the small products that do not pay for packing both operands (the one-pass
//! attentions of [`super::band`] and [`super::dense_attention`], [`super::sgemm`]'s products
//! with fewer than 16 rows), and the packing of their keys.
//!
//! x86-64 only (AVX-512 through pulp's `V4`): the callers check for it.

use ndarray::{ArrayView2, Axis};
use pulp::f32x16;
use pulp::x86::V4;

use super::sgemm::pack_rows;

/// Lanes of a vector.
pub(crate) const LANES: usize = 16;

/// `acc[r][v] = Σ_p a[r][p] · b(p)[v]` for `p < depth`, one FMA per `p` in order from zero:
/// matrixmultiply's sum.
#[inline(always)]
pub(crate) fn kernel<const R: usize, const NV: usize>(
    simd: V4,
    a: &[&[f32]; R],
    depth: usize,
    b: impl Fn(usize) -> [f32x16; NV],
) -> [[f32x16; NV]; R] {
    let mut acc = [[simd.splat_f32x16(0.0); NV]; R];
    let a: [&[f32]; R] = core::array::from_fn(|r| &a[r][..depth]);
    for p in 0..depth {
        let b = b(p);
        for (acc, a) in acc.iter_mut().zip(&a) {
            let x = simd.splat_f32x16(a[p]);
            for (acc, b) in acc.iter_mut().zip(&b) {
                *acc = simd.mul_add_f32x16(x, *b, *acc);
            }
        }
    }
    acc
}

/// The first 16 floats of `x`.
#[inline(always)]
pub(crate) fn load(x: &[f32]) -> f32x16 {
    let x: [f32; LANES] = x[..LANES].try_into().expect("16 lanes");
    pulp::bytemuck::cast(x)
}

/// `acc` into the first `16 · NV` floats of `out`.
#[inline(always)]
pub(crate) fn store<const NV: usize>(acc: &[f32x16; NV], out: &mut [f32]) {
    for (v, out) in acc.iter().zip(out.chunks_exact_mut(LANES)) {
        let v: [f32; LANES] = pulp::bytemuck::cast(*v);
        out.copy_from_slice(&v);
    }
}

/// `out = acc + out` on the first `16 · NV` floats, one rounding each.
#[inline(always)]
pub(crate) fn add_into<const NV: usize>(simd: V4, acc: &[f32x16; NV], out: &mut [f32]) {
    for (v, out) in acc.iter().zip(out.chunks_exact_mut(LANES)) {
        let sum = simd.add_f32x16(*v, load(out));
        let sum: [f32; LANES] = pulp::bytemuck::cast(sum);
        out.copy_from_slice(&sum);
    }
}

/// The first block of a sum stores its products (`out = acc`), every later one adds them
/// (`out = acc + out`, one rounding): matrixmultiply's epilogue with α = 1, β = 0 then 1.
#[inline(always)]
pub(crate) fn epilogue<const NV: usize>(
    simd: V4,
    first: bool,
    acc: &[f32x16; NV],
    out: &mut [f32],
) {
    if first {
        store(acc, out);
    } else {
        add_into(simd, acc, out);
    }
}

/// The keys as panels of 16: `out[c][p][t]` is key `16c + t`'s element `p`.
pub(crate) fn pack_keys(k: &ArrayView2<'_, f32>, out: &mut [f32]) {
    let d = k.ncols();
    for (keys, panel) in k
        .axis_chunks_iter(Axis(0), LANES)
        .zip(out.chunks_exact_mut(d * LANES))
    {
        pack_rows::<LANES>(keys, d, panel);
    }
}

/// Row `t` of a matrix with contiguous rows.
#[inline(always)]
pub(crate) fn row<'a>(m: &ArrayView2<'a, f32>, t: usize) -> &'a [f32] {
    // `index_axis_move`, not a slice of one row: ndarray's general slicing (`do_slice`) cost
    // ~0.6% of a MiniLM forward in the one-pass attention's row lookups.
    m.index_axis_move(Axis(0), t)
        .to_slice()
        .expect("contiguous rows (checked before the op runs)")
}
