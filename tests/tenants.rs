//! Many tenants in one run (`--config DIR`), through the binary against
//! one simulator per tenant: each exports everything into its own cursor,
//! a failing tenant is named and stops no other, a tenant added between
//! runs starts from its first-run window, and overlapping runs never
//! export a tenant twice.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::agent::{Agent, KEY_ID, KEY_SECRET, Sim, bin, read_json_lines};
use util::fleet::Fleet;
use util::wait_until;

/// A CloudSOC tenant's config (`secret` its key secret).
fn cloudsoc(sim: &Sim, secret: &str) -> Value {
    json!({"user_id": "u-1", "api_server": sim.url(), "key_id": KEY_ID,
           "key_secret": secret, "tenant": "demo"})
}

/// A Defender for Cloud Apps tenant's config.
fn mcas(sim: &Sim) -> Value {
    json!({"source": "mcas", "api_server": sim.url(), "token": "demo-token",
           "data_types": ["alerts", "activities"]})
}

impl Fleet {
    /// A run over the directory: JSON lines to `out.log` (shared by the
    /// tenants that name no destination), nothing held back by --settle.
    fn cmd(&self) -> Command {
        self.cmd_on(&self.tenants())
    }

    /// The same run with `config` (a single file) as its config.
    fn cmd_on(&self, config: &Path) -> Command {
        let mut c = Command::new(bin());
        c.arg("--config")
            .arg(config)
            .arg("--log-file")
            .arg(self.path("agent.log"))
            .args(["--retry-delay-ms", "20", "--http-timeout", "10"])
            .args(["--settle", "0", "--severity", "all"])
            .args(["-o", "FILE", "--format", "json", "-f"])
            .arg(self.path("out.log"))
            // Small files: the tenants sharing it roll it over many times.
            .args(["--max_bytes", "20000", "--backup_count", "1000"])
            .stdin(Stdio::null());
        c
    }

    fn state(&self, tenant: &str) -> Option<Value> {
        let text =
            std::fs::read_to_string(self.tenants().join(tenant).join("export_log.state")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
    }
}

/// Every line of a file and its rolled-over backups, oldest first.
fn rolled_lines(path: &Path) -> Vec<String> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = path.file_name().unwrap().to_string_lossy().into_owned();
            let n = if name == base {
                0
            } else {
                name.strip_prefix(&format!("{base}."))?.parse().ok()?
            };
            Some((n, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What one tenant alone exports from `config`, as a single-file run:
/// its JSON lines.
fn alone(config: &Value) -> Vec<String> {
    let a = Agent::with_config(config);
    a.file_cmd()
        .args(["--settle", "0", "--severity", "all"])
        .assert()
        .success();
    std::fs::read_to_string(a.path("out.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn three_tenants_one_rejected_the_others_export_everything_into_their_own_cursors() {
    let sim_a = Sim::start(&["--events", "400", "--plain"]);
    let sim_b = Sim::start(&["--vendor", "mcas", "--events", "300", "--plain"]);
    let sim_c = Sim::start(&["--events", "50", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim_a, KEY_SECRET));
    fleet.add("globex", &mcas(&sim_b));
    fleet.add("initech", &cloudsoc(&sim_c, "a-wrong-secret-0042"));
    // A fourth whose destination is down: it fails at its output.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hooli = cloudsoc(&sim_a, KEY_SECRET);
    hooli["destinations"] = json!([{"output": "REMOTE", "socket_type": "TCP",
        "target": format!("127.0.0.1:{closed}")}]);
    fleet.add("hooli", &hooli);
    // Not tenants: an example and a hidden file.
    std::fs::write(fleet.tenants().join("config.example.json"), "{}").unwrap();
    std::fs::write(fleet.tenants().join(".globex.json.swp"), "x").unwrap();

    let out = fleet
        .cmd()
        .arg("--metrics-file")
        .arg(fleet.path("m.prom"))
        .args(["--send-retries", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // One line per failed tenant, naming it; the secret nowhere.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("siem-agent: error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with("siem-agent: error: tenant hooli: "),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with("siem-agent: error: tenant initech: "),
        "{stderr}"
    );
    assert!(errors[1].contains("rejected the credentials"), "{stderr}");
    assert!(
        !stderr.contains("a-wrong-secret-0042") && !fleet.log().contains("a-wrong-secret-0042")
    );

    // The two others exported all of it: the same lines as each alone,
    // in one file both wrote (rolled over many times, no line cut).
    let want = sorted([alone(&cloudsoc(&sim_a, KEY_SECRET)), alone(&mcas(&sim_b))].concat());
    assert!(want.len() > 600, "{}", want.len());
    let got = rolled_lines(&fleet.path("out.log"));
    assert!(
        std::fs::metadata(fleet.path("out.log.5")).is_ok(),
        "rolled over"
    );
    for l in &got {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    // One writer rolled it over: no file past --max_bytes.
    for e in std::fs::read_dir(fleet.dir.path()).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("out.log") {
            let len = e.metadata().unwrap().len();
            assert!(len < 20_000, "{:?}: {len} bytes", e.file_name());
        }
    }
    assert_eq!(sorted(got), want);

    // Each its own cursor, of its own source; none for the failed.
    assert_eq!(fleet.state("acme").unwrap()["source"], "cloudsoc");
    assert_eq!(fleet.state("globex").unwrap()["source"], "mcas");
    let acme = fleet.state("acme").unwrap().to_string();
    assert!(
        acme.contains("Investigate") && !acme.contains("alerts"),
        "{acme}"
    );
    assert!(
        fleet
            .state("initech")
            .is_none_or(|s| s["Investigate"].is_null())
    );
    assert!(fleet.tenants().join("hooli").is_dir());

    // Every line of a tenant's work names it.
    let log = fleet.log();
    for l in log.lines().filter(|l| l.contains(" logs (")) {
        assert!(
            l.contains(" tenant acme: ")
                || l.contains(" tenant globex: ")
                || l.contains(" tenant hooli: ")
                || l.contains(" tenant initech: "),
            "{l}"
        );
    }
    assert!(
        log.contains(" tenant globex: alerts: exported 300 logs"),
        "{log}"
    );
    assert!(
        log.contains("4 tenants: 2 exported, 2 failed (hooli, initech)"),
        "{log}"
    );

    // Metrics: a tenant label on each sample.
    let m = std::fs::read_to_string(fleet.path("m.prom")).unwrap();
    for (t, ok) in [("acme", 1), ("globex", 1), ("hooli", 0), ("initech", 0)] {
        assert!(
            m.contains(&format!(
                "siem_agent_last_run_success{{tenant=\"{t}\"}} {ok}\n"
            )),
            "{m}"
        );
    }
    assert!(
        m.contains("siem_agent_last_run_events_exported{tenant=\"globex\",app=\"alerts\","),
        "{m}"
    );
    assert_eq!(m.matches("# HELP siem_agent_last_run_success ").count(), 1);

    // status and check list every tenant.
    let out = Command::new(bin())
        .args(["status", "--json", "--config"])
        .arg(fleet.tenants())
        .output()
        .unwrap();
    // initech's last run failed: exit 1, for monitoring.
    assert_eq!(out.status.code(), Some(1));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&String> = status["tenants"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["acme", "globex", "hooli", "initech"]);
    assert_eq!(status["tenants"]["globex"]["source"], "mcas");
    assert!(status["tenants"]["acme"]["apps"]["Investigate"]["cursor"].is_string());
    assert_eq!(status["tenants"]["initech"]["last_run"]["state"], "failed");
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(fleet.tenants())
        .args(["-o", "STREAM", "--send-retries", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("PASS tenants: 4 in "), "{text}");
    assert!(
        text.contains("tenant acme: PASS API Investigate logs"),
        "{text}"
    );
    assert!(
        text.contains("tenant globex: PASS API alerts logs"),
        "{text}"
    );
    assert!(text.contains("tenant initech: FAIL API"), "{text}");
    assert!(
        text.contains(&format!("tenant hooli: FAIL output 127.0.0.1:{closed}")),
        "{text}"
    );

    // A second run: nothing new for the two, the same two fail.
    let before = rolled_lines(&fleet.path("out.log")).len();
    let out = fleet.cmd().args(["--send-retries", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(rolled_lines(&fleet.path("out.log")).len(), before);
}

#[test]
fn a_tenant_added_between_runs_starts_from_its_first_run_window() {
    let sim_a = Sim::start(&["--events", "200", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim_a, KEY_SECRET));
    let out = fleet.cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = rolled_lines(&fleet.path("out.log")).len();
    assert!(first >= 200);

    // Two Defender for Cloud Apps tenants join (a first run takes two
    // days): one whose alerts are three days old, one whose are a day old.
    let at = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let old = Sim::start(&[
        "--vendor",
        "mcas",
        "--events",
        "100",
        "--start-time",
        &at(3),
    ]);
    let recent = Sim::start(&[
        "--vendor",
        "mcas",
        "--events",
        "100",
        "--start-time",
        &at(1),
    ]);
    fleet.add("globex", &mcas(&old));
    fleet.add("initech", &mcas(&recent));
    let started = chrono::Utc::now();
    let out = fleet.cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = rolled_lines(&fleet.path("out.log")).split_off(first);
    // acme sent nothing again; of the two, only the recent alerts came.
    assert_eq!(sorted(new), sorted(alone(&mcas(&recent))));
    let log = fleet.log();
    assert!(
        log.contains(" tenant acme: Investigate: exported 0 logs"),
        "{log}"
    );
    assert!(
        log.contains(" tenant globex: alerts: exported 0 logs"),
        "{log}"
    );
    assert!(
        log.contains(" tenant initech: alerts: exported 100 logs"),
        "{log}"
    );
    // Each new tenant started two days back.
    for t in ["globex", "initech"] {
        let from = log
            .lines()
            .find_map(|l| {
                l.split_once(&format!(" tenant {t}: alerts: exporting from "))
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| panic!("{log}"));
        let from = chrono::NaiveDateTime::parse_from_str(&from, "%Y-%m-%dT%H:%M:%S")
            .unwrap()
            .and_utc();
        let back = (started - from).num_seconds();
        assert!(
            (2 * 86_400 - 60..=2 * 86_400 + 60).contains(&back),
            "{t}: {back}"
        );
    }
}

#[test]
fn overlapping_runs_over_one_directory_never_export_a_tenant_twice() {
    // acme is slow (a paced backfill); globex waits its turn behind it in
    // the first run (--parallel 1), and a second run takes it meanwhile.
    let sim_a = Sim::start(&["--events", "600", "--plain"]);
    let sim_b = Sim::start(&["--vendor", "mcas", "--events", "300", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim_a, KEY_SECRET));
    fleet.add("globex", &mcas(&sim_b));
    let first = fleet
        .cmd()
        .args(["--parallel", "1", "--rate", "150"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready when acme's run has begun and globex has not.
    let running = |t: &str| {
        std::fs::read_to_string(fleet.tenants().join(t).join("last_job.status"))
            .is_ok_and(|s| s.contains("\"running\""))
    };
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || running("acme")
    ));
    assert!(!fleet.tenants().join("globex").exists());

    let second = fleet.cmd().output().unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(running("acme"), "the first run ended too soon for the test");
    let done = first.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Each log once: the same lines as each tenant alone.
    let want = sorted([alone(&cloudsoc(&sim_a, KEY_SECRET)), alone(&mcas(&sim_b))].concat());
    let got = sorted(rolled_lines(&fleet.path("out.log")));
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a line twice");
    assert_eq!(got, want);
    let log = fleet.log();
    // The second run took globex and left acme to the first; the first
    // then found globex exported.
    assert!(
        log.contains(" tenant acme: another run holds this tenant's lock; skipped"),
        "{log}"
    );
    assert!(
        log.contains(" tenant globex: alerts: exported 300 logs"),
        "{log}"
    );
    assert!(
        log.contains(" tenant globex: alerts: exported 0 logs"),
        "{log}"
    );
    let _ = read_json_lines;
}

#[test]
fn one_tenant_s_credentials_cannot_come_from_the_command_line() {
    let fleet = Fleet::new();
    fleet.add(
        "acme",
        &json!({"source": "mcas", "api_server": "http://127.0.0.1:9/", "token": "t"}),
    );
    for flag in [
        ["--token", "shared-token-1"],
        ["--apisecret", "shared-secret-3"],
        ["--orgurl", "https://shared.example"],
    ] {
        let out = fleet.cmd().args(flag).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("would give every tenant of --config"),
            "{stderr}"
        );
        assert!(!stderr.contains("shared-"), "{stderr}");
    }
    // From the environment (API_KEY is a common name): not used, said.
    let sim = Sim::start(&["--vendor", "mcas", "--events", "10"]);
    // (with a destinations list, read against the command line)
    let mut acme = mcas(&sim);
    acme["destinations"] = json!([{"output": "FILE", "filename": fleet.path("acme.out")}]);
    fleet.add("acme", &acme);
    let out = fleet
        .cmd()
        .env("API_KEY", "shared-key-4")
        .env("SIEM_AGENT_MCAS_TOKEN", "shared-token-5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: API_KEY is set in the environment; with --config DIR it is not used"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: SIEM_AGENT_MCAS_TOKEN is set"),
        "{stderr}"
    );
    assert!(!stderr.contains("shared-"), "{stderr}");
    assert_eq!(rolled_lines(&fleet.path("acme.out")).len(), 10 + 1);
    // A flag is a flag even when the environment holds the same value.
    let out = fleet
        .cmd()
        .env("API_KEY", "shared-key-6")
        .args(["--apikey", "shared-key-6"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--apikey would give every tenant"));
    // A directory with no tenant file is one line too.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(empty.path())
        .arg("--log-file")
        .arg(fleet.path("agent.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant files"));
}

#[test]
fn a_panic_in_one_tenant_fails_that_tenant_only() {
    let sim = Sim::start(&["--events", "100", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim, KEY_SECRET));
    // Debug builds panic in the export of a config with this key.
    let mut broken = cloudsoc(&sim, KEY_SECRET);
    broken["test_panic"] = json!(true);
    fleet.add("bogus", &broken);
    fleet.add("bogus2", &broken);
    fleet.add("globex", &cloudsoc(&sim, KEY_SECRET));
    let out = fleet.cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    // Each with its own panic's message.
    for (line, t) in errors.iter().zip(["bogus", "bogus2"]) {
        let file = fleet.tenants().join(format!("{t}.json"));
        assert!(
            line.starts_with(&format!(
                "siem-agent: error: tenant {t}: internal error (please report): "
            )) && line.ends_with(&format!("test_panic in {}", file.display())),
            "{stderr}"
        );
    }
    assert!(fleet.state("acme").is_some() && fleet.state("globex").is_some());
    assert!(fleet.state("bogus").is_none());
    let alone = alone(&cloudsoc(&sim, KEY_SECRET));
    assert_eq!(rolled_lines(&fleet.path("out.log")).len(), 2 * alone.len());
    // The lock of the tenant that panicked was let go: the next run
    // gets as far again.
    let out = fleet.cmd().output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("tenant bogus: internal error"));
    // As one config file, a panic ends the run with 1, as before.
    let a = Agent::with_config(&broken);
    let out = a.cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("internal error (please report)"));
}

#[test]
fn sigterm_saves_what_was_confirmed_and_names_the_tenants_not_begun() {
    let sim = Sim::start(&["--events", "600", "--plain"]);
    let fleet = Fleet::new();
    for t in ["acme", "globex", "initech"] {
        fleet.add(t, &cloudsoc(&sim, KEY_SECRET));
    }
    let run = fleet
        .cmd()
        .args(["--parallel", "1", "--rate", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once acme has delivered some logs.
    let out = fleet.path("out.log");
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || {
            std::fs::metadata(&out).is_ok_and(|m| m.len() > 20_000)
                || std::fs::metadata(fleet.path("out.log.1")).is_ok()
        }
    ));
    let pid = run.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with("siem-agent: error: tenant acme: "),
        "{stderr}"
    );
    assert_eq!(
        errors[1],
        "siem-agent: error: SIGTERM: 2 tenants not started: globex, initech"
    );
    // acme's cursor holds what was confirmed; the others have none.
    assert!(fleet.state("acme").is_some());
    assert!(!fleet.tenants().join("globex").exists());
    // The next run finishes the lot, nothing twice.
    let out = fleet.cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let one = alone(&cloudsoc(&sim, KEY_SECRET));
    let got = sorted(rolled_lines(&fleet.path("out.log")));
    let want = sorted([one.clone(), one.clone(), one].concat());
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

#[test]
fn a_tenant_whose_file_output_blocks_holds_up_no_other() {
    use std::os::unix::fs::OpenOptionsExt;
    let sim_a = Sim::start(&["--events", "2000", "--plain"]);
    // globex's API is slow to answer its first request: by then acme's
    // output has long stopped taking anything.
    let sim_b = Sim::start(&[
        "--vendor",
        "mcas",
        "--events",
        "100",
        "--faults",
        "slow",
        "--slow-ms",
        "1500",
    ]);
    let fleet = Fleet::new();
    let fifo = fleet.path("stalled.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader that never reads (opened read-write, so that opening does
    // not wait for the agent).
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc_o_nonblock())
        .open(&fifo)
        .unwrap();
    let mut acme = cloudsoc(&sim_a, KEY_SECRET);
    acme["destinations"] = json!([{"output": "FILE", "filename": fifo, "format": "json"}]);
    fleet.add("acme", &acme);
    fleet.add("globex", &mcas(&sim_b));
    let run = fleet
        .cmd()
        .args(["--send-timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = |t: &str| {
        std::fs::read_to_string(fleet.tenants().join(t).join("last_job.status")).unwrap_or_default()
    };
    // globex finishes while acme is still stuck on its output.
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || { status("globex").contains("\"succeeded\"") }
    ));
    assert!(status("acme").contains("\"running\""), "{}", status("acme"));
    // The reader goes: acme fails at its output, the run ends with 1.
    drop(reader);
    let done = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("siem-agent: error: tenant acme: "),
        "{stderr}"
    );
    assert!(!stderr.contains("tenant globex"), "{stderr}");
    assert_eq!(
        rolled_lines(&fleet.path("out.log")).len(),
        alone(&mcas(&sim_b)).len()
    );
}

/// O_NONBLOCK, so that opening the FIFO never waits.
fn libc_o_nonblock() -> i32 {
    0o4000
}

#[test]
fn a_tenant_file_that_cannot_be_read_is_a_failed_tenant_never_a_missing_one() {
    let sim = Sim::start(&["--events", "50", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim, KEY_SECRET));
    std::os::unix::fs::symlink(
        "/nonexistent/globex.json",
        fleet.tenants().join("globex.json"),
    )
    .unwrap();
    // And one whose file is there but not JSON.
    std::fs::write(fleet.tenants().join("initech.json"), "{not json").unwrap();
    let out = fleet
        .cmd()
        .arg("--metrics-file")
        .arg(fleet.path("m.prom"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("siem-agent: error: tenant globex: ")
            && stderr.contains("globex.json: cannot read the tenant file"),
        "{stderr}"
    );
    assert!(fleet.state("acme").is_some());
    let m = std::fs::read_to_string(fleet.path("m.prom")).unwrap();
    assert!(
        m.contains("siem_agent_last_run_success{tenant=\"globex\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("siem_agent_last_run_errors{tenant=\"globex\",kind=\"config\"} 1"),
        "{m}"
    );
    let out = Command::new(bin())
        .args(["status", "--config"])
        .arg(fleet.tenants())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tenant globex: error: ") && text.contains("cannot read the tenant file"),
        "{text}"
    );
    assert!(
        text.contains("tenant initech:\n  state directory: "),
        "{text}"
    );
    assert!(
        text.contains("  config: error: ") && text.contains("initech.json"),
        "{text}"
    );
}

#[test]
fn a_single_config_s_cursor_among_the_tenants_stops_new_tenants_until_moved() {
    let sim = Sim::start(&["--events", "100", "--plain"]);
    let fleet = Fleet::new();
    // A single config, run as before: its cursor next to it.
    fleet.add("acme", &cloudsoc(&sim, KEY_SECRET));
    let out = fleet
        .cmd_on(&fleet.tenants().join("acme.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let first = rolled_lines(&fleet.path("out.log")).len();
    assert!(first >= 100);
    // The directory as tenants: acme would start afresh and send it all
    // again. It is stopped, and told what to do.
    let out = fleet.cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("siem-agent: error: tenant acme: ")
            && stderr.contains("is the cursor of a single config"),
        "{stderr}"
    );
    assert_eq!(rolled_lines(&fleet.path("out.log")).len(), first);
    // Moved where the tenant's state goes: it goes on from there.
    std::fs::create_dir_all(fleet.tenants().join("acme")).unwrap();
    std::fs::rename(
        fleet.tenants().join("export_log.state"),
        fleet.tenants().join("acme/export_log.state"),
    )
    .unwrap();
    let out = fleet.cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rolled_lines(&fleet.path("out.log")).len(), first);
}

/// `--dry-run` over the fleet's tenants with `extra` options, into
/// `head -2`.
fn dry_run_into_head(fleet: &Fleet, extra: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --config '{}' --log-file '{}' --dry-run --settle 0 {extra} | head -2",
            bin().display(),
            fleet.tenants().display(),
            fleet.path("agent.log").display()
        ))
        .output()
        .unwrap()
}

#[test]
fn a_dry_run_of_many_tenants_into_head_ends_quietly() {
    let sim = Sim::start(&["--events", "3000", "--plain"]);
    let fleet = Fleet::new();
    for t in ["acme", "globex", "initech"] {
        fleet.add(t, &cloudsoc(&sim, KEY_SECRET));
    }
    let out = dry_run_into_head(&fleet, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert_eq!(stderr, "", "{stderr}");
    // No tenant after the first was begun.
    assert!(
        !fleet
            .log()
            .contains("tenant globex: Investigate: exporting"),
        "{}",
        fleet.log()
    );
    // A tenant that failed before the reader left is still said.
    fleet.add("aaa", &cloudsoc(&sim, "a-wrong-secret"));
    let out = dry_run_into_head(&fleet, "--retries 0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("siem-agent: error: tenant aaa: "),
        "{stderr}"
    );
}

#[test]
fn a_signal_stops_a_run_whose_api_does_not_answer_at_once() {
    // An API that takes connections and never answers.
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = api.local_addr().unwrap().port();
    let fleet = Fleet::new();
    fleet.add(
        "acme",
        &json!({"user_id": "u-1", "api_server": format!("http://127.0.0.1:{port}/"),
                "key_id": KEY_ID, "key_secret": KEY_SECRET, "tenant": "demo"}),
    );
    let mut run = fleet
        .cmd()
        .args(["--http-timeout", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the agent is waiting for its first answer.
    let (_held, _) = api.accept().unwrap();
    let pid = run.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // It ends promptly (well before --http-timeout), with 1.
    let ended = wait_until(Duration::from_secs(30), Duration::from_millis(20), || {
        run.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = run.kill();
    }
    assert!(ended, "still waiting for the API after SIGTERM");
    let done = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tenant acme: ") && stderr.contains("SIGTERM"),
        "{stderr}"
    );
}

#[test]
fn json_log_lines_carry_the_tenant() {
    let sim = Sim::start(&["--events", "30", "--plain"]);
    let fleet = Fleet::new();
    fleet.add("acme", &cloudsoc(&sim, KEY_SECRET));
    fleet.add("globex", &cloudsoc(&sim, KEY_SECRET));
    let out = fleet.cmd().args(["--log-format", "json"]).output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = fleet
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().contains(": exported "))
        .collect();
    assert_eq!(exported.len(), 4, "{lines:?}");
    for t in ["acme", "globex"] {
        assert_eq!(exported.iter().filter(|l| l["tenant"] == t).count(), 2);
    }
    // The run's own lines have none.
    let summary = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("2 tenants: "))
        .unwrap();
    assert!(summary.get("tenant").is_none());
}

#[test]
fn a_slow_reader_of_a_fifo_output_that_keeps_reading_is_no_error() {
    use std::io::Read;
    let sim = Sim::start(&["--events", "600", "--detect-events", "0", "--plain"]);
    let a = Agent::with_config(&cloudsoc(&sim, KEY_SECRET));
    let fifo = a.path("slow.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader taking 16 KiB every 100 ms: the whole export takes longer
    // than --send-timeout, but the reader never stops reading.
    let path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(path).unwrap();
        let mut all = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match f.read(&mut buf).unwrap() {
                0 => return all,
                n => all.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let out = a
        .cmd()
        .args(["--settle", "0", "--severity", "all", "--send-timeout", "1"])
        .args(["-o", "FILE", "--format", "json", "-f"])
        .arg(&fifo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got = String::from_utf8(reader.join().unwrap()).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 600, "{stderr}");
    for l in lines {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}
