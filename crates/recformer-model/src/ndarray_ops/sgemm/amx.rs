//! f32 products on AMX (the tile units of Intel Xeons since Sapphire Rapids) with f32's
//! accuracy, "bf16 × 6": each operand split into three bf16 parts, `x = x₁ + x₂ + x₃`
//! exactly (8 + 8 + 8 bits of significand), and the six part products whose weight is at
//! least 2⁻¹⁶ summed in f32 by the tile unit:
//! `a·b ≈ a₁b₁ + (a₁b₂ + a₂b₁) + (a₁b₃ + a₂b₂ + a₃b₁)`. The dropped terms weigh ≤ 2⁻²⁴ of
//! `|a||b|`, as much as f32's own rounding of one product; XLA runs f32 products on TPUs the
//! same way at `Precision.HIGHEST`.
//!
//! On this project's Xeon a core's tile unit does bf16 products ~9× as fast as its two FMA
//! ports do f32 ones (PyTorch: 1,500 against 120–165 GFLOP/s on one core), so six of them
//! still beat the FMA micro-kernel: 350–357 against 163 GFLOP/s of f32 work for the kernel
//! alone, with every tile row on a 64-byte boundary (172–177 without; docs/performance.md). The
//! sums run in another order than matrixmultiply's: the results are not its bits but as
//! accurate (docs/parity.md). The default where the CPU and Linux allow it ([`enabled`]);
//! `RECFORMER_GEMM=fma` keeps the FMA path.
//!
//! Layouts (bf16 as `u16`, in the GEMM's `f32` buffers): a **strip** is 32 rows of the left
//! operand, `[chunk][part][tile 2][16 rows][32 indices]`; a **panel** is 32 columns of the
//! right operand, `[chunk][part][tile 2][16 index pairs][16 columns × 2]` (the tile unit's
//! pairs of indices side by side); a chunk is 32 indices of the sum, the last one padded with
//! zeros. Both operands' rows must be contiguous.
//!
//! The model crate's third `unsafe` module (after `filled` and `prefetch`): the instructions
//! have no Rust intrinsics on stable, so they are inline assembly, and Linux gives a process
//! the tile registers only after it asks (`arch_prctl`).

use std::marker::PhantomData;
use std::sync::OnceLock;

use ndarray::ArrayView2;
use pulp::x86::V4;
use pulp::{Simd, WithSimd};

use super::NR;

/// The depth of a block of the sum.
pub(super) const KC: usize = 128;
/// Rows of a strip (two tiles of 16).
pub(super) const ROWS: usize = 32;
/// Indices of the sum per tile row (64 bytes of bf16).
const CHUNK: usize = 32;
/// bf16 values in one tile (16 rows of 64 bytes).
const TILE: usize = 16 * CHUNK;
/// Parts of each operand.
const PARTS: usize = 3;
/// The six part products `(i, j)`: the left operand's part `i` times the right's part `j`.
const PRODUCTS: [(usize, usize); 6] = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 0), (2, 0)];

/// Whether products run here: on a CPU with AMX ([`usable`]) unless `RECFORMER_GEMM=fma`
/// asks for the FMA path (matrixmultiply's bits, which the first parity checks against the
/// official code were made with). Decided once per process; another value of the variable
/// is reported once as a warning and changes nothing.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let fma = match std::env::var("RECFORMER_GEMM") {
            Ok(v) if v.eq_ignore_ascii_case("fma") => true,
            Ok(v) if v.eq_ignore_ascii_case("amx") || v.is_empty() => false,
            Ok(v) => {
                log::warn!("RECFORMER_GEMM={v:?}: expected `fma` or `amx`; ignored");
                false
            }
            Err(_) => false,
        };
        let on = !fma && usable();
        log::info!(
            "NdArray's large f32 products: {}",
            if on {
                "AMX tiles (RECFORMER_GEMM=fma for the FMA path)"
            } else {
                "FMA (AVX-512)"
            }
        );
        on
    })
}

/// A CPU with AMX-TILE and AMX-BF16, and Linux granting this process the tile registers.
pub(crate) fn usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| supported() && granted())
}

/// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (EDX bit 24).
fn supported() -> bool {
    let leaf = core::arch::x86_64::__cpuid_count(7, 0);
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`),
/// once per process; every thread may then use the tiles.
#[cfg(target_os = "linux")]
fn granted() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let result: i64;
    #[allow(unsafe_code)]
    // SAFETY: the system call reads two integers and changes only which register states
    // the kernel saves for this process; `rcx` and `r11` are the ones `syscall` overwrites.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => result,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result == 0
}

#[cfg(not(target_os = "linux"))]
fn granted() -> bool {
    false
}

/// Indices of the sum a block of depth `kc` takes in the layouts (whole chunks).
fn depth(kc: usize) -> usize {
    kc.next_multiple_of(CHUNK)
}

/// `f32`s of one strip (32 rows) of a block of depth `kc`.
pub(super) fn strip_len(kc: usize) -> usize {
    ROWS * depth(kc) * PARTS / 2
}

/// `f32`s of one panel ([`NR`] = 32 columns) of a block of depth `kc`.
pub(super) fn panel_len(kc: usize) -> usize {
    NR * depth(kc) * PARTS / 2
}

/// Each of 16 values' three bf16 parts (`x = x₁ + x₂ + x₃` exactly for normal f32: the
/// leading 8 bits of the significand, of the rest, and of what is left), each part in the high
/// half of a `u32` (the low half zero).
#[inline(always)]
fn split(x: &[f32; 16]) -> [[u32; 16]; PARTS] {
    const HIGH: u32 = 0xffff_0000;
    let mut parts = [[0_u32; 16]; PARTS];
    for (j, &x) in x.iter().enumerate() {
        let first = x.to_bits() & HIGH;
        let rest = x - f32::from_bits(first);
        let second = rest.to_bits() & HIGH;
        let third = rest - f32::from_bits(second);
        parts[0][j] = first;
        parts[1][j] = second;
        parts[2][j] = third.to_bits() & HIGH;
    }
    parts
}

/// Up to 16 values from `src`, zeros after.
#[inline(always)]
fn sixteen(src: &[f32]) -> [f32; 16] {
    match <&[f32; 16]>::try_from(src) {
        Ok(src) => *src,
        Err(_) => padded(src),
    }
}

/// The edges' case of [`sixteen`], apart so that the whole vectors' copy stays a load (merged
/// into one, both were a `memmove` call: 7% of a forward).
#[cold]
#[inline(never)]
fn padded(src: &[f32]) -> [f32; 16] {
    let mut x = [0.0_f32; 16];
    x[..src.len()].copy_from_slice(src);
    x
}

/// Columns `16t .. 16t + 16` of a row (zeros past its end).
#[inline(always)]
fn tile_row(row: &[f32], t: usize) -> [f32; 16] {
    sixteen(&row[(16 * t).min(row.len())..(16 * t + 16).min(row.len())])
}

/// `a`'s rows `rows` (contiguous) and columns `p0 .. p0 + kc` as strips, rows past the end
/// zero.
pub(super) fn pack_a(
    simd: V4,
    a: &ArrayView2<'_, f32>,
    rows: core::ops::Range<usize>,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    Simd::vectorize(
        simd,
        PackA {
            a,
            rows,
            p0,
            kc,
            out: pulp::bytemuck::cast_slice_mut(out),
        },
    );
}

struct PackA<'a, 'v, 'o> {
    a: &'a ArrayView2<'v, f32>,
    rows: core::ops::Range<usize>,
    p0: usize,
    kc: usize,
    out: &'o mut [u16],
}

impl WithSimd for PackA<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        // Compiled for AVX-512 by `V4::vectorize` (plain loops, no closures).
        let PackA {
            a,
            rows,
            p0,
            kc,
            out,
        } = self;
        let strip = 2 * strip_len(kc);
        let h = rows.len();
        if h % ROWS != 0 {
            out[(h / ROWS) * strip..h.div_ceil(ROWS) * strip].fill(0);
        }
        for (i, r) in rows.enumerate() {
            let row = a.row(r);
            let row = &row.as_slice().expect("contiguous rows")[p0..p0 + kc];
            let (s, t, rr) = (i / ROWS, (i % ROWS) / 16, i % 16);
            for (c, values) in row.chunks(CHUNK).enumerate() {
                let at = s * strip + c * PARTS * 2 * TILE + t * TILE + rr * CHUNK;
                for half in 0..2 {
                    let parts = split(&tile_row(values, half));
                    for (part, lanes) in parts.iter().enumerate() {
                        let dst = &mut out[at + part * 2 * TILE + 16 * half..][..16];
                        for (d, &v) in dst.iter_mut().zip(lanes) {
                            *d = (v >> 16) as u16;
                        }
                    }
                }
            }
        }
    }
}

/// `b`'s rows `p0 .. p0 + kc` (contiguous) and columns `32·panel ..` as one panel, columns
/// and indices past the end zero.
pub(super) fn pack_b(
    simd: V4,
    b: &ArrayView2<'_, f32>,
    p0: usize,
    kc: usize,
    panel: usize,
    out: &mut [f32],
) {
    Simd::vectorize(
        simd,
        PackB {
            b,
            p0,
            kc,
            panel,
            out: pulp::bytemuck::cast_slice_mut(out),
        },
    );
}

struct PackB<'a, 'v, 'o> {
    b: &'a ArrayView2<'v, f32>,
    p0: usize,
    kc: usize,
    panel: usize,
    /// Pairs of bf16 (index `2q` in the low half, `2q + 1` in the high half).
    out: &'o mut [u32],
}

impl WithSimd for PackB<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        // Compiled for AVX-512 by `V4::vectorize` (plain loops, no closures).
        let PackB {
            b,
            p0,
            kc,
            panel,
            out,
        } = self;
        let j0 = panel * NR;
        let w = NR.min(b.ncols() - j0);
        let row = |p: usize| -> &[f32] {
            if p < kc {
                &b.row(p0 + p).to_slice().expect("contiguous rows")[j0..j0 + w]
            } else {
                &[]
            }
        };
        // In `u32` pairs: a tile is 16 rows of 16 pairs.
        const PAIRS: usize = TILE / 2;
        for pair in 0..depth(kc) / 2 {
            let (even, odd) = (row(2 * pair), row(2 * pair + 1));
            let (c, q) = (pair / (CHUNK / 2), pair % (CHUNK / 2));
            for t in 0..2 {
                let (low, high) = (split(&tile_row(even, t)), split(&tile_row(odd, t)));
                let at = c * PARTS * 2 * PAIRS + t * PAIRS + q * 16;
                for part in 0..PARTS {
                    let dst = &mut out[at + part * 2 * PAIRS..][..16];
                    for ((d, &l), &h) in dst.iter_mut().zip(&low[part]).zip(&high[part]) {
                        *d = (l >> 16) | h;
                    }
                }
            }
        }
    }
}

/// The tile registers' shapes for [`Sum`]: all eight 16 rows of 64 bytes. Loaded by each
/// run of tiles on its thread; [`release`] after.
pub(super) fn configure() {
    #[repr(C, align(64))]
    struct Config([u8; 64]);
    let mut config = Config([0; 64]);
    config.0[0] = 1; // palette 1
    for t in 0..8 {
        config.0[16 + 2 * t] = 64; // bytes per row
        config.0[48 + t] = 16; // rows
    }
    #[allow(unsafe_code)]
    // SAFETY: `ldtilecfg` reads the 64 bytes of `config`, a valid palette-1 configuration
    // ([`enabled`] checked the CPU and the kernel's permission first).
    unsafe {
        core::arch::asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
    }
}

/// Gives the tile registers back (their state is no longer saved with the thread's).
pub(super) fn release() {
    #[allow(unsafe_code)]
    // SAFETY: `tilerelease` resets the tile registers, which only this module uses.
    unsafe {
        core::arch::asm!("tilerelease", options(nostack, nomem));
    }
}

/// The 32 × 32 values of C that one [`Sum`] computes, rows on 64-byte boundaries
/// (the tile stores write rows of 64 bytes).
#[repr(C, align(64))]
#[derive(Default)]
pub(super) struct Tiles(pub(super) [[f32; NR]; ROWS]);

/// One strip's (`a`) and one panel's (`b`) sum of the six part products over a block of
/// depth `kc`, in C's four tiles: started by [`Sum::new`] (the tiles zeroed), run a
/// [`Sum::step`] at a time (half a chunk's products: 12 tile products, ~200 cycles of the tile
/// unit) so that the caller can do other work between steps while the tile unit computes
/// (the previous tiles' epilogue), and stored by [`Sum::store`]. Runs between [`configure`]
/// and [`release`].
///
/// # Shapes
/// - a: [`strip_len`]`(kc)`, b: [`panel_len`]`(kc)`; c: 32 × 32
pub(super) struct Sum<'a> {
    a: *const u16,
    b: *const u16,
    chunks: usize,
    operands: PhantomData<&'a [f32]>,
}

impl<'a> Sum<'a> {
    #[inline(always)]
    pub(super) fn new(a: &'a [f32], b: &'a [f32], kc: usize) -> Sum<'a> {
        assert!(a.len() >= strip_len(kc) && b.len() >= panel_len(kc));
        #[allow(unsafe_code)]
        // SAFETY: zeroes four tile registers, configured by this thread ([`configure`]).
        unsafe {
            core::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
        }
        Sum {
            a: a.as_ptr().cast::<u16>(),
            b: b.as_ptr().cast::<u16>(),
            chunks: depth(kc) / CHUNK,
            operands: PhantomData,
        }
    }

    /// How many [`Sum::step`]s the sum takes (two per chunk of 32 indices).
    pub(super) fn steps(&self) -> usize {
        2 * self.chunks
    }

    /// Step `s`: chunk `s / 2`'s part products `PRODUCTS[3h .. 3h + 3]` (`h = s % 2`), each
    /// part loaded only when the next product needs another (6 loads of the strip's and 10 of
    /// the panel's tiles per chunk's 24 tile products).
    #[inline(always)]
    pub(super) fn step(&self, s: usize) {
        let (chunk, half) = (s / 2, s % 2);
        assert!(chunk < self.chunks);
        const STEP: usize = PARTS * 2 * TILE;
        const STRIDE: usize = 2 * CHUNK;
        let (mut held_a, mut held_b) = (usize::MAX, usize::MAX);
        for &(i, j) in &PRODUCTS[3 * half..3 * half + 3] {
            #[allow(unsafe_code)]
            // SAFETY: every tile read is 16 rows of 64 bytes inside the strip or the panel
            // (offsets below `chunks · STEP` bf16: `chunk < chunks`, and [`Sum::new`] checked
            // the lengths); tmm0..3 hold C, tmm4/tmm5 the strip's two row tiles of one part,
            // tmm6/tmm7 the panel's two column tiles of one part, all configured by this thread.
            unsafe {
                if held_a != i {
                    let at = self.a.add(chunk * STEP + i * 2 * TILE);
                    core::arch::asm!(
                        "tileloadd tmm4, [{a0} + {s}*1]",
                        "tileloadd tmm5, [{a1} + {s}*1]",
                        a0 = in(reg) at,
                        a1 = in(reg) at.add(TILE),
                        s = in(reg) STRIDE,
                        options(nostack, readonly)
                    );
                    held_a = i;
                }
                if held_b != j {
                    let at = self.b.add(chunk * STEP + j * 2 * TILE);
                    core::arch::asm!(
                        "tileloadd tmm6, [{b0} + {s}*1]",
                        "tileloadd tmm7, [{b1} + {s}*1]",
                        b0 = in(reg) at,
                        b1 = in(reg) at.add(TILE),
                        s = in(reg) STRIDE,
                        options(nostack, readonly)
                    );
                    held_b = j;
                }
                core::arch::asm!(
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    options(nostack, nomem)
                );
            }
        }
    }

    /// C's four tiles into `c`.
    #[inline(always)]
    pub(super) fn store(self, c: &mut Tiles) {
        let c = c.0.as_mut_ptr().cast::<f32>();
        #[allow(unsafe_code)]
        // SAFETY: every tile written is 16 rows of 64 bytes of `c` (rows 128 bytes apart).
        unsafe {
            core::arch::asm!(
                "tilestored [{c0} + {s}*1], tmm0",
                "tilestored [{c1} + {s}*1], tmm1",
                "tilestored [{c2} + {s}*1], tmm2",
                "tilestored [{c3} + {s}*1], tmm3",
                c0 = in(reg) c,
                c1 = in(reg) c.add(16),
                c2 = in(reg) c.add(16 * NR),
                c3 = in(reg) c.add(16 * NR + 16),
                s = in(reg) NR * 4,
                options(nostack)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    /// The three parts add up to every f32 from 2⁻¹¹⁰ up exactly (below, the last part would
    /// be subnormal), each a bf16 (low half zero).
    #[test]
    fn the_parts_add_up_exactly() {
        let mut x = [0.0_f32; 16];
        for bits in (0x0880_0000_u32..0x7f00_0000)
            .step_by(9_973)
            .chain([0x3f80_0001])
        {
            for (lane, x) in x.iter_mut().enumerate() {
                let v = f32::from_bits(bits + lane as u32 * 7);
                *x = if lane % 2 == 0 { v } else { -v };
            }
            let parts = super::split(&x);
            for (lane, &x) in x.iter().enumerate() {
                let p = parts.map(|part| f32::from_bits(part[lane]));
                assert!(parts.iter().all(|part| part[lane] & 0xffff == 0));
                assert_eq!(
                    f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2]),
                    f64::from(x)
                );
            }
        }
    }
}
