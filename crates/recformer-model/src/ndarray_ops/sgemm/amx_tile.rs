//! The AMX path's tile loop: a task's strips of the left operand against every panel of the
//! packed weights on the tile units ([`amx::Sum`]), each 32 × 32 block of C through the FMA
//! path's epilogue ([`Target::store`]) while the tile unit sums the next one.

use pulp::x86::V4;
use pulp::{Simd, WithSimd};

use super::avx512::{Block, Target, Tile};
use super::{amx, NR};

/// A [`Tile`] on AMX ([`amx::Sum`], 32 rows of C per sum): strips and panels packed by
/// [`Layout::Amx`](super::layout::Layout::Amx).
pub(super) struct AmxTile<'a, 'c, 'w>(pub(super) Tile<'a, 'c, 'w>);

impl WithSimd for AmxTile<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        // `V4::vectorize` compiles this body (the epilogue) for AVX-512.
        let (h, n) = self.0.checked_dim();
        let AmxTile(tile) = self;
        let (simd, block, packed_a, packed_b) =
            (tile.simd, tile.block, tile.packed_a, tile.packed_b);
        let mut c = tile.c;
        let kc = block.kc;
        // Double-buffered: while the tile unit sums one strip and panel, the previous ones'
        // values go through the epilogue a few rows per step (the tile unit idled during the
        // epilogue when it ran after each sum).
        let mut acc = [amx::Tiles::default(), amx::Tiles::default()];
        let mut pending: Option<Pending<'_>> = None;
        amx::configure();
        for (panel, b) in packed_b.chunks_exact(amx::panel_len(kc)).enumerate() {
            let j0 = panel * NR;
            let w = NR.min(n - j0);
            for (strip, a) in packed_a.chunks_exact(amx::strip_len(kc)).enumerate() {
                let i0 = strip * amx::ROWS;
                c.prefetch_rows(block, i0..h.min(i0 + amx::ROWS), j0, w);
                let buffer = pending.as_ref().map_or(0, |p| 1 - p.buffer);
                let [first, second] = &mut acc;
                let (current, previous) = match buffer {
                    0 => (first, &*second),
                    _ => (second, &*first),
                };
                let sum = amx::Sum::new(a, b, kc);
                let steps = sum.steps();
                for s in 0..steps {
                    sum.step(s);
                    if let Some(p) = &pending {
                        let rows = p.rows * s / steps..p.rows * (s + 1) / steps;
                        p.store(simd, &mut c, previous, rows, block);
                    }
                }
                sum.store(current);
                pending = Some(Pending {
                    i0,
                    j0,
                    w,
                    rows: h.saturating_sub(i0).min(amx::ROWS),
                    bias: block.bias.map(|bias| &bias[j0..j0 + NR]),
                    buffer,
                });
            }
        }
        if let Some(p) = &pending {
            p.store(simd, &mut c, &acc[p.buffer], 0..p.rows, block);
        }
        amx::release();
    }
}

/// Tiles of C summed and stored, waiting for the epilogue: rows `i0 .. i0 + rows`, columns
/// `j0 .. j0 + w`.
struct Pending<'b> {
    i0: usize,
    j0: usize,
    w: usize,
    rows: usize,
    bias: Option<&'b [f32]>,
    /// Which of the two buffers holds them.
    buffer: usize,
}

impl Pending<'_> {
    /// Rows `rows` (of the 32) of `acc` through the epilogue into C.
    #[inline(always)]
    fn store(
        &self,
        simd: V4,
        c: &mut Target<'_, '_>,
        acc: &amx::Tiles,
        rows: core::ops::Range<usize>,
        block: &Block<'_>,
    ) {
        for r in rows {
            let values = pulp::bytemuck::cast(acc.0[r]);
            c.store(simd, self.i0 + r, self.j0, self.w, values, block, self.bias);
        }
    }
}
