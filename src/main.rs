//! `recformer`: the command-line interface of recformer-rs.
//!
//! Every subcommand prints its results on stdout (tables or JSON) and its progress on stderr.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed tensor buffers for reuse; glibc malloc returns every large one to the OS
/// and pays page faults and zeroing on the next allocation (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
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
