//! End-to-end exports through the binary against the simulator: paging,
//! the cursor across page and run boundaries, filters, API faults.

mod util;

use predicates::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use util::agent::{Agent, Sim, id_of};

/// Every log the simulator serves, read straight from it by one full
/// export with no filter (also checked for duplicates).
fn all_logs(sim: &Sim) -> Vec<Value> {
    let a = Agent::new(&sim.url());
    a.file_cmd().args(["--severity", "all"]).assert().success();
    let lines = a.json_lines();
    assert_unique(&lines);
    lines
}

fn assert_unique(lines: &[Value]) {
    let mut seen = HashSet::new();
    for l in lines {
        assert!(
            seen.insert((l["app"].to_string(), id_of(l))),
            "duplicate {}",
            id_of(l)
        );
    }
}

fn ids(lines: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| format!("{}/{}", l["app"], id_of(l)))
        .collect();
    v.sort();
    v
}

#[test]
fn backfill_across_pages_and_runs_is_complete_without_duplicates() {
    // 300 logs a second on average: seconds are split by the pages of 1000,
    // and the runs (capped at 777 events) stop inside pages and seconds.
    let sim = Sim::start(&[
        "--events",
        "6000",
        "--detect-events",
        "900",
        "--per-second",
        "300",
    ]);
    let expected = all_logs(&sim);
    assert_eq!(expected.len(), 6900);

    let a = Agent::new(&sim.url());
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 30, "did not catch up");
        let before = a.json_lines().len();
        a.file_cmd()
            .args(["--severity", "all", "--max-events", "777"])
            .assert()
            .success();
        let after = a.json_lines().len();
        if after == before {
            break;
        }
        assert!(after - before <= 777);
    }
    let got = a.json_lines();
    assert_unique(&got);
    assert_eq!(ids(&got), ids(&expected));
    assert!(runs >= 9, "expected several runs, got {runs}");

    // The cursor names the newest second and the ids delivered at it.
    let state = a.state().unwrap();
    let inv = &state["cursors"]["Investigate"];
    let last = expected
        .iter()
        .rfind(|l| l["app"] == "Investigate")
        .unwrap();
    assert_eq!(inv["timestamp"], last["created_timestamp"]);
    assert!(inv["ids"].as_array().unwrap().contains(&last["_id"]));
    let status = a.status().unwrap();
    assert_eq!(status["state"], "succeeded");
}

#[test]
fn default_severities_and_filters_apply_even_when_the_server_ignores_them() {
    let sim = Sim::start(&["--events", "3000", "--ignore-filters"]);
    let all = all_logs(&sim);

    // Default: error, critical, warning, and every Detect level.
    let a = Agent::new(&sim.url());
    a.file_cmd().assert().success();
    let want: Vec<Value> = all
        .iter()
        .filter(|l| {
            l["app"] == "Detect"
                || ["error", "critical", "warning"].contains(&l["severity"].as_str().unwrap_or(""))
        })
        .cloned()
        .collect();
    assert!(want.len() < all.len());
    assert_eq!(ids(&a.json_lines()), ids(&want));

    // One value of each: sent to the server (which ignores them), applied here.
    let b = Agent::new(&sim.url());
    b.file_cmd()
        .args([
            "--severity",
            "critical",
            "--app",
            "Box",
            "--elastica_app",
            "investigate",
        ])
        .assert()
        .success();
    let want: Vec<Value> = all
        .iter()
        .filter(|l| {
            l["app"] == "Investigate" && l["severity"] == "critical" && l["service"] == "Box"
        })
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&b.json_lines()), ids(&want));

    // Several values (client-side only), case-sensitive names with spaces.
    let c = Agent::new(&sim.url());
    c.file_cmd()
        .args(["--severity", "all", "--app", "Yahoo Mail", "Office 365"])
        .assert()
        .success();
    let want: Vec<Value> = all
        .iter()
        .filter(|l| l["service"] == "Yahoo Mail" || l["service"] == "Office 365")
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&c.json_lines()), ids(&want));
}

#[test]
fn rejected_credentials_are_one_line_and_send_nothing() {
    let sim = Sim::start(&["--events", "100"]);
    let a = Agent::with_config(&serde_json::json!({
        "api_server": sim.url(), "key_id": "demo-key", "key_secret": "wrong-secret-123", "tenant": "demo"
    }));
    let out = a.file_cmd().assert().failure().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("rejected the credentials (HTTP 403"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret-123"));
    assert!(a.json_lines().is_empty());
    assert!(a.state().is_none());
    assert_eq!(a.status().unwrap()["state"], "failed");
}

#[test]
fn rate_limits_server_errors_and_broken_bodies_are_retried() {
    let sim = Sim::start(&[
        "--events",
        "2500",
        "--faults",
        "429,500,503,truncate,reset,malformed,502",
    ]);
    let a = Agent::new(&sim.url());
    // Seven failures in a row: within a budget of 8 retries.
    a.file_cmd()
        .args(["--severity", "all", "--retries", "8"])
        .assert()
        .success();
    let got = a.json_lines();
    assert_unique(&got);
    assert_eq!(got.len(), 2750);
    let log = a.log();
    assert!(log.contains("HTTP 429"), "{log}");
    assert!(log.contains("HTTP 503"), "{log}");
}

#[test]
fn a_server_that_keeps_failing_ends_the_run_with_the_cursor_unchanged() {
    let sim = Sim::start(&["--events", "2500"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "--max-events", "1500"])
        .assert()
        .success();
    let state = std::fs::read(a.path("export_log.state")).unwrap();
    drop(sim);

    // The same data, but every request now fails.
    let sim = Sim::start(&["--events", "2500", "--faults", "500,500,500,500,500,500"]);
    a.write_config(
        &serde_json::json!({"api_server": sim.url(), "key_id": "demo-key", "key_secret": "demo-secret", "tenant": "demo"})
            .to_string(),
    );
    a.file_cmd()
        .args(["--severity", "all", "--retries", "2"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("HTTP 500")
                .and(predicate::str::contains("gave up after 3 attempts")),
        );
    assert_eq!(std::fs::read(a.path("export_log.state")).unwrap(), state);
    assert_eq!(a.json_lines().len(), 1500);
}

#[test]
fn hostile_fields_yield_exactly_one_well_formed_line_each() {
    let sim = Sim::start(&["--events", "1500", "--detect-events", "300"]);
    let all = all_logs(&sim);
    // Every hostile value survives JSON intact (JSON lines parsed above).
    assert!(
        all.iter().any(|l| l.to_string().contains("\\n")),
        "simulator sent no LF"
    );

    let a = Agent::new(&sim.url());
    a.cmd()
        .args(["-o", "FILE", "--format", "cef", "--severity", "all", "-f"])
        .arg(a.path("cef.log"))
        .assert()
        .success();
    let text = std::fs::read(a.path("cef.log")).unwrap();
    assert!(!text.contains(&0u8) && !text.contains(&b'\r'));
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len());
    let mut per_app = BTreeMap::new();
    for l in &lines {
        assert!(l.starts_with("CEF:0|Symantec|CloudSOC|"), "{l}");
        let header = cef_header(l).unwrap_or_else(|| panic!("fewer than 7 header fields: {l}"));
        let severity: u8 = header[6]
            .parse()
            .unwrap_or_else(|_| panic!("severity {:?}: {l}", header[6]));
        assert!(severity <= 10);
        *per_app
            .entry(header[4].split(':').next().unwrap().to_string())
            .or_insert(0) += 1;
        // One externalId per line: no forged second event inside.
        assert_eq!(
            l.matches(" externalId=").count() + usize::from(l.contains("|externalId=")),
            1,
            "{l}"
        );
    }
    assert_eq!(per_app["Investigate"], 1500);
    assert_eq!(per_app["Detect"], 300);
}

/// The seven header fields of a CEF line (split on pipes not escaped with
/// a backslash), or `None` if it has fewer.
fn cef_header(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                cur.push(chars.next()?);
            }
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return Some(fields);
                }
            }
            _ => cur.push(c),
        }
    }
    None
}

#[test]
fn a_slow_api_times_out_and_is_retried() {
    let sim = Sim::start(&["--events", "300", "--faults", "slow", "--slow-ms", "4000"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "--http-timeout", "1"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("timed out")
                .or(predicate::str::contains("operation timed out")),
        );
    assert_eq!(a.json_lines().len(), 330);
}

#[test]
fn the_proxy_is_used_with_its_credentials_and_environment_proxies_are_not() {
    // The simulator also plays the proxy; the api_server itself is unreachable.
    let sim = Sim::start(&["--events", "40", "--proxy-auth", "bob:pr0xy-pa55"]);
    let a = Agent::new("http://127.0.0.1:9/");
    let proxy = format!("127.0.0.1:{}", sim.port);
    a.file_cmd()
        .args(["--severity", "all", "--proxy", &proxy, "-u", "bob"])
        .env("SIEM_AGENT_PROXY_PASSWORD", "pr0xy-pa55")
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 44);

    // Credentials in the URL work too; wrong ones get the proxy's 407.
    let b = Agent::new("http://127.0.0.1:9/");
    b.file_cmd()
        .args([
            "--severity",
            "all",
            "--proxy",
            &format!("http://bob:pr0xy-pa55@{proxy}"),
        ])
        .assert()
        .success();
    assert_eq!(b.json_lines().len(), 44);
    let c = Agent::new("http://127.0.0.1:9/");
    c.file_cmd()
        .args(["--proxy", &proxy, "-u", "bob", "-p", "wrong-pass"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("HTTP 407").and(predicate::str::contains("wrong-pass").not()),
        );

    // http_proxy in the environment is not a configured proxy: ignored.
    let d = Agent::new(&sim.url());
    d.file_cmd()
        .args(["--severity", "all"])
        .env("http_proxy", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .assert()
        .success();
    assert_eq!(d.json_lines().len(), 44);
}

/// Logs the API indexes late (`--late`: served only once their
/// inserted_timestamp has passed, up to 2 minutes after their created
/// time). A second simulator with the same logs, 400 s later
/// (`--clock-offset`), stands for the next run. With the settle window no
/// log is lost; without it, the cursor passes logs not yet visible and
/// they are lost: the window is what saves them.
#[test]
fn logs_indexed_late_are_not_lost_behind_the_cursor() {
    let start = (chrono::Utc::now() - chrono::Duration::seconds(200))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let args = |offset: &str| -> Vec<String> {
        [
            "--events",
            "3000",
            "--detect-events",
            "0",
            "--per-second",
            "25",
            "--late",
            "--start-time",
            &start,
            "--clock-offset",
            offset,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let now_args = args("0");
    // The same API with its Date header a day ahead (a wrong server clock).
    let mut lying_args = args("0");
    lying_args.extend(["--date-offset".to_string(), "86400".to_string()]);
    let sim_lying = Sim::start(&lying_args.iter().map(String::as_str).collect::<Vec<_>>());
    let later_args = args("400");
    let sim_now = Sim::start(&now_args.iter().map(String::as_str).collect::<Vec<_>>());
    let sim_later = Sim::start(&later_args.iter().map(String::as_str).collect::<Vec<_>>());

    let run_from = |first: &Sim, settle: &str| -> (usize, usize, u64) {
        let a = Agent::new(&first.url());
        a.file_cmd()
            .args(["--severity", "all", "--settle", settle])
            .assert()
            .success();
        let held = a.status().unwrap()["apps"]["Investigate"]["held"]
            .as_u64()
            .unwrap();
        // The next run, later: the same API with every log visible.
        a.write_config(&serde_json::json!({
            "api_server": sim_later.url(), "key_id": "demo-key", "key_secret": "demo-secret", "tenant": "demo"
        }).to_string());
        a.file_cmd()
            .args(["--severity", "all", "--settle", settle])
            .assert()
            .success();
        let lines = a.json_lines();
        let unique: std::collections::HashSet<String> =
            lines.iter().map(util::agent::id_of).collect();
        (lines.len(), unique.len(), held)
    };

    let run = |settle: &str| run_from(&sim_now, settle);
    let (lines, unique, held) = run("130");
    assert!(held > 0, "the newest logs wait for the next run");
    assert_eq!((lines, unique), (3000, 3000), "every log exactly once");

    // A server Date far ahead opens the window, but the cursor stays
    // behind the local clock less the window too: what is past it is
    // delivered and remembered by key, and nothing is lost or repeated.
    let (lines, unique, _) = run_from(&sim_lying, "130");
    assert_eq!((lines, unique), (3000, 3000), "every log exactly once");

    let (_, unique, _) = run("0");
    assert!(
        unique < 3000,
        "without the window the cursor passes logs not yet indexed ({unique} of 3000)"
    );
}
