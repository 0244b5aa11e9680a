//! The binaries' global allocator: mimalloc, told to keep the memory it frees.
//!
//! Tensor buffers are large and short-lived. glibc `malloc` serves each one with `mmap` and
//! returns it on free; mimalloc reuses them, but by default (v3) it still gives freed memory
//! back to the OS after 1 s (its `purge_delay`), and the next allocation pays page faults and the
//! kernel's zeroing of every page. A training step takes longer than that. In a training step on the minilm shape (64 × 64 tokens,
//! NdArray), `clear_page_erms` was 49% of all cycles; keeping the memory cut the step from
//! 6.4 s to 4.3 s for 5% more peak RSS (docs/performance.md). The process's peak memory is what
//! it keeps, so its footprint stays at its high-water mark.
//!
//! Shared by `src/main.rs` and the criterion benches (`#[path]` include), not part of the
//! library: a library never chooses the allocator of the program that links it.

/// mimalloc as the global allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_e` enum of mimalloc v3's `mimalloc.h` (the version
/// bundled by libmimalloc-sys 0.1.49, pinned in the workspace); libmimalloc-sys has no constant
/// for it.
pub const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS, unless `MIMALLOC_PURGE_DELAY` is set
/// (mimalloc reads its environment at process start; an explicit setting wins). Call it first
/// thing in `main`, before other threads exist.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores one integer option in mimalloc's option table; it takes no
    // pointers, and the option index is a valid `mi_option_t` of the bundled mimalloc version.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
