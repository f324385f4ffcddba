//! The command line through the binary: version, help, and one-line errors
//! with exit status 1 for every wrong flag or value.

mod util;

use predicates::prelude::*;
use util::agent::bin;

fn agent() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(bin());
    c.timeout(std::time::Duration::from_secs(30));
    c
}

#[test]
fn version_prints_and_exits_0() {
    for flag in ["-v", "--version"] {
        agent()
            .arg(flag)
            .assert()
            .success()
            .stdout(format!("siem-agent {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn help_lists_the_original_options() {
    let out = agent()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for opt in [
        "--proxy",
        "--username",
        "--password",
        "--severity",
        "--app",
        "--object_type",
        "--activity_type",
        "--elastica_app",
        "--rate",
        "--output",
        "--start_date",
        "--stream",
        "--target",
        "--socket_type",
        "--filename",
        "--max_bytes",
        "--backup_count",
        "--config",
        "--state-dir",
        "--format",
        "--max-events",
        "--demo",
    ] {
        assert!(help.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn wrong_flags_and_values_get_one_line_naming_them() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--bogus"], &["--bogus"]),
        (
            &["-o", "PRINTER"],
            &["--output", "PRINTER", "SYSLOG, REMOTE, STREAM, FILE"],
        ),
        (
            &["--severity", "extreme"],
            &["--severity", "extreme", "informational"],
        ),
        (
            &["--elastica_app", "other"],
            &["--elastica-app", "investigate, detect"],
        ),
        (&["--socket_type", "SCTP"], &["--socket-type", "UDP, TCP"]),
        (&["-s", "STDIN"], &["--stream", "STDOUT, STDERR"]),
        (
            &["--start_date", "2024-13-01"],
            &["--start-date", "YYYY-MM-DD"],
        ),
        (&["--rate=-5"], &["--rate", "-5"]),
        (&["--rate", "fast"], &["--rate", "fast"]),
        (&["--max_bytes", "lots"], &["--max-bytes", "lots"]),
        (
            &["--format", "xml"],
            &["--format", "cef, leef, leef1, kv, json, rfc5424"],
        ),
        (&["-o", "FILE"], &["--filename"]),
        (
            &["-o", "REMOTE", "-t", "nohost:99999"],
            &["--target", "nohost"],
        ),
        (
            &["-o", "REMOTE", "-t", "host:70000"],
            &["--target", "host:70000"],
        ),
        (&["--proxy", "ftp://x:1"], &["--proxy"]),
        (&["-u", "bob"], &["--proxy"]),
    ];
    for (args, needles) in cases {
        let out = agent().args(*args).assert().code(1).get_output().clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        // One line, and a close suggestion on a line of its own.
        assert_eq!(
            stderr.lines().filter(|l| !l.starts_with("  tip: ")).count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
        for n in *needles {
            assert!(stderr.contains(n), "{args:?}: {stderr:?} lacks {n:?}");
        }
    }
}

#[test]
fn values_are_case_insensitive_where_the_original_was() {
    // Reaches the config check, so the flags were accepted.
    let dir = tempfile::tempdir().unwrap();
    agent()
        .args([
            "-o",
            "stream",
            "-s",
            "stdout",
            "--socket_type",
            "tcp",
            "--elastica_app",
            "Detect",
            "--severity",
            "HIGH",
        ])
        .args([
            "--config",
            "/nonexistent/siem-agent-test/config.json",
            "--state-dir",
        ])
        .arg(dir.path())
        .args(["--log-file", "/dev/null"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("config.json: cannot read"));
}
