//! The built-in demo world (`recformer demo`).

pub mod synth;
