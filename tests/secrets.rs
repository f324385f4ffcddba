//! The debug log, and secrets: the key secret and the proxy password never
//! appear in stdout, stderr, the log file or the status file, whatever
//! path a run takes.

mod util;

use predicates::prelude::*;
use std::process::Command;
use util::agent::{Agent, Sim, bin};

const SECRET: &str = "S3cr3t-Key-Value-7781";
const PROXY_PASS: &str = "Pr0xy-Pass-Word-4412";

#[test]
fn debug_lines_go_to_the_log_file_or_the_state_dir_with_a_note() {
    let sim = Sim::start(&["--events", "20"]);
    let a = Agent::new(&sim.url());
    a.file_cmd().arg("-d").assert().success();
    let log = a.log();
    assert!(
        log.contains("DEBUG") && log.contains("GET http://127.0.0.1:"),
        "{log}"
    );
    assert!(log.contains("Investigate: exported"), "{log}");

    // Without -d: the summary, no debug lines.
    let b = Agent::new(&sim.url());
    b.file_cmd().assert().success();
    assert!(b.log().contains("exported") && !b.log().contains("DEBUG"));

    // An unwritable log path: the state directory, and one note on stderr.
    let c = Agent::new(&sim.url());
    // With -d or without: a log file named on the command line that
    // cannot be written is one warning, on every run.
    for debug in [true, false] {
        let out = Command::new(bin())
            .arg("--config")
            .arg(c.config_path())
            .args(["--log-file", "/nonexistent-dir/siem-agent.log"])
            .args(if debug { &["-d"][..] } else { &[] })
            .args(["-o", "FILE", "-f"])
            .arg(c.path("out.log"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr
                .matches(
                    "siem-agent: warning: cannot write the log file /nonexistent-dir/siem-agent.log"
                )
                .count(),
            1,
            "{stderr}"
        );
        if debug {
            let fallback = std::fs::read_to_string(c.path("siem-agent.log")).unwrap();
            assert!(fallback.contains("DEBUG"), "{fallback}");
        }
    }
}

#[test]
fn errors_reach_stderr_and_the_log() {
    // Two failures for each of the two streams (read at once, each
    // retried once).
    let sim = Sim::start(&["--events", "20", "--faults", "500,500,500,500"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--retries", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("HTTP 500"));
    assert!(
        a.log().contains("ERROR") && a.log().contains("gave up after 2 attempts"),
        "{}",
        a.log()
    );
}

#[test]
fn secrets_never_appear_in_any_output() {
    let sim = Sim::start(&[
        "--events",
        "30",
        "--proxy-auth",
        &format!("bob:{PROXY_PASS}"),
        "--key-secret",
        SECRET,
    ]);
    let a = Agent::with_config(&serde_json::json!({
        "api_server": "http://127.0.0.1:9/", "key_id": "demo-key", "key_secret": SECRET, "tenant": "demo"
    }));
    let proxy = format!("127.0.0.1:{}", sim.port);
    let basic = siem_agent_base64(&format!("demo-key:{SECRET}"));
    let mut outputs = Vec::new();
    let mut run = |extra: &[&str], env_pass: &str| {
        let out = a
            .cmd()
            .args(["-d", "-o", "STREAM", "-s", "STDOUT", "--retries", "1"])
            .args(extra)
            .env("SIEM_AGENT_PROXY_PASSWORD", env_pass)
            .output()
            .unwrap();
        outputs.push(String::from_utf8_lossy(&out.stdout).to_string());
        outputs.push(String::from_utf8_lossy(&out.stderr).to_string());
    };
    // Success through the proxy, with debug lines.
    run(&["--proxy", &proxy, "-u", "bob"], PROXY_PASS);
    // The proxy rejects a wrong password; then the API rejects a wrong secret.
    run(&["--proxy", &proxy, "-u", "bob"], "not-the-password");
    std::fs::write(a.config_path(), serde_json::json!({
        "api_server": sim.url(), "key_id": "demo-key", "key_secret": format!("{SECRET}-wrong"), "tenant": "demo"
    }).to_string()).unwrap();
    run(&[], PROXY_PASS);
    // Credentials in the proxy URL, and an unreachable proxy.
    run(
        &["--proxy", &format!("http://bob:{PROXY_PASS}@127.0.0.1:9")],
        "",
    );
    // A corrupt state file; an unreachable output.
    std::fs::write(a.path("export_log.state"), "{").unwrap();
    run(&[], PROXY_PASS);
    std::fs::remove_file(a.path("export_log.state")).unwrap();
    run(
        &["-o", "REMOTE", "--socket_type", "TCP", "-t", "127.0.0.1:9"],
        PROXY_PASS,
    );

    outputs.push(a.log());
    outputs.push(std::fs::read_to_string(a.path("last_job.status")).unwrap_or_default());
    assert!(a.log().contains("DEBUG") && a.log().contains("ERROR"));
    for text in &outputs {
        for s in [SECRET, PROXY_PASS, basic.as_str()] {
            assert!(!text.contains(s), "{s} leaked in: {text}");
        }
    }
}

fn siem_agent_base64(s: &str) -> String {
    // Independent of the agent's encoder: standard base64 via the shell.
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}
