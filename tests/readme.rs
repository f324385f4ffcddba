//! The README's examples hold: every JSON block is JSON, and every one that
//! is a whole config.json loads as the agent reads it (no error, no unknown
//! key); every `siem-agent` command line in a shell block parses as the
//! agent's command line. (The worked examples also run against the
//! simulator: the REST ones in `tests/rest.rs`, the quick start's `--demo`
//! and `--dry-run` in `tests/newuser.rs`, the tenants in `tests/tenants.rs`.)

use siem_agent::config::Config;
use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The fenced blocks of language `lang`, with their line numbers.
fn blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => {
                current = Some((i + 1, String::new()));
            }
            Some(_) if line.trim_start() == "```" => out.push(current.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_config_example_loads_as_the_agent_reads_it() {
    let text = readme();
    let json = blocks(&text, "json");
    assert!(json.len() >= 10, "found {} JSON blocks", json.len());
    let mut configs = 0;
    for (line, body) in json {
        let trimmed = body.trim();
        // A fragment (`"auth": {...}`) is checked as the object it is in.
        let whole = if trimmed.starts_with('"') {
            format!("{{{trimmed}}}")
        } else {
            trimmed.to_string()
        };
        let value: serde_json::Value = serde_json::from_str(&whole)
            .unwrap_or_else(|e| panic!("README.md line {line}: not JSON ({e}):\n{body}"));
        let Some(obj) = value.as_object() else {
            continue;
        };
        let is_config = obj.contains_key("source") || obj.contains_key("api_server");
        if !is_config {
            continue;
        }
        configs += 1;
        // A secret named by a file: a file of that secret, mode 600.
        let dir = tempfile::tempdir().unwrap();
        let mut value = value.clone();
        files_in_place(&mut value, dir.path());
        let whole = value.to_string();
        let path = Path::new("README.md");
        let config = Config::parse(path, whole.as_bytes())
            .unwrap_or_else(|e| panic!("README.md line {line}: {e}\n{body}"));
        assert!(
            config.unknown.is_empty(),
            "README.md line {line}: unknown keys {:?}",
            config.unknown
        );
    }
    assert!(configs >= 8, "found {configs} configs");
}

/// Points every `*_file` key of `v` at a new secret file in `dir`.
fn files_in_place(v: &mut serde_json::Value, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in obj.iter_mut() {
            if k.ends_with("_file") && val.is_string() {
                let p = dir.join(k);
                std::fs::write(&p, "example-secret\n").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
                *val = p.display().to_string().into();
            } else {
                files_in_place(val, dir);
            }
        }
    }
}

#[test]
fn every_command_line_parses() {
    use clap::Parser;
    let text = readme();
    let mut lines = 0;
    for (at, body) in blocks(&text, "sh").into_iter().chain(blocks(&text, "")) {
        for raw in body.lines() {
            // The command, without a comment, a sudo or a cron schedule.
            let cmd = raw.split(" #").next().unwrap_or("").trim();
            let cmd = cmd.strip_prefix("sudo -u siem-agent ").unwrap_or(cmd);
            let cmd = cmd.strip_prefix("sudo ").unwrap_or(cmd);
            let cmd = cmd
                .strip_prefix("*/10 * * * * ")
                .unwrap_or(cmd)
                .trim_start_matches("/usr/local/bin/")
                .trim_start_matches("/usr/bin/");
            if !cmd.starts_with("siem-agent ") || cmd.contains('|') || cmd.contains('$') {
                continue;
            }
            let words = shell_words(cmd);
            let args = siem_agent::cli::hoist_subcommand(words.iter().map(Into::into).collect());
            if let Err(e) = siem_agent::cli::Cli::try_parse_from(args) {
                panic!(
                    "README.md block at line {at}: {cmd}: {}",
                    siem_agent::cli::one_line_error(&e)
                );
            }
            lines += 1;
        }
    }
    assert!(lines >= 5, "found {lines} command lines");
}

/// Words as sh splits them (quotes, no expansion).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, ' ') => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}
