//! Delivery over TLS, RELP and reconnecting TCP, against a real rsyslog.

mod util;

use std::time::Duration;
use util::agent::{Agent, Sim, cef_id, exported};
use util::certs::Certs;
use util::rsyslog::{Rsyslog, TlsInput};

const WAIT: Duration = Duration::from_secs(30);

fn tls_input(certs: &Certs, server: &str, require_client_cert: bool) -> TlsInput {
    TlsInput {
        ca: certs.path("ca.pem"),
        cert: certs.path(&format!("{server}.pem")),
        key: certs.path(&format!("{server}.key")),
        require_client_cert,
    }
}

/// Runs the agent to `-t target` over TLS with `extra` flags.
fn tls_run(sim: &Sim, target: &str, extra: &[&str]) -> (Agent, std::process::Output) {
    let a = Agent::new(&sim.url());
    let out = a
        .cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "TLS",
            "--severity",
            "all",
            "--send-retries",
            "1",
            "-t",
            target,
        ])
        .args(extra)
        .output()
        .unwrap();
    (a, out)
}

#[test]
fn tls_delivers_to_a_verified_server_octet_counted() {
    let certs = Certs::new();
    let rs = Rsyslog::builder()
        .tls(tls_input(&certs, "server", false))
        .start();
    let sim = Sim::start(&["--events", "300", "--detect-events", "20"]);
    let ca = certs.path("ca.pem");
    for host in ["127.0.0.1", "localhost"] {
        let before = rs.received().len();
        let target = format!("{host}:{}", rs.tls_addr().port());
        let (a, out) = tls_run(&sim, &target, &["--tls-ca", ca.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = exported(&a);
        assert_eq!(n, 320);
        let got = rs.wait_for(before + n, WAIT);
        assert_eq!(got.len(), before + n);
        for m in &got[before..] {
            assert_eq!(m.input, "tls", "{m:?}");
            assert!(m.msg.starts_with("CEF:0|Symantec|CloudSOC|"), "{m:?}");
        }
    }
}

#[test]
fn a_certificate_that_cannot_be_trusted_stops_the_run_before_anything_is_sent() {
    let certs = Certs::new();
    let sim = Sim::start(&["--events", "50"]);
    let cases = [
        // Signed by a CA we were not told to trust.
        (
            "server",
            vec![
                "--tls-ca".to_string(),
                certs.path("other-ca.pem").to_str().unwrap().to_string(),
            ],
            "not signed by a trusted CA",
        ),
        // No --tls-ca: the system's roots do not know the test CA.
        ("server", vec![], "not signed by a trusted CA"),
        // Trusted, but for another name.
        (
            "wrong-name",
            vec![
                "--tls-ca".to_string(),
                certs.path("ca.pem").to_str().unwrap().to_string(),
            ],
            "not valid for this host name",
        ),
    ];
    for (server, flags, why) in cases {
        let rs = Rsyslog::builder()
            .tls(tls_input(&certs, server, false))
            .start();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (a, out) = tls_run(&sim, &format!("127.0.0.1:{}", rs.tls_addr().port()), &flags);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(why) && stderr.contains("TLS"), "{stderr}");
        assert!(a.state().is_none(), "the cursor must not move");
        assert!(rs.received().is_empty());
    }
}

#[test]
fn bad_tls_files_are_named_in_one_line() {
    let certs = Certs::new();
    let sim = Sim::start(&["--events", "5"]);
    let missing = certs.path("missing.pem");
    let key_as_ca = certs.path("ca.key");
    for (flags, needle) in [
        (vec!["--tls-ca", missing.to_str().unwrap()], "--tls-ca"),
        (
            vec!["--tls-ca", key_as_ca.to_str().unwrap()],
            "no PEM certificate",
        ),
        (
            vec![
                "--tls-cert",
                certs.path("client.pem").to_str().unwrap(),
                "--tls-key",
                certs.path("ca.pem").to_str().unwrap(),
            ],
            "--tls-key",
        ),
    ] {
        let (a, out) = tls_run(&sim, "127.0.0.1:9", &flags);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(a.state().is_none());
    }
}

#[test]
fn a_server_that_requires_a_client_certificate_gets_ours() {
    let certs = Certs::new();
    let rs = Rsyslog::builder()
        .tls(tls_input(&certs, "server", true))
        .start();
    let sim = Sim::start(&["--events", "40"]);
    let target = format!("localhost:{}", rs.tls_addr().port());
    let ca = certs.path("ca.pem");
    let ca = ca.to_str().unwrap();

    // Without one: refused, nothing counted as delivered.
    let (a, out) = tls_run(&sim, &target, &["--tls-ca", ca]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--tls-cert") && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
    assert!(a.state().is_none());

    let cert = certs.path("client.pem");
    let key = certs.path("client.key");
    let (a, out) = tls_run(
        &sim,
        &target,
        &[
            "--tls-ca",
            ca,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = exported(&a);
    assert!(n > 0);
    assert_eq!(rs.wait_for(n, WAIT).len(), n);
}

/// The receiver restarts between two runs and in the middle of one: the
/// agent reconnects, and every log arrives (some perhaps twice).
#[test]
fn tcp_reconnects_after_the_receiver_restarts() {
    let mut rs = Rsyslog::builder().tcp().start();
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    // A run, a restart, and a run that meets a restart while it sends.
    a.cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "TCP",
            "--severity",
            "all",
            "--max-events",
            "1000",
            "-t",
        ])
        .arg(rs.tcp_addr().to_string())
        .assert()
        .success();
    assert_eq!(rs.wait_for(1000, WAIT).len(), 1000);
    rs.restart();
    let mut child = a
        .process()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "TCP",
            "--severity",
            "all",
            "--rate",
            "2000",
            "--retry-delay-ms",
            "100",
            "-t",
        ])
        .arg(rs.tcp_addr().to_string())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Restart the receiver once the second run is well under way.
    assert!(util::wait_until(WAIT, Duration::from_millis(20), || rs
        .received()
        .len()
        >= 1400));
    rs.restart();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(util::wait_until(WAIT, Duration::from_millis(50), || {
        let ids: std::collections::HashSet<String> = rs
            .received()
            .iter()
            .filter_map(|m| cef_id(&m.msg))
            .collect();
        ids.len() == 3000
    }));
    assert!(a.log().contains("reconnecting"), "{}", a.log());
}

/// The ids in what rsyslog received (CEF `externalId`), with repeats.
fn received_ids(rs: &Rsyslog) -> Vec<String> {
    rs.received()
        .iter()
        .filter_map(|m| cef_id(&m.msg))
        .collect()
}

/// How many messages the agent said it would send again.
fn reported_resends(a: &Agent) -> usize {
    a.log()
        .lines()
        .filter_map(|l| {
            let rest = l.split("connection lost with ").nth(1)?;
            rest.split(' ').next()?.parse::<usize>().ok()
        })
        .sum()
}

#[test]
fn relp_delivers_a_large_export_each_log_once() {
    let rs = Rsyslog::builder().relp().start();
    let sim = Sim::start(&["--events", "20000", "--detect-events", "500"]);
    let a = Agent::new(&sim.url());
    a.cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "RELP",
            "--severity",
            "all",
            "-t",
        ])
        .arg(rs.relp_addr().to_string())
        .assert()
        .success();
    let n = exported(&a);
    assert_eq!(n, 20500);
    // Every message was answered before the run ended, so all are there.
    let ids = received_ids(&rs);
    assert_eq!(ids.len(), n);
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        n
    );
    assert_eq!(reported_resends(&a), 0);
    assert!(
        !rs.internal_log().contains("error"),
        "{}",
        rs.internal_log()
    );
}

#[test]
fn relp_resends_what_was_in_flight_when_the_receiver_restarts() {
    let mut rs = Rsyslog::builder().relp().start();
    let sim = Sim::start(&["--events", "12000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let mut child = a
        .process()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "RELP",
            "--severity",
            "all",
            "--rate",
            "4000",
            "--retry-delay-ms",
            "200",
            "-t",
        ])
        .arg(rs.relp_addr().to_string())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(util::wait_until(WAIT, Duration::from_millis(20), || rs
        .received()
        .len()
        >= 3000));
    rs.restart();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(exported(&a), 12000);
    let ids = received_ids(&rs);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 12000, "every log at least once");
    let duplicates = ids.len() - unique.len();
    let resent = reported_resends(&a);
    assert!(
        resent > 0,
        "the restart must have cut a session: {}",
        a.log()
    );
    assert!(
        duplicates <= resent,
        "{duplicates} duplicates, {resent} reported in flight"
    );
}

#[test]
fn relp_over_tls_with_a_client_certificate() {
    let certs = Certs::new();
    let rs = Rsyslog::builder()
        .relp_tls(tls_input(&certs, "server", true))
        .start();
    let sim = Sim::start(&["--events", "500"]);
    let a = Agent::new(&sim.url());
    let p = |n: &str| certs.path(n).to_str().unwrap().to_string();
    a.cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "RELP-TLS",
            "--severity",
            "all",
            "-t",
        ])
        .arg(format!("localhost:{}", rs.relp_tls_addr().port()))
        .args([
            "--tls-ca",
            &p("ca.pem"),
            "--tls-cert",
            &p("client.pem"),
            "--tls-key",
            &p("client.key"),
        ])
        .assert()
        .success();
    let n = exported(&a);
    assert_eq!(received_ids(&rs).len(), n);
}

#[test]
fn every_log_goes_to_every_destination() {
    let rs = Rsyslog::builder().udp().tcp().relp().start();
    let sim = Sim::start(&["--events", "400", "--detect-events", "40"]);
    let a = Agent::new(&sim.url());
    a.cmd()
        .args(["-o", "REMOTE", "--severity", "all", "--rate", "5000"])
        .args(["-t", &format!("udp://{}", rs.udp_addr())])
        .args(["-t", &format!("tcp://{}", rs.tcp_addr())])
        .args(["-t", &format!("relp://{}", rs.relp_addr())])
        .assert()
        .success();
    let n = exported(&a);
    assert_eq!(n, 440);
    let got = rs.wait_for(3 * n, WAIT);
    assert_eq!(got.len(), 3 * n);
    for input in ["udp", "tcp", "relp"] {
        let ids: std::collections::HashSet<String> = got
            .iter()
            .filter(|m| m.input == input)
            .filter_map(|m| cef_id(&m.msg))
            .collect();
        assert_eq!(ids.len(), n, "{input}");
    }
}

#[test]
fn a_destination_that_is_down_holds_the_cursor_for_all() {
    let rs = Rsyslog::builder().tcp().start();
    let sim = Sim::start(&["--events", "100"]);
    let a = Agent::new(&sim.url());
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = a
        .cmd()
        .args(["-o", "REMOTE", "--severity", "all", "--send-retries", "1"])
        .args(["-t", &format!("tcp://{}", rs.tcp_addr())])
        .args(["-t", &format!("tcp://{down}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().contains(&down.to_string()),
        "{stderr}"
    );
    assert!(a.state().is_none(), "the cursor must not move");
}

#[test]
fn bad_target_prefixes_are_named() {
    let sim = Sim::start(&["--events", "1"]);
    let a = Agent::new(&sim.url());
    let out = a
        .cmd()
        .args(["-o", "REMOTE", "-t", "sctp://127.0.0.1:9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("--target") && stderr.contains("relp+tls://"),
        "{stderr}"
    );
}

#[test]
fn destinations_listed_in_config_json_each_get_their_own_format() {
    let rs = Rsyslog::builder().udp().relp().start();
    let sim = Sim::start(&["--events", "60", "--detect-events", "6"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("splunk.log");
    let config = |destinations: serde_json::Value| {
        serde_json::json!({
            "api_server": sim.url(), "key_id": "demo-key", "key_secret": "demo-secret", "tenant": "demo",
            "destinations": destinations,
        })
    };
    let a = Agent::with_config(&config(serde_json::json!([
        {"output": "REMOTE", "target": rs.udp_addr().to_string(), "format": "json", "max_message_size": 0},
        {"output": "REMOTE", "target": format!("relp://{}", rs.relp_addr()), "siem": "arcsight"},
        {"output": "FILE", "filename": file.to_str().unwrap(), "format": "kv"},
    ])));
    a.cmd().args(["--severity", "all"]).assert().success();
    let n = exported(&a);
    assert_eq!(n, 66);
    let got = rs.wait_for(2 * n, WAIT);
    assert_eq!(got.len(), 2 * n);
    for m in &got {
        match m.input.as_str() {
            "udp" => assert!(m.msg.starts_with("{\"app\":"), "{m:?}"),
            "relp" => assert!(m.raw.contains(" CEF:0|Symantec|CloudSOC|"), "{m:?}"),
            other => panic!("{other}"),
        }
    }
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), n);
    assert!(lines.lines().all(|l| l.contains(" app=\"")));

    // Mistakes are one line naming the file, the entry and the option.
    let b = Agent::with_config(&config(
        serde_json::json!([{"output": "REMOTE", "colour": "blue"}]),
    ));
    let out = b.cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("config.json: destinations[0]: \"colour\" is not a destination option"),
        "{stderr}"
    );
    let out = a
        .cmd()
        .args(["-o", "REMOTE", "-t", "127.0.0.1:9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot be combined"), "{stderr}");
}
