//! Test plugins built from `tests/fixtures/plugins/` for wasm32-wasip2, once
//! per test process, in a target dir of their own (the outer cargo holds the
//! lock of the main one).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("EVISTREAM_FIXTURES_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(home).join(".cache/evistream/fixtures-target")
}

/// Builds the fixtures (quietly, cached by cargo) and returns the folder of the `.wasm` files.
pub fn wasm_dir() -> PathBuf {
    BUILT
        .get_or_init(|| {
            let root = super::ops::repo_root().join("tests/fixtures/plugins");
            let target = target_dir();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(&root)
                .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
                .arg("--target-dir")
                .arg(&target);
            // The host build's flags are not for the wasm target.
            for v in [
                "RUSTFLAGS",
                "CARGO_ENCODED_RUSTFLAGS",
                "CARGO_BUILD_TARGET",
                "CARGO_TARGET_DIR",
            ] {
                cmd.env_remove(v);
            }
            let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "building test plugins failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(target.join("wasm32-wasip2/release"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The bytes of fixture `name` (crate name with `_`, e.g. `hostile_converter`).
pub fn wasm(name: &str) -> Vec<u8> {
    let p = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A one-page PDF whose text is `lines` (Helvetica 11 pt, top to bottom):
/// a small, valid document for tests that need many distinct papers.
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    evistream::plugins::conformance::samples::text_pdf(&[lines])
}
