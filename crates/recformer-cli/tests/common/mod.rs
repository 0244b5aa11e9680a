//! Helpers shared by the CLI integration tests: run the `recformer` binary, expect success or a
//! helpful failure.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn recformer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recformer"))
        .args(args)
        .output()
        .expect("run the recformer binary")
}

pub fn ok(args: &[&str]) -> String {
    let out = recformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "recformer {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn fails(args: &[&str], expected: &str) {
    let out = recformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "recformer {args:?} should fail");
    assert!(
        stderr.contains(expected),
        "recformer {args:?}: expected {expected:?} in:\n{stderr}"
    );
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
