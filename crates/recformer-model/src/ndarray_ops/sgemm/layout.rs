//! How a product's operands are packed and multiplied: the FMA micro-kernel's layout or AMX's.

use ndarray::ArrayView2;
use pulp::x86::V4;
use pulp::Simd;

use super::amx_tile::AmxTile;
use super::avx512::Tile;
use super::{amx, pack_a, pack_b, KC, MC, MR, NR};

/// How a product's operands are packed and multiplied: into the FMA micro-kernel's
/// micro-panels (matrixmultiply's arithmetic, bit for bit), or into [`amx`]'s strips and
/// panels (f32's accuracy, not its bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Fma,
    Amx,
}

/// [`amx::enabled`], or in this crate's tests what `sgemm::tests::FORCED_AMX` says (AMX
/// only where usable).
fn amx_chosen() -> bool {
    #[cfg(test)]
    if let Some(amx) = super::tests::FORCED_AMX.with(core::cell::Cell::get) {
        return amx && amx::usable();
    }
    amx::enabled()
}

impl Layout {
    /// [`Layout::Amx`] where [`amx::enabled`] and both operands' rows are contiguous (a
    /// transposed operand, as in the backward's products, stays with the FMA kernel: packed a
    /// column at a time for AMX, it made a training step 3–12% slower, docs/performance.md).
    pub(super) fn of(a: &ArrayView2<'_, f32>, b: &ArrayView2<'_, f32>) -> Layout {
        let rows = |x: &ArrayView2<'_, f32>| x.strides()[1] == 1 || x.ncols() <= 1;
        if rows(a) && rows(b) && amx_chosen() {
            Layout::Amx
        } else {
            Layout::Fma
        }
    }

    /// The depth of a block of the sum: [`KC`] (matrixmultiply's) or 128 for AMX (a block's
    /// panel of the right operand, 24 KiB, then stays in L1 while the strips pass).
    pub(super) fn kc(self) -> usize {
        match self {
            Layout::Fma => KC,
            Layout::Amx => amx::KC,
        }
    }

    /// Rows of C per task for `m` rows: at most 8 (FMA) or 4 (AMX) kernels' rows, and at
    /// least four tasks per thread when C has few rows (a weight's gradient has `d_in` rows),
    /// so that they spread evenly.
    pub(super) fn task_rows(self, m: usize) -> usize {
        let (rows, most) = match self {
            Layout::Fma => (MR, MC),
            Layout::Amx => (amx::ROWS, 4 * amx::ROWS),
        };
        m.div_ceil(4 * rayon::current_num_threads())
            .next_multiple_of(rows)
            .clamp(rows, most)
    }

    /// Floats of `h` packed rows of the left operand, a block of depth `kc`.
    pub(super) fn strips_len(self, h: usize, kc: usize) -> usize {
        match self {
            Layout::Fma => h.div_ceil(MR) * MR * kc,
            Layout::Amx => h.div_ceil(amx::ROWS) * amx::strip_len(kc),
        }
    }

    /// Floats of one packed panel of [`NR`] columns of the right operand, depth `kc`.
    pub(super) fn panel_len(self, kc: usize) -> usize {
        match self {
            Layout::Fma => NR * kc,
            Layout::Amx => amx::panel_len(kc),
        }
    }

    /// `a`'s rows `rows`, columns `p0 .. p0 + kc`, packed.
    pub(super) fn pack_a(
        self,
        simd: V4,
        a: &ArrayView2<'_, f32>,
        rows: core::ops::Range<usize>,
        p0: usize,
        kc: usize,
        out: &mut [f32],
    ) {
        match self {
            Layout::Fma => pack_a(a, rows, p0, kc, out),
            Layout::Amx => amx::pack_a(simd, a, rows, p0, kc, out),
        }
    }

    /// `b`'s rows `p0 .. p0 + kc`, panel `panel`, packed.
    pub(super) fn pack_b(
        self,
        simd: V4,
        b: &ArrayView2<'_, f32>,
        p0: usize,
        kc: usize,
        panel: usize,
        out: &mut [f32],
    ) {
        match self {
            Layout::Fma => pack_b(b, p0, kc, panel, out),
            Layout::Amx => amx::pack_b(simd, b, p0, kc, panel, out),
        }
    }

    /// The task's packed rows against every packed panel.
    pub(super) fn run(self, tile: Tile<'_, '_, '_>) {
        let simd = tile.simd;
        match self {
            Layout::Fma => Simd::vectorize(simd, tile),
            Layout::Amx => Simd::vectorize(simd, AmxTile(tile)),
        }
    }
}
