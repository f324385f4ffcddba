//! What works the same for every source, through the binary against the
//! simulator as each API: `check`, `status`, `--dry-run` and the metrics
//! name the vendor and its streams.

mod util;

use serde_json::{Value, json};
use std::process::Command;
use util::agent::{Agent, Sim, bin};

/// A simulator as `vendor`, and a config for it; the stream names.
fn setup(vendor: &str) -> (Sim, Agent, Vec<&'static str>) {
    let sim = Sim::start(&["--vendor", vendor, "--events", "120", "--plain"]);
    let base = sim.url();
    let (config, streams): (Value, Vec<&str>) = match vendor {
        "mcas" => (
            json!({"source": "mcas", "api_server": base, "token": "demo-token",
                   "data_types": ["alerts", "activities"]}),
            vec!["alerts", "activities"],
        ),
        "cirrus" => (
            json!({"source": "cirrus", "apiurl": format!("{base}logs/v1"), "apikey": "demo-key",
                   "apisecret": "demo-secret", "orgurl": "https://example.edu"}),
            vec!["logs"],
        ),
        _ => (
            json!({"source": "rest", "url": format!("{base}api/v1/logs"),
                   "headers": {"Authorization": "SSWS demo-token"}, "since_param": "since",
                   "time_field": "published", "id_field": "uuid", "next": "link"}),
            vec!["logs"],
        ),
    };
    (sim, Agent::with_config(&config), streams)
}

#[test]
fn check_status_dry_run_and_metrics_name_the_source_and_its_streams() {
    for vendor in ["mcas", "cirrus", "rest"] {
        let (_sim, a, streams) = setup(vendor);
        // check: the API and each stream answer.
        let out = Command::new(bin())
            .arg("check")
            .arg("--config")
            .arg(a.config_path())
            .args(["-o", "STREAM"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{vendor}: {text}");
        assert!(text.contains(&format!("(source {vendor})")), "{text}");
        for s in &streams {
            // A stream named `logs` is "API logs", not "API logs logs".
            let what = if *s == "logs" {
                "PASS API logs: answered".to_string()
            } else {
                format!("PASS API {s} logs: answered")
            };
            assert!(text.contains(&what), "{vendor}: {text}");
        }
        assert!(
            !text.contains("logs logs") && !text.contains("limit=1"),
            "{text}"
        );
        // --dry-run: lines on stdout, no cursor written.
        let out = a
            .cmd()
            .args(["--dry-run", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(lines >= 120, "{vendor}: {lines}");
        assert!(a.state().is_none(), "{vendor}");
        // A run with metrics, then status.
        a.file_cmd()
            .arg("--metrics-file")
            .arg(a.path("m.prom"))
            .assert()
            .success();
        let metrics = std::fs::read_to_string(a.path("m.prom")).unwrap();
        assert!(
            metrics.contains(&format!("siem_agent_source_info{{source=\"{vendor}\"}} 1")),
            "{metrics}"
        );
        for s in &streams {
            assert!(
                metrics.contains(&format!("app=\"{s}\"")),
                "{vendor}: {metrics}"
            );
        }
        let out = Command::new(bin())
            .args(["status", "--json", "--config"])
            .arg(a.config_path())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).expect("status --json");
        assert_eq!(v["source"], vendor);
        let apps: Vec<String> = v["apps"].as_object().unwrap().keys().cloned().collect();
        let want: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
        assert_eq!(apps, want, "{vendor}");
        for s in &streams {
            assert!(v["apps"][s]["cursor"].is_string(), "{vendor}: {v}");
        }
    }
}

#[test]
fn cirrus_until_bounds_the_entries() {
    let (sim, a, _) = setup("cirrus");
    let all = Agent::with_config(
        &serde_json::from_str(&std::fs::read_to_string(a.config_path()).unwrap()).unwrap(),
    );
    all.file_cmd().assert().success();
    let entries = all.json_lines();
    assert_eq!(entries.len(), 120);
    // Until the 60th entry's second: only entries up to it.
    let cut = entries[59]["timestamp"].as_str().unwrap()[..19].to_string() + "Z";
    a.file_cmd().args(["--until", &cut]).assert().success();
    let got = a.json_lines();
    assert!(got.len() >= 60 && got.len() < 120, "{}", got.len());
    assert!(
        got.iter()
            .all(|e| e["timestamp"].as_str().unwrap()[..19] <= cut[..19])
    );
    // A later run without --until goes on from there to the end: the
    // saved position does not keep the bound.
    a.file_cmd().assert().success();
    let ids: Vec<Value> = a
        .json_lines()
        .iter()
        .map(|e| e["correlationid"].clone())
        .collect();
    assert_eq!(ids.len(), 120, "{}", a.log());
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        120
    );
    drop(sim);
}

#[test]
fn reset_and_start_date_work_for_every_source() {
    for vendor in ["mcas", "cirrus", "rest"] {
        let (_sim, a, _) = setup(vendor);
        a.file_cmd().assert().success();
        let first = a.json_lines().len();
        assert!(first >= 120, "{vendor}: {first}");
        a.file_cmd().assert().success();
        assert_eq!(
            a.json_lines().len(),
            first,
            "{vendor}: a second run sends nothing"
        );
        // -r: the cursor cleared, everything again from the first-run window.
        a.file_cmd().arg("-r").assert().success();
        assert_eq!(a.json_lines().len(), 2 * first, "{vendor}");
        // --start_date: from that day, over the saved cursor.
        let day = (chrono::Utc::now() - chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string();
        a.file_cmd().args(["--start_date", &day]).assert().success();
        assert!(a.json_lines().len() > 2 * first, "{vendor}");
    }
}

#[test]
fn the_demo_runs_against_each_simulated_api() {
    for vendor in ["mcas", "cirrus", "rest"] {
        let out = Command::new(bin())
            .args(["--demo", "--source", vendor])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{vendor}: {stderr}");
        assert!(stderr.contains("demo: exported"), "{stderr}");
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(lines >= 400, "{vendor}: {lines}");
    }
}
