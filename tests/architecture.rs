//! The stages' boundaries, checked on the source text: `source/`, `sink/`
//! and `encode/` never import from `cli/` (they own their option types;
//! the command line builds them), and a sink never from a source.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    assert!(!out.is_empty(), "no Rust files in {}", dir.display());
    out
}

/// The lines of the stage `stage` that name any of `forbidden`.
fn offenders(stage: &str, forbidden: &[&str]) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(stage);
    let mut found = Vec::new();
    for file in rust_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn stages_do_not_import_the_command_line() {
    for stage in ["source", "sink", "encode"] {
        let found = offenders(stage, &["crate::cli", "siem_agent::cli", "super::cli"]);
        assert!(
            found.is_empty(),
            "{stage}/ imports from cli/:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn sinks_do_not_import_sources() {
    let found = offenders("sink", &["crate::source", "siem_agent::source"]);
    assert!(
        found.is_empty(),
        "sink/ imports from source/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_import() {
    // The checker itself must be able to fail: the command line imports
    // its stages, so looking for them there finds lines.
    assert!(!offenders("cli", &["crate::sink"]).is_empty());
}
