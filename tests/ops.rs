//! The operator commands: check, status, completions, man.

mod util;

use std::process::Command;
use util::agent::{Agent, Sim, bin};
use util::rsyslog::Rsyslog;

#[test]
fn completions_and_the_man_page_come_from_the_parser() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for flag in [
            "--elastica_app",
            "--syslog-format",
            "--hec-url",
            "--max-message-size",
        ] {
            assert!(
                text.contains(flag.trim_start_matches('-')),
                "{shell} lacks {flag}"
            );
        }
    }
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success());
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH siem-agent"),
        "{roff:.200}"
    );
    assert!(
        roff.contains("\\-\\-socket\\-type") || roff.contains("socket-type"),
        "the flags are in the man page"
    );
    let bad = Command::new(bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn status_shows_cursors_lag_and_the_last_run() {
    let sim = Sim::start(&["--events", "200", "--detect-events", "20"]);
    let a = Agent::new(&sim.url());
    let status = |json: bool| {
        let mut c = Command::new(bin());
        c.arg("status").arg("--config").arg(a.config_path());
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let before = status(false);
    assert!(
        before.contains("Investigate: no cursor yet") && before.contains("last run: none recorded"),
        "{before}"
    );

    a.file_cmd().args(["--severity", "all"]).assert().success();
    let v: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(v["last_run"]["state"], "succeeded");
    assert_eq!(v["last_run"]["apps"]["Investigate"]["exported"], 200);
    let lag = v["apps"]["Investigate"]["lag_seconds"].as_i64().unwrap();
    assert!((0..3600).contains(&lag), "{lag}");
    assert!(v["apps"]["Detect"]["cursor"].is_string());
    let text = status(false);
    assert!(
        text.contains("Investigate: cursor ") && text.contains("behind now"),
        "{text}"
    );
    assert!(
        text.contains("last run: succeeded") && text.contains("200 exported"),
        "{text}"
    );

    // A cut state file: its twin, the version before it, is read.
    std::fs::write(a.path("export_log.state"), "{").unwrap();
    let out = Command::new(bin())
        .arg("status")
        .arg("--config")
        .arg(a.config_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Both corrupt: one line, exit 1.
    std::fs::write(a.path(".export_log.state.prev"), "{").unwrap();
    let out = Command::new(bin())
        .arg("status")
        .arg("--config")
        .arg(a.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("export_log.state"));
}

#[test]
fn check_passes_with_good_destinations_and_names_a_bad_one() {
    let rs = Rsyslog::builder().tcp().relp().start();
    let sim = Sim::start(&["--events", "50"]);
    let a = Agent::new(&sim.url());
    let run = |targets: &[String]| {
        let mut c = Command::new(bin());
        c.arg("check")
            .arg("--config")
            .arg(a.config_path())
            .args(["-o", "REMOTE"]);
        for t in targets {
            c.args(["-t", t]);
        }
        c.output().unwrap()
    };
    let good = run(&[
        format!("tcp://{}", rs.tcp_addr()),
        format!("relp://{}", rs.relp_addr()),
    ]);
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    for needle in [
        "PASS config",
        "PASS state directory",
        "PASS API",
        "PASS API Investigate logs",
        "PASS API Detect logs",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("PASS output"))
            .count(),
        2,
        "{text}"
    );
    assert!(!text.contains("FAIL"));

    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bad = run(&[format!("tcp://{}", rs.tcp_addr()), format!("tcp://{down}")]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    let fail: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fail.len(), 1, "{text}");
    assert!(
        fail[0].contains(&down.to_string()) && fail[0].contains("refused"),
        "{text}"
    );

    // Nothing was sent, no cursor, no status.
    assert!(rs.received().is_empty());
    assert!(a.state().is_none() && a.status().is_none());

    // A file output is checked without being created; a loose config mode
    // is warned about as a run does (still a pass).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(a.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = a.path("out.cef");
    let out = Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(a.config_path())
        .args(["-o", "FILE", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!file.exists(), "check created {}", file.display());
    assert!(
        text.contains("PASS output") && text.contains("can be created"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("WARN config:")
            && l.contains("mode 644")
            && l.contains("chmod 600")),
        "{text}"
    );
    std::fs::set_permissions(a.config_path(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // Bad credentials fail the API checks.
    a.write_config(&serde_json::json!({"api_server": sim.url(), "key_id": "demo-key", "key_secret": "wrong", "tenant": "demo"}).to_string());
    let out = run(&[format!("tcp://{}", rs.tcp_addr())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.lines().any(|l| l.starts_with("FAIL API")), "{text}");
    assert!(!text.contains("wrong"), "no secret in the output");
}

#[test]
fn dry_run_prints_what_would_be_sent_and_changes_no_state() {
    let sim = Sim::start(&["--events", "300", "--detect-events", "30"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "--max-events", "100"])
        .assert()
        .success();
    let files = |a: &Agent| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(a.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("agent.log"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read(&p).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&a);
    let out = a
        .cmd()
        .args([
            "--severity",
            "all",
            "--dry-run",
            "-o",
            "REMOTE",
            "-t",
            "127.0.0.1:9",
            "--socket-type",
            "TCP",
            "--format",
            "kv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The rest of the backlog, as it would be sent (the header of a TCP
    // destination, key=value), and nothing opened: 127.0.0.1:9 is closed.
    assert_eq!(stdout.lines().count(), 230);
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with('<') && l.contains(" app=\"")),
        "{stdout:.300}"
    );
    assert_eq!(
        files(&a),
        before,
        "the state directory is byte for byte the same"
    );
    // -r with --dry-run reads from the start without clearing anything.
    let out = a
        .cmd()
        .args(["--severity", "all", "--dry-run", "-r", "-o", "STREAM"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 330);
    assert_eq!(files(&a), before);
}

/// Parses Prometheus text format strictly enough to catch a bad line:
/// `# HELP`/`# TYPE` comments, then `name{label="value",...} number`.
fn prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            assert!(
                c.starts_with("HELP siem_agent_") || c.starts_with("TYPE siem_agent_"),
                "{line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if name_end < series.len() {
            let labels = series[name_end..]
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .expect(line);
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"").expect(line);
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('\n'));
            }
        }
        samples.insert(
            series.to_string(),
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}")),
        );
    }
    samples
}

#[test]
fn metrics_file_after_each_run_in_prometheus_text() {
    let sim = Sim::start(&["--events", "120", "--detect-events", "12"]);
    let a = Agent::new(&sim.url());
    let metrics = a.path("siem_agent.prom");
    a.file_cmd()
        .args(["--severity", "all", "--metrics-file"])
        .arg(&metrics)
        .assert()
        .success();
    let m = prometheus(&std::fs::read_to_string(&metrics).unwrap());
    let out = a.path("out.log").display().to_string();
    assert_eq!(
        m[&format!(
            "siem_agent_last_run_events_exported{{app=\"Investigate\",destination=\"{out}\"}}"
        )],
        120.0
    );
    assert_eq!(
        m[&format!("siem_agent_last_run_events_exported{{app=\"Detect\",destination=\"{out}\"}}")],
        12.0
    );
    assert_eq!(m["siem_agent_last_run_success"], 1.0);
    assert_eq!(m["siem_agent_last_run_errors{kind=\"output\"}"], 0.0);
    assert!(m["siem_agent_lag_seconds{app=\"Investigate\"}"] >= 0.0);
    let success = m["siem_agent_last_success_timestamp_seconds"];
    assert!(m["siem_agent_last_run_duration_seconds"] > 0.0);

    // A failed run: the kind of error, and the last success kept.
    a.cmd()
        .args([
            "-o",
            "REMOTE",
            "--socket-type",
            "TCP",
            "-t",
            "127.0.0.1:9",
            "--send-retries",
            "0",
            "--metrics-file",
        ])
        .arg(&metrics)
        .assert()
        .code(1);
    let m = prometheus(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(m["siem_agent_last_run_success"], 0.0);
    assert_eq!(m["siem_agent_last_run_errors{kind=\"output\"}"], 1.0);
    assert_eq!(m["siem_agent_last_success_timestamp_seconds"], success);
}

#[test]
fn the_log_file_can_be_json_lines() {
    let sim = Sim::start(&["--events", "20"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "-d", "--log-format", "json"])
        .assert()
        .success();
    let log = a.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert!(lines.len() > 3);
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"));
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO"
                && l["message"].as_str().unwrap().contains("exported 20 logs")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
}

#[test]
fn a_state_file_from_a_newer_agent_is_refused_clearly() {
    let sim = Sim::start(&["--events", "5"]);
    let a = Agent::new(&sim.url());
    std::fs::write(
        a.path("export_log.state"),
        r#"{"version": 7, "cursors": {}}"#,
    )
    .unwrap();
    let out = a.file_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("export_log.state") && stderr.contains("newer siem-agent"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(a.path("export_log.state")).unwrap(),
        r#"{"version": 7, "cursors": {}}"#
    );
}

/// The progress line appears on a terminal (a pseudo-terminal made by
/// util-linux `script`), and never when stderr is a pipe, as under cron.
#[test]
fn progress_only_on_a_terminal() {
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let cmd = format!(
        "{} --config {} --log-file {} --severity all --rate 3000 -o FILE -f {}",
        bin().display(),
        a.config_path().display(),
        a.path("agent.log").display(),
        a.path("out.log").display()
    );
    let out = util::on_terminal(&cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("logs exported") && tty.contains("behind now"),
        "{tty:?}"
    );

    let b = Agent::new(&sim.url());
    let out = b
        .file_cmd()
        .args(["--severity", "all", "--rate", "3000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `status` for cron and monitoring: exit 1 when the config cannot be read
/// or the last run failed, 0 when all is well; only the streams the config
/// exports are listed.
#[test]
fn status_exits_1_when_something_is_wrong_and_lists_only_exported_streams() {
    let sim = Sim::start(&["--vendor", "mcas", "--events", "10"]);
    let a = Agent::with_config(&serde_json::json!({"source": "mcas",
        "api_server": sim.url(), "token": "demo-token", "data_types": ["alerts"]}));
    let status = |a: &Agent| {
        Command::new(bin())
            .args(["status", "--json", "--config"])
            .arg(a.config_path())
            .output()
            .unwrap()
    };
    // Before any run: the config's streams (alerts, not activities).
    let out = status(&a);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let apps: Vec<&String> = v["apps"].as_object().unwrap().keys().collect();
    assert_eq!(apps, ["alerts"], "{v}");
    a.file_cmd().assert().success();
    let out = status(&a);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["apps"].as_object().unwrap().len(), 1, "{v}");
    // A failed run: exit 1.
    a.file_cmd()
        .args(["--token", "wrong-token-1"])
        .assert()
        .code(1);
    let out = status(&a);
    assert_eq!(out.status.code(), Some(1));
    // Mended: 0 again; then a config the next run cannot read: 1.
    a.file_cmd().assert().success();
    assert!(status(&a).status.success());
    a.write_config("{not json");
    let out = status(&a);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("config_error"));
}
