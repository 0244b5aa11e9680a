//! `erf` and `exp` in f32 without branches or library calls, so that a loop over a slice
//! vectorises, for GELU, its derivative and softmax.
//!
//! burn-ndarray 0.21's `float_erf` calls libm's f64 `erf` once per element (22% of an
//! `encode-items` profile, docs/performance.md). PyTorch's CPU GELU uses a vectorised f32 `erf`
//! (SLEEF's, ≤ 1 ulp); this one is of the same kind:
//! - `|x| < 1`: `erf(x) = x + x·p(x²)`, `p` of degree 6;
//! - `1 ≤ |x|`: `erf(x) = ±(1 - exp(q(t) - t²))` with `t = min(|x|, 4)` and `q ≈ ln(erfcx(t))` of
//!   degree 7 in `(t - 2.5) / 1.5` (at `t ≥ 4`, `1 - erfc(t)` rounds to 1 in f32);
//!
//! both polynomials fitted (minimax by iteratively reweighted least squares against Python's
//! `math.erf`; see the tests' notes) and evaluated, like `exp`'s, in fused multiply-adds
//! (`mul_add`): one instruction on the x86-64-v3/v4 code the kernels run as
//! ([`super::simd`]), a libm `fmaf` call with the same bits on the baseline. Measured against
//! libm's f64 `erf` over every 997th f32 of [-6, 6] (2.18 million values, all exponents; the
//! test below): at most 0.96 ulp, 98.6% of the results equal to libm's rounded to f32 (what
//! burn-ndarray computes); `exp` within 0.91 ulp. (With a separate multiply and add per term, as
//! before the nineteenth session: 1.04 ulp, 94.2%, and 1.16 ulp.)

/// `p` in `erf(x) = x + x·p(x²)` on `|x| < 1`.
const SMALL: [f32; 7] = [
    0.128_379_17,
    -0.376_126_26,
    0.112_835_854,
    -0.026_853_813,
    0.005_188_329,
    -0.000_801_020_5,
    0.000_078_538_97,
];
/// `q` in `erfc(t) = exp(q(u) - t²)`, `u = (t - 2.5) / 1.5`, on `1 ≤ t ≤ 4`.
const LARGE: [f32; 8] = [
    -1.556_815_3,
    -0.529_020_9,
    0.126_243_35,
    -0.036_630_56,
    0.010_968_024,
    -0.003_272_256_3,
    0.000_704_133_65,
    -0.000_370_538_68,
];
const SMALL_LIMIT: f32 = 1.0;
const LARGE_LIMIT: f32 = 4.0;
const LARGE_MID: f32 = 2.5;
const LARGE_INV_HALF_WIDTH: f32 = 1.0 / 1.5;

const LOG2_E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split so that `n · LN2_HI` is exact for the `|n| ≤ 126` used in [`exp_nonpositive`].
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2²³ rounds to the nearest integer (no SSE4.1 `round`).
const ROUND: f32 = 12_582_912.0;
/// `e^f`'s Taylor coefficients.
const TAYLOR: [f32; 8] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
];

/// `e^r` for `r ≤ 0` (clamped at -87, where the result is ~1.6e-38; it is 0 to f32 precision
/// for what it multiplies here): `2^n · e^f`, `|f| ≤ ln2/2` (Cody–Waite), `e^f` by its Taylor
/// polynomial of degree 7 (relative error ~5e-9 before rounding).
#[inline(always)]
pub(crate) fn exp_nonpositive(r: f32) -> f32 {
    let r = r.clamp(-87.0, 0.0);
    let shifted = r * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let f = (r - n * LN2_HI) - n * LN2_LO;
    let mut p = TAYLOR[7];
    for &c in TAYLOR[..7].iter().rev() {
        p = p.mul_add(f, c);
    }
    // 2^n (n ∈ [-126, 0], a normal f32) from its exponent bits. `shifted`'s low mantissa bits
    // hold `n` (its bits are those of 1.5·2²³ plus n), so no float-to-int conversion is needed:
    // Rust's saturating `as i32` would keep the loop from vectorising.
    let scale = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(ROUND.to_bits())
            .wrapping_add(127)
            << 23,
    );
    p * scale
}

/// The error function, within 1 ulp (module docs); NaN gives ±1 (callers multiply by the
/// input, so NaN stays NaN), ±∞ gives ±1.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let mut p = SMALL[6];
    for &c in SMALL[..6].iter().rev() {
        p = p.mul_add(s, c);
    }
    let small = x.mul_add(p, x);

    let t = a.min(LARGE_LIMIT);
    let u = (t - LARGE_MID) * LARGE_INV_HALF_WIDTH;
    let mut q = LARGE[7];
    for &c in LARGE[..7].iter().rev() {
        q = q.mul_add(u, c);
    }
    let large = (1.0 - exp_nonpositive(q - t * t)).copysign(x);

    if a < SMALL_LIMIT {
        small
    } else {
        large
    }
}

/// [`exp_nonpositive`] and [`erf`] on 16 lanes at once (AVX-512 through pulp's `V4`), op for
/// op the scalar functions (so the same bits for every finite input): LLVM vectorises the
/// scalar loop only four lanes wide inside the GEMM's epilogue, where GELU took ~4% of a
/// MiniLM forward (docs/performance.md).
#[cfg(target_arch = "x86_64")]
pub(crate) mod lanes {
    use pulp::x86::V4;
    use pulp::{f32x16, u32x16};

    use super::{LARGE, LARGE_INV_HALF_WIDTH, LARGE_LIMIT, LARGE_MID, SMALL, SMALL_LIMIT};

    /// `v` in every lane (a function, not a closure: a closure's body would not be compiled
    /// for AVX-512 inside `V4::vectorize`).
    #[inline(always)]
    fn splat(simd: V4, v: f32) -> f32x16 {
        simd.splat_f32x16(v)
    }

    /// [`super::exp_nonpositive`] per lane (a NaN lane gives a number; callers multiply it by
    /// a NaN input, as the scalar callers do).
    #[inline(always)]
    pub(crate) fn exp_nonpositive(simd: V4, r: f32x16) -> f32x16 {
        let r = simd.min_f32x16(simd.max_f32x16(r, splat(simd, -87.0)), splat(simd, 0.0));
        let shifted = simd.add_f32x16(
            simd.mul_f32x16(r, splat(simd, super::LOG2_E)),
            splat(simd, super::ROUND),
        );
        let n = simd.sub_f32x16(shifted, splat(simd, super::ROUND));
        let f = simd.sub_f32x16(
            simd.sub_f32x16(r, simd.mul_f32x16(n, splat(simd, super::LN2_HI))),
            simd.mul_f32x16(n, splat(simd, super::LN2_LO)),
        );
        let mut p = splat(simd, super::TAYLOR[7]);
        for &t in super::TAYLOR[..7].iter().rev() {
            p = simd.mul_add_f32x16(p, f, splat(simd, t));
        }
        let bits: u32x16 = pulp::cast(shifted);
        let exponent = simd.wrapping_add_u32x16(
            simd.wrapping_sub_u32x16(bits, simd.splat_u32x16(super::ROUND.to_bits())),
            simd.splat_u32x16(127),
        );
        let scale: f32x16 = pulp::cast(simd.shl_const_u32x16::<23>(exponent));
        simd.mul_f32x16(p, scale)
    }

    /// [`super::erf`] per lane.
    #[inline(always)]
    pub(crate) fn erf(simd: V4, x: f32x16) -> f32x16 {
        let a = simd.abs_f32x16(x);
        let s = simd.mul_f32x16(x, x);
        let mut p = splat(simd, SMALL[6]);
        for &k in SMALL[..6].iter().rev() {
            p = simd.mul_add_f32x16(p, s, splat(simd, k));
        }
        let small = simd.mul_add_f32x16(x, p, x);

        let t = simd.min_f32x16(a, splat(simd, LARGE_LIMIT));
        let u = simd.mul_f32x16(
            simd.sub_f32x16(t, splat(simd, LARGE_MID)),
            splat(simd, LARGE_INV_HALF_WIDTH),
        );
        let mut q = splat(simd, LARGE[7]);
        for &k in LARGE[..7].iter().rev() {
            q = simd.mul_add_f32x16(q, u, splat(simd, k));
        }
        let e = exp_nonpositive(simd, simd.sub_f32x16(q, simd.mul_f32x16(t, t)));
        let magnitude: u32x16 = pulp::cast(simd.sub_f32x16(splat(simd, 1.0), e));
        let sign = simd.and_u32x16(pulp::cast(x), simd.splat_u32x16(0x8000_0000));
        let magnitude = simd.and_u32x16(magnitude, simd.splat_u32x16(0x7fff_ffff));
        let large: f32x16 = pulp::cast(simd.or_u32x16(magnitude, sign));

        simd.select_f32x16(
            simd.cmp_lt_f32x16(a, splat(simd, SMALL_LIMIT)),
            small,
            large,
        )
    }
}

#[cfg(test)]
mod tests {
    //! Accuracy against libm's f64 `erf` / `exp` (the values burn-ndarray rounds to f32).
    //!
    //! The coefficients were fitted with numpy: Lawson's iteratively reweighted least squares
    //! (converges to the minimax fit) on 4,000–6,000 Chebyshev nodes, `SMALL` for
    //! `erf(x)/x - 1` in `x²` weighted by `x / erf(x)` (relative error), `LARGE` for
    //! `ln(erfc(t)) + t²` in `u` weighted by `erfc(t)` (absolute error of `erf`); fit errors
    //! 1.2e-9 and 2.1e-11 before rounding the coefficients to f32.

    use super::{erf, exp_nonpositive};

    /// Distance from the exact value in units of the last place of the f32 result.
    fn ulps(got: f32, exact: f64) -> f64 {
        let rounded = exact as f32;
        let ulp = if rounded == 0.0 {
            f32::from_bits(1) as f64
        } else {
            let next = f32::from_bits(rounded.abs().to_bits() + 1) as f64;
            next - rounded.abs() as f64
        };
        (got as f64 - exact).abs() / ulp
    }

    /// Every 997th f32 in [-6, 6] (about 2.2 million values, all exponents) and the edges.
    fn points() -> impl Iterator<Item = f32> {
        let top = 6.0_f32.to_bits();
        (0..=top)
            .step_by(997)
            .chain([0, 1, SMALL_EDGE, SMALL_EDGE + 1, top])
            .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
    }
    const SMALL_EDGE: u32 = 0x3f80_0000 - 1;

    #[test]
    fn erf_is_within_one_ulp_and_mostly_rounded_as_libm() {
        let (mut worst, mut at, mut exact_ones, mut count) = (0.0, 0.0, 0usize, 0usize);
        for x in points() {
            let exact = libm::erf(x as f64);
            let got = erf(x);
            let e = ulps(got, exact);
            if e > worst {
                (worst, at) = (e, x);
            }
            exact_ones += usize::from(got == exact as f32);
            count += 1;
        }
        assert!(worst <= 1.0, "erf off by {worst} ulp at {at}");
        let share = exact_ones as f64 / count as f64;
        assert!(share > 0.98, "only {share} correctly rounded");
    }

    #[test]
    fn erf_edges() {
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-1e30), -1.0);
        // Odd, and tiny inputs keep their relative precision.
        for x in [1e-30_f32, 1e-8, 0.3, 0.999, 1.0, 2.5, 3.9] {
            assert_eq!(erf(-x), -erf(x), "{x}");
        }
        assert!(ulps(erf(1e-20), libm::erf(1e-20)) <= 1.0);
    }

    #[test]
    fn exp_is_within_one_ulp_over_its_range() {
        let mut worst = 0.0_f64;
        for i in 0..=870_000 {
            let r = -(i as f32) * 1e-4;
            worst = worst.max(ulps(exp_nonpositive(r), libm::exp(r as f64)));
        }
        assert!(worst <= 1.0, "exp off by {worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 2e-38);
    }
}
