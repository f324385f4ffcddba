//! The stages' boundaries, checked on the source text: `source/`, `sink/`
//! and `encode/` never import from `cli/` (they own their option types;
//! the command line builds them), a sink never from a source, each vendor
//! reads its own keys of config.json (no file of `source/` imports
//! `config.rs`, which imports no vendor), and `main.rs` only dispatches to
//! the library's modes (`app/`).

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

/// What `main.rs` may name of the library: the command line it parses,
/// the modes it calls (`commands`: completions and the man page), and
/// their exit codes.
const MAIN_MAY_USE: [&str; 5] = ["app", "cli", "commands", "exit_codes", "simulate"];

/// The library modules `text` names (`siem_agent::x`, `siem_agent::{x, y}`).
fn library_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("siem_agent::") {
        let rest = &text[i + "siem_agent::".len()..];
        // A group names several; a path, its first segment only.
        let names = match rest.strip_prefix('{') {
            Some(group) => &group[..group.find('}').unwrap_or(group.len())],
            None => rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or(""),
        };
        for name in names.split(',') {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn main_only_dispatches() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 150,
        "src/main.rs has {lines} lines: what it does beyond parsing and dispatching belongs in src/app"
    );
    let others: Vec<String> = library_modules(&text)
        .into_iter()
        .filter(|m| !MAIN_MAY_USE.contains(&m.as_str()))
        .collect();
    assert!(
        others.is_empty(),
        "src/main.rs uses {others:?}: call a mode of src/app instead"
    );
    // The check can fail: the library's modes themselves name others.
    let app =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app/export.rs"))
            .unwrap()
            .replace("crate::", "siem_agent::");
    assert!(library_modules(&app).iter().any(|m| m == "state"));
}

/// The vendors' files of `source/` (one per vendor).
const VENDORS: [&str; 4] = ["cloudsoc", "mcas", "cirrus", "rest"];

#[test]
fn sources_do_not_import_the_config_file() {
    let found = offenders("source", &["crate::config", "siem_agent::config"]);
    assert!(
        found.is_empty(),
        "source/ imports config.rs (each vendor reads its own keys, see source::keys):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_config_file_imports_no_vendor() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let found = vendor_lines(&text);
    assert!(
        found.is_empty(),
        "src/config.rs names a vendor's module (hand its keys to source::VendorConfig):\n{}",
        found.join("\n")
    );
    // The check can fail: the sources' own module names every vendor.
    let mod_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/source/mod.rs");
    let text = std::fs::read_to_string(mod_rs)
        .unwrap()
        .replace("cloudsoc::", "source::cloudsoc::");
    assert!(!vendor_lines(&text).is_empty());
}

/// The lines of `text` (comments aside) that name a vendor's module.
fn vendor_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|code| {
            VENDORS.iter().any(|v| {
                code.contains(&format!("source::{v}")) || code.contains(&format!("source::{{{v}"))
            })
        })
        .map(|l| l.trim().to_string())
        .collect()
}
