//! The `recformer` command-line interface (the binary in `src/main.rs`) and the one piece of it
//! that tests and examples reuse: [`synth`], the synthetic catalogue of `recformer demo`.
//!
//! Library users depend on the `recformer` facade (or the three library crates); this crate
//! carries the binary's own dependencies (clap, indicatif, plotters, mimalloc, anyhow).
#![warn(missing_docs)]

pub mod synth;
