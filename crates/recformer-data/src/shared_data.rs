//! Where tests, benches and examples find the real data (Amazon Scientific, tokenizers,
//! all-MiniLM-L6-v2): `$RECFORMER_DATA_DIR`, else `../shared/data` beside the workspace. The data
//! is never committed.
//!
//! Tests that need it call [`test_data_dir`]: on a fresh clone without the data they are
//! skipped with a line on the terminal saying which and why; where the data was asked for
//! (`RECFORMER_DATA_DIR` set, or `RECFORMER_REQUIRE_DATA=1` as `.ci/run` sets) a missing file
//! fails the test instead.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Environment variable naming the shared data directory.
pub const DATA_DIR_VAR: &str = "RECFORMER_DATA_DIR";
/// Environment variable that makes missing data a test failure instead of a skip.
pub const REQUIRE_DATA_VAR: &str = "RECFORMER_REQUIRE_DATA";

/// The shared data directory: `$RECFORMER_DATA_DIR`, else `shared/data` beside the workspace
/// whose root is `workspace_root` (pass `concat!(env!("CARGO_MANIFEST_DIR"), "/..")` or similar).
pub fn shared_data_dir(workspace_root: &Path) -> PathBuf {
    match std::env::var_os(DATA_DIR_VAR) {
        Some(d) => PathBuf::from(d),
        None => workspace_root.join("../shared/data"),
    }
}

/// For tests: the shared data directory if every path in `needs` (relative to it) exists.
/// Otherwise the calling test (named after its thread, as libtest names them) is skipped (`None`, with a line on the terminal that bypasses the
/// test harness's capture, so `cargo test` lists what it skipped) or, when the data was asked for
/// (`RECFORMER_DATA_DIR` set or `RECFORMER_REQUIRE_DATA=1`), fails.
///
/// # Panics
/// When the data was asked for and a needed path is missing.
pub fn test_data_dir(workspace_root: &Path, needs: &[&str]) -> Option<PathBuf> {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let dir = shared_data_dir(workspace_root);
    let missing: Vec<&str> = needs
        .iter()
        .copied()
        .filter(|n| !dir.join(n).exists())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    let asked = std::env::var_os(DATA_DIR_VAR).is_some()
        || std::env::var(REQUIRE_DATA_VAR).as_deref() == Ok("1");
    let what = format!(
        "{test}: real data not found in {} (missing {})",
        dir.display(),
        missing.join(", ")
    );
    if asked {
        panic!("{what}; set {DATA_DIR_VAR} to the shared data directory");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what}; set {DATA_DIR_VAR} to run it"
    );
    None
}
