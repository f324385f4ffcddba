//! Every output through the binary: STREAM, FILE with rotation, the demo,
//! and (with a real rsyslog started by the test) SYSLOG and REMOTE over
//! UDP, TCP and unix sockets.

mod util;

use predicates::prelude::*;
use serde_json::Value;
use util::agent::{Agent, Sim, read_json_lines};
use util::rsyslog::Rsyslog;

#[test]
fn stream_stdout_and_stderr_carry_one_payload_per_line() {
    let sim = Sim::start(&["--events", "40"]);
    let a = Agent::new(&sim.url());
    let out = a
        .cmd()
        .args([
            "-o",
            "stream",
            "-s",
            "stdout",
            "--format",
            "json",
            "--severity",
            "all",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 44);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // STDERR is the default stream; CEF the default format.
    let b = Agent::new(&sim.url());
    let out = b
        .cmd()
        .args(["-o", "STREAM", "--severity", "all"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("CEF:0|")).count(), 44);
}

#[test]
fn a_closed_stdout_is_an_error_and_the_cursor_stays() {
    let sim = Sim::start(&["--events", "3000"]);
    let a = Agent::new(&sim.url());
    // A reader that takes nothing: the pipe is closed before the first write.
    let mut child = a
        .process()
        .args(["-o", "STREAM", "-s", "STDOUT", "--severity", "all"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line, without the OS's error text.
    assert!(
        stderr.contains("the reader of stdout closed it") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert!(a.state().is_none(), "cursor moved past logs nobody read");
}

#[test]
fn file_output_rotates_by_size_with_the_original_names() {
    let sim = Sim::start(&["--events", "600"]);
    let a = Agent::new(&sim.url());
    let out = a.path("siem.log");
    a.cmd()
        .args([
            "-o",
            "FILE",
            "--format",
            "json",
            "--severity",
            "all",
            "--max_bytes",
            "20000",
            "--backup_count",
            "3",
            "-f",
        ])
        .arg(&out)
        .assert()
        .success();
    let mut total = 0;
    let mut newer_first_line = 0;
    for name in ["siem.log", "siem.log.1", "siem.log.2", "siem.log.3"] {
        let text =
            std::fs::read_to_string(a.path(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(text.ends_with('\n'), "{name} ends inside a line");
        assert!(
            text.len() < 20_000 || text.lines().count() == 1,
            "{name} is {} bytes",
            text.len()
        );
        // Full except for the current file: the line that opens the next
        // newer file would not have fit.
        if name != "siem.log" {
            assert!(
                text.len() + newer_first_line >= 20_000,
                "{name} rolled over early ({} bytes, and the next line {newer_first_line})",
                text.len()
            );
        }
        newer_first_line = text.lines().next().map_or(0, |l| l.len() + 1);
        total += read_json_lines(&a.path(name)).len();
    }
    assert!(!a.path("siem.log.4").exists());
    assert!(total < 660, "older files were not removed");

    // backup_count 0: never rolled over.
    let b = Agent::new(&sim.url());
    b.cmd()
        .args([
            "-o",
            "FILE",
            "--format",
            "json",
            "--severity",
            "all",
            "--max_bytes",
            "20000",
            "-f",
        ])
        .arg(b.path("one.log"))
        .assert()
        .success();
    assert_eq!(read_json_lines(&b.path("one.log")).len(), 660);
    assert!(!b.path("one.log.1").exists());
}

#[test]
fn demo_runs_a_real_export_to_stdout() {
    let out = assert_cmd::Command::new(util::agent::bin())
        .arg("--demo")
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success()
        .stderr(predicate::str::contains("from the simulator"))
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // It says how many it exported: the lines it printed.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("demo: exported {} logs (", lines.len())),
        "{err}"
    );
    assert!(lines.len() > 50, "{} lines", lines.len());
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("CEF:0|Symantec|CloudSOC|"))
    );
}

fn rsyslog_agent(sim: &Sim) -> Agent {
    Agent::new(&sim.url())
}

#[test]
fn syslog_output_reaches_the_local_syslog_socket() {
    let rs = Rsyslog::builder().unix_socket().start();
    let sim = Sim::start(&["--events", "100"]);
    let a = rsyslog_agent(&sim);
    a.cmd()
        .args(["--severity", "all", "--syslog-socket"])
        .arg(rs.unix_socket_path())
        .assert()
        .success();
    let got = rs.wait_for(110, std::time::Duration::from_secs(20));
    assert_eq!(got.len(), 110);
    for m in &got {
        assert_eq!(m.app_name, "siem-agent", "{m:?}");
        assert!(
            m.msg.trim_start().starts_with("CEF:0|Symantec|CloudSOC|"),
            "{m:?}"
        );
    }
}

#[test]
fn remote_udp_and_tcp_reach_a_real_rsyslog_as_rfc5424() {
    let rs = Rsyslog::builder().udp().tcp().start();
    let sim = Sim::start(&["--events", "200", "--detect-events", "20"]);
    let host = util::agent::hostname();

    let a = rsyslog_agent(&sim);
    a.cmd()
        .args(["-o", "REMOTE", "--severity", "all", "--rate", "2000", "-t"])
        .arg(rs.udp_addr().to_string())
        .assert()
        .success();
    let got = rs.wait_for(220, std::time::Duration::from_secs(20));
    check_5424(&got, &host);

    for framing in ["lf", "octet-counted"] {
        let b = rsyslog_agent(&sim);
        b.cmd()
            .args([
                "-o",
                "REMOTE",
                "--socket_type",
                "TCP",
                "--framing",
                framing,
                "--severity",
                "all",
                "-t",
            ])
            .arg(rs.tcp_addr().to_string())
            .assert()
            .success();
    }
    let got = rs.wait_for(660, std::time::Duration::from_secs(20));
    assert_eq!(got.len(), 660, "every message once, none split");
    check_5424(&got, &host);
}

fn check_5424(got: &[util::rsyslog::Received], host: &str) {
    for m in got {
        assert_eq!(m.version, "1", "{m:?}");
        assert_eq!(m.hostname, host, "{m:?}");
        assert_eq!(m.app_name, "siem-agent", "{m:?}");
        assert!(m.msgid == "Investigate" || m.msgid == "Detect", "{m:?}");
        assert!(m.msg.starts_with("CEF:0|Symantec|CloudSOC|"), "{m:?}");
    }
}

#[test]
fn remote_unix_socket_target_gets_the_local_syslog_form() {
    let rs = Rsyslog::builder().unix_socket().start();
    let sim = Sim::start(&["--events", "30"]);
    let a = rsyslog_agent(&sim);
    a.cmd()
        .args([
            "-o",
            "REMOTE",
            "--format",
            "json",
            "--severity",
            "all",
            "-t",
        ])
        .arg(rs.unix_socket_path())
        .assert()
        .success();
    let got = rs.wait_for(33, std::time::Duration::from_secs(20));
    assert_eq!(got.len(), 33);
    for m in &got {
        assert_eq!(m.app_name, "siem-agent", "{m:?}");
        let v: Value =
            serde_json::from_str(m.msg.trim_start()).unwrap_or_else(|e| panic!("{e}: {m:?}"));
        assert!(v["app"] == "Investigate" || v["app"] == "Detect");
    }
}

/// TLS or RELP to a plain TCP syslog port (a real rsyslog's): the
/// receiver takes what it is sent for a message and never answers. Each
/// is one line saying so, not "cannot connect", and is not retried: it
/// fails at the first silence.
#[test]
fn tls_or_relp_to_a_plain_tcp_port_says_so_at_once() {
    let rs = Rsyslog::builder().tcp().start();
    let sim = Sim::start(&["--events", "5", "--detect-events", "0"]);
    for (scheme, want) in [
        ("tls", "the TLS handshake got no answer in 10 s"),
        ("relp", "no answer to the RELP open in 10 s"),
    ] {
        let a = Agent::new(&sim.url());
        let out = a
            .cmd()
            .args(["--severity", "all", "-o", "REMOTE", "-t"])
            .arg(format!("{scheme}://{}", rs.tcp_addr()))
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{scheme}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("use tcp://"),
            "{scheme}: {stderr}"
        );
        assert!(!stderr.contains("cannot connect"), "{stderr}");
        assert!(!a.log().contains("reconnecting"), "{}", a.log());
        assert!(a.state().is_none());
    }
}

#[test]
fn an_unreachable_destination_is_one_line_and_keeps_the_cursor() {
    let sim = Sim::start(&["--events", "30"]);
    let a = Agent::new(&sim.url());
    // A port nothing listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = a
        .cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket_type",
            "tcp",
            "-t",
            &format!("127.0.0.1:{port}"),
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    // Each reconnect is a warning; the last line is the error.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 6, "{stderr}");
    assert!(
        stderr
            .lines()
            .take(5)
            .all(|l| l.contains("warning: cannot connect")),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains("error: ")
            && last.contains("cannot connect to 127.0.0.1:")
            && last.contains("refused")
            && last.contains("gave up after 6 attempts"),
        "{stderr}"
    );
    assert!(a.state().is_none());

    let b = Agent::new(&sim.url());
    b.cmd()
        .args(["--syslog-socket"])
        .arg(b.path("no-such-socket"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no-such-socket"));
}
