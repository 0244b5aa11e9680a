//! `recformer`: the command-line interface of recformer-rs.
//!
//! Every subcommand prints its results on stdout (tables or JSON) and its progress on stderr.

mod alloc;
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let args = cli::Cli::parse();
    if args.inference_only() {
        one_gemm_thread_per_batch();
    }
    init_logger(args.log_level());
    match on_the_thread_pool(move || cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// NdArray's matrix products (matrixmultiply) start their own threads, `MATMUL_NUM_THREADS`
/// of them (default: every core, at most 4). An inference command already runs one batch per
/// core (`recformer_train::waves`), and threaded products inside each batch oversubscribe
/// the cores: encoding the 4,344 Scientific items with MiniLM took 89 s that way against 74 s
/// with one thread per product (2 cores, docs/performance.md). Set before any thread exists;
/// an explicit `MATMUL_NUM_THREADS` wins. Flex's products run on rayon and are not affected.
fn one_gemm_thread_per_batch() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
}

/// Runs the command on one of rayon's worker threads instead of the main thread.
///
/// The CPU backends split each op into rayon tasks. Called from outside the pool, every op
/// hands its tasks to the pool and the calling thread sleeps until they are done: a wake-up on
/// both sides of hundreds of ops per forward pass, and a third thread on two cores. From a
/// worker, the op's first tasks run on the thread that made them and the other workers steal
/// the rest. Measured on the 2-core build machine (same run, alternated builds, three rounds):
/// mini training step 8 × 512 from 819–851 ms to 763–788 ms, MiniLM step 64 × 64 from
/// 1,520–1,595 ms to 1,434–1,445 ms, forward passes 2–4% faster (docs/performance.md). Worker
/// threads get 16 MiB of stack (the main thread has 8 MiB, rayon's default is 2 MiB).
fn on_the_thread_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    // Fails only if the pool already exists (it does not yet: nothing has used rayon).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(16 << 20)
        .build_global();
    rayon::scope(move |_| work())
}

/// Logs on stderr as plain `LEVEL target: message` lines: the libraries' warnings (and more
/// with `-v`) reach the user; `RUST_LOG` overrides the level.
fn init_logger(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .format_timestamp(None)
        .format_target(true)
        .parse_env("RUST_LOG");
    // A second init (tests) keeps the first logger.
    let _ = builder.try_init();
}

/// The error and its causes, skipping causes whose text the message already contains (the
/// library errors embed their source's text).
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::alloc::{keep_freed_memory, MI_OPTION_PURGE_DELAY};

    #[test]
    #[allow(unsafe_code)]
    fn the_allocator_option_index_is_purge_delay() {
        // purge_delay defaults to 1000 ms in mimalloc v3; its neighbours (eager_commit_delay,
        // use_numa_nodes) default to 1 and 0. A wrong index would read one of those.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one integer option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            before, 1000,
            "option {MI_OPTION_PURGE_DELAY} is not purge_delay"
        );
        keep_freed_memory();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, -1);
    }
}
