//! Loop bodies compiled for the widest vector instruction set of the CPU they run on, chosen at
//! run time.
//!
//! The workspace builds for baseline x86-64, so the compiler vectorises the element-wise kernels
//! ([`super::gelu`], [`super::softmax`], [`super::dropout`], [`super::layer_norm`]) four f32
//! lanes wide (SSE2), and it forbids `unsafe`, so it cannot call `#[target_feature]` functions
//! itself. `pulp` (the dispatch under the `gemm` crate of Burn's Flex backend) does it:
//! `Arch::new().dispatch(op)` calls `op.with_simd` inside a function compiled for x86-64-v4
//! (AVX-512) or x86-64-v3 (AVX2 + FMA) when the CPU has them, the baseline otherwise; what is
//! inlined into it is vectorised at that width (16 lanes with AVX-512).
//!
//! Closures are not inlined across that boundary (measured: a GELU loop in a closure stayed on
//! SSE2 registers), so a loop body is a [`Kernel`] whose `run` is `#[inline(always)]`, and so is
//! everything it calls.
//!
//! **Same bits on every instruction set.** The kernels are the same IEEE operations in the same
//! order whatever the width: the compiler does not reassociate float operations, and Rust never
//! fuses a multiply and an add into an FMA by itself. Each kernel's module has a test that runs it
//! on the baseline and on the widest set and compares the bits (`same_bits_on_every_width` in
//! this module's tests).

use pulp::{Arch, Simd, WithSimd};

/// A loop body for [`vectorized`]: `run` and everything it calls are `#[inline(always)]`.
pub(crate) trait Kernel {
    type Output;

    fn run(self) -> Self::Output;
}

/// `kernel.run()` compiled for the widest instruction set this CPU has.
#[inline]
pub(crate) fn vectorized<K: Kernel>(kernel: K) -> K::Output {
    on(Arch::new(), kernel)
}

/// `kernel.run()` compiled for `arch` (the tests compare it with the baseline).
#[inline]
pub(crate) fn on<K: Kernel>(arch: Arch, kernel: K) -> K::Output {
    arch.dispatch(Dispatch(kernel))
}

/// pulp's view of a [`Kernel`].
struct Dispatch<K>(K);

impl<K: Kernel> WithSimd for Dispatch<K> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> K::Output {
        self.0.run()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Kernels on the baseline and on the widest instruction set of the machine.

    pub(crate) use super::on;
    pub(crate) use pulp::Arch;

    /// `run(arch)` (a kernel run through [`on`], its output returned) on the baseline
    /// (`Arch::Scalar`: SSE2 on x86-64) and on the widest set: equal bit for bit.
    pub(crate) fn same_bits_on_every_width(what: &str, run: impl Fn(Arch) -> Vec<f32>) {
        let widest = Arch::new();
        let (baseline, wide) = (run(Arch::Scalar), run(widest));
        assert_eq!(baseline.len(), wide.len(), "{what}");
        let differing = baseline
            .iter()
            .zip(&wide)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differing,
            0,
            "{what}: {differing} of {} results differ between the baseline and {widest:?}",
            baseline.len()
        );
    }

    /// The widest set is used where the CPU has one (`--nocapture` prints which).
    #[test]
    fn dispatches_to_the_widest_set() {
        let arch = Arch::new();
        eprintln!("widest instruction set: {arch:?}");
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            assert!(
                !matches!(arch, Arch::Scalar),
                "AVX2 + FMA present, not used"
            );
        }
    }
}
