//! The band's four array kernels (scores and context, forward and backward): per batch-and-head
//! pair in parallel, one GEMM per part written or accumulated in place, on views of any strides.

use ndarray::linalg::general_mat_mul;
use ndarray::parallel::prelude::*;
use ndarray::{Array4, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMut3, Axis, Slice};

use super::super::filled::filled;
use super::super::{gemm_into, matrix, zeros, Float};

/// The band's geometry: one-sided window `w` and whether token 0's column is present.
#[derive(Debug, Clone, Copy)]
pub(super) struct Band {
    pub(super) w: usize,
    pub(super) global: bool,
}

impl Band {
    /// Score columns per query: `3w`, plus one for the global token.
    pub(super) fn cols(self) -> usize {
        3 * self.w + usize::from(self.global)
    }

    /// Rows `[j·w, (j+1)·w)` of a `[l, d]` matrix.
    fn block<'a, E: Float>(self, m: &ArrayView2<'a, E>, j: usize) -> ArrayView2<'a, E> {
        rows(m, j * self.w..(j + 1) * self.w)
    }

    /// The columns of part `s` (0, 1, 2; 3 is the global column).
    fn part(self, s: usize) -> core::ops::Range<usize> {
        let end = if s == 3 {
            3 * self.w + 1
        } else {
            (s + 1) * self.w
        };
        s * self.w..end
    }

    /// The parts `s` of query block `k` whose key/value block lies inside the `nb` blocks:
    /// `0..3` without the first at block 0 and the last at block `nb - 1`.
    pub(super) fn parts_inside(k: usize, nb: usize) -> core::ops::Range<usize> {
        usize::from(k == 0)..if k + 1 == nb { 2 } else { 3 }
    }

    /// The key/value block that part `s` (0: previous, 1: same, 2: next) of query block `k`
    /// reads, if it lies inside the `nb` blocks.
    fn source(k: usize, s: usize, nb: usize) -> Option<usize> {
        (k + s).checked_sub(1).filter(|&j| j < nb)
    }
}

/// `c += a · b`.
fn gemm_add<E: Float>(a: &ArrayView2<'_, E>, b: &ArrayView2<'_, E>, c: &mut ArrayViewMut2<'_, E>) {
    general_mat_mul(E::one(), a, b, E::one(), c);
}

/// Rows `range` of a matrix view (ndarray's `s!` expands to `unsafe`, forbidden here).
fn rows<'a, E: Float>(m: &ArrayView2<'a, E>, range: core::ops::Range<usize>) -> ArrayView2<'a, E> {
    let mut m = *m;
    m.slice_axis_inplace(Axis(0), Slice::from(range));
    m
}

/// Columns `range` of a matrix view.
fn cols<'a, E: Float>(m: &ArrayView2<'a, E>, range: core::ops::Range<usize>) -> ArrayView2<'a, E> {
    let mut m = *m;
    m.slice_axis_inplace(Axis(1), Slice::from(range));
    m
}

/// `[b, h, ...]` leading dimensions of a rank-4 view as `(b, h, l, d)`.
pub(super) fn dims4<E>(view: &ArrayViewD<'_, E>) -> (usize, usize, usize, usize) {
    let s = view.shape();
    (s[0], s[1], s[2], s[3])
}

/// Scores `[b·h, nb, w, cols]` of queries `q` against keys `k` (`[b, h, l, d]`).
pub(super) fn scores_forward<E: Float>(
    q: &ArrayViewD<'_, E>,
    k: &ArrayViewD<'_, E>,
    band: Band,
) -> Array4<E> {
    let (b, h, l, _) = dims4(q);
    let (w, nb) = (band.w, l / band.w);
    let shape = (b * h, nb, w, band.cols());
    let out = per_pair(shape, |i, mut out| {
        let (q, k) = (matrix(q, i), matrix(k, i));
        for blk in 0..nb {
            let qb = band.block(&q, blk);
            let mut o = out.index_axis_mut(Axis(0), blk);
            // The parts inside the sequence read adjacent key blocks: one product for all of
            // them (each score is the same dot product, summed in the same order, as with one
            // product per part).
            let parts = Band::parts_inside(blk, nb);
            let keys = rows(&k, (blk + parts.start) * w - w..(blk + parts.end) * w - w);
            gemm_into(
                &qb,
                &keys.reversed_axes(),
                &mut o.slice_axis_mut(Axis(1), (parts.start * w..parts.end * w).into()),
            );
            if band.global {
                let k0 = rows(&k, 0..1).reversed_axes();
                gemm_into(
                    &qb,
                    &k0,
                    &mut o.slice_axis_mut(Axis(1), band.part(3).into()),
                );
            }
        }
    });
    out
}

/// A new `[b·h, nb, w, cols]` array whose matrix `i` is written by `f(i, matrix)`, one pair of
/// the batch and head axes per parallel task, each zeroed by its task ([`filled`]).
fn per_pair<E: Float>(
    shape: (usize, usize, usize, usize),
    f: impl Fn(usize, ArrayViewMut3<'_, E>) + Sync,
) -> Array4<E> {
    let (pairs, nb, w, cols) = shape;
    let out = filled(pairs * nb * w * cols, (nb * w * cols).max(1), |i, part| {
        f(
            i,
            ArrayViewMut3::from_shape((nb, w, cols), part).expect("one pair's matrices"),
        );
    });
    Array4::from_shape_vec(shape, out).expect("the shape's element count")
}

/// Gradients of the scores with respect to `q` and `k`, as `[2, b·h, l, d]` (query first).
pub(super) fn scores_backward<E: Float>(
    grad: &ArrayViewD<'_, E>,
    q: &ArrayViewD<'_, E>,
    k: &ArrayViewD<'_, E>,
    band: Band,
) -> Array4<E> {
    let (b, h, l, d) = dims4(q);
    let (w, nb) = (band.w, l / band.w);
    let mut out = zeros::<E, _, _>((2, b * h, l, d));
    out.axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut out)| {
            let (q, k, g) = (matrix(q, i), matrix(k, i), three(grad, i));
            let (dq, dk) = out.view_mut().split_at(Axis(0), 1);
            let (mut dq, mut dk) = (
                dq.index_axis_move(Axis(0), 0),
                dk.index_axis_move(Axis(0), 0),
            );
            for blk in 0..nb {
                let g = g.index_axis(Axis(0), blk); // [w, cols]
                let qb = band.block(&q, blk);
                let mut dqb = dq.slice_axis_mut(Axis(0), Slice::from(blk * w..(blk + 1) * w));
                for s in 0..3 {
                    if let Some(j) = Band::source(blk, s, nb) {
                        let gs = cols(&g, band.part(s));
                        // dQ_blk += G_s · K_j ; dK_j += G_sᵀ · Q_blk
                        gemm_add(&gs, &band.block(&k, j), &mut dqb);
                        let mut dkj = dk.slice_axis_mut(Axis(0), Slice::from(j * w..(j + 1) * w));
                        gemm_add(&gs.reversed_axes(), &qb, &mut dkj);
                    }
                }
                if band.global {
                    let gg = cols(&g, band.part(3));
                    gemm_add(&gg, &rows(&k, 0..1), &mut dqb);
                    gemm_add(
                        &gg.reversed_axes(),
                        &qb,
                        &mut dk.slice_axis_mut(Axis(0), Slice::from(0..1)),
                    );
                }
            }
        });
    out
}

/// Context `[b·h, l, d]` of probabilities `p` (`[b, h, nb, w, cols]`) over values `v`.
pub(super) fn context_forward<E: Float>(
    p: &ArrayViewD<'_, E>,
    v: &ArrayViewD<'_, E>,
    band: Band,
) -> Array4<E> {
    let (b, h, l, d) = dims4(v);
    let (w, nb) = (band.w, l / band.w);
    let out = per_pair((b * h, nb, w, d), |i, mut out| {
        let (v, p) = (matrix(v, i), three(p, i));
        for blk in 0..nb {
            let pb = p.index_axis(Axis(0), blk); // [w, cols]
            let mut o = out.index_axis_mut(Axis(0), blk);
            for s in 0..3 {
                if let Some(j) = Band::source(blk, s, nb) {
                    gemm_add(&cols(&pb, band.part(s)), &band.block(&v, j), &mut o);
                }
            }
            if band.global {
                gemm_add(&cols(&pb, band.part(3)), &rows(&v, 0..1), &mut o);
            }
        }
    });
    out
}

/// Gradients of the context with respect to `p` (`[b·h, nb, w, cols]`) and `v` (`[b·h, l, d]`).
pub(super) fn context_backward<E: Float>(
    grad: &ArrayViewD<'_, E>,
    p: &ArrayViewD<'_, E>,
    v: &ArrayViewD<'_, E>,
    band: Band,
) -> (Array4<E>, Array4<E>) {
    let (b, h, l, d) = dims4(v);
    let (w, nb) = (band.w, l / band.w);
    let mut dp = zeros::<E, _, _>((b * h, nb, w, band.cols()));
    let mut dv = zeros::<E, _, _>((b * h, nb, w, d));
    dp.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(dv.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(i, (mut dp, mut dv))| {
            let (v, p, g) = (matrix(v, i), three(p, i), matrix(grad, i));
            for blk in 0..nb {
                let pb = p.index_axis(Axis(0), blk);
                let gb = band.block(&g, blk); // [w, d]
                let mut dpb = dp.index_axis_mut(Axis(0), blk);
                for s in 0..3 {
                    if let Some(j) = Band::source(blk, s, nb) {
                        // dP_s = G_blk · V_jᵀ ; dV_j += P_sᵀ · G_blk
                        let vj = band.block(&v, j);
                        let mut dps = dpb.slice_axis_mut(Axis(1), band.part(s).into());
                        gemm_into(&gb, &vj.reversed_axes(), &mut dps);
                        let ps = cols(&pb, band.part(s));
                        gemm_add(&ps.reversed_axes(), &gb, &mut dv.index_axis_mut(Axis(0), j));
                    }
                }
                if band.global {
                    let v0 = rows(&v, 0..1);
                    let mut dpg = dpb.slice_axis_mut(Axis(1), band.part(3).into());
                    gemm_into(&gb, &v0.reversed_axes(), &mut dpg);
                    let pg = cols(&pb, band.part(3));
                    let mut dv0 = dv.index_axis_mut(Axis(0), 0);
                    gemm_add(
                        &pg.reversed_axes(),
                        &gb,
                        &mut dv0.slice_axis_mut(Axis(0), Slice::from(0..1)),
                    );
                }
            }
        });
    (dp, dv)
}

/// Matrix `i` of the `b·h` leading pairs of a rank-5 view, as `[nb, w, cols]`.
fn three<'a, E: Float>(view: &ArrayViewD<'a, E>, i: usize) -> ndarray::ArrayView3<'a, E> {
    let h = view.shape()[1];
    view.clone()
        .index_axis_move(Axis(0), i / h)
        .index_axis_move(Axis(0), i % h)
        .into_dimensionality()
        .expect("rank 3 after the batch and head axes")
}
