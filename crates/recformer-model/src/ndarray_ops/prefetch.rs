//! A hint to the CPU to fetch a cache line ahead of its use.
//!
//! A GEMM's later blocks of the sum add to C rows stored by the earlier ones. When C is larger
//! than the caches (the MiniLM FFN's `[rows, 1536]` up-projection, whose last block also runs
//! the GELU), every tile's epilogue waited on those rows: ~5% of an `encode-items` profile on
//! one `vaddps` (docs/performance.md). Prefetching a tile's rows before its micro-kernel runs
//! overlaps the fetch with the kernel's FMAs.
//!
//! The model crate's second `unsafe` exception (after [`super::filled`]; the third is the GEMM's
//! AMX path): one line, a prefetch, which reads nothing the program can observe.

/// Asks for the cache line holding `x` in every cache level (`prefetcht0`); nothing on CPUs
/// other than x86-64.
#[inline(always)]
pub(crate) fn prefetch(x: &f32) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `prefetcht0` is a hint: it neither faults nor changes memory or registers the
    // program sees, and `x` is a valid reference anyway. (`_mm_prefetch` is an `unsafe fn`
    // only because it takes a raw pointer; SSE, which it needs, is in every x86-64 CPU.)
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const f32).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
