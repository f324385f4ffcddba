//! Microsoft Defender for Cloud Apps (`"source": "mcas"`) through the
//! binary, against the simulator as that API (`simulate --vendor mcas`):
//! the first run's window, ties across pages and runs, resumed runs,
//! -r and --start_date, rejected tokens, faults retried, hostile values in
//! every format, and the seed agent's CEF fields.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use util::agent::{Agent, Sim, id_of};

const TOKEN: &str = "demo-token";

fn sim(args: &[&str]) -> Sim {
    let mut all = vec!["--vendor", "mcas"];
    all.extend_from_slice(args);
    Sim::start(&all)
}

fn agent(sim: &Sim, extra: Value) -> Agent {
    let mut config = json!({"source": "mcas", "api_server": sim.url(), "token": TOKEN});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Agent::with_config(&config)
}

fn ids(lines: &[Value]) -> Vec<String> {
    lines.iter().map(id_of).collect()
}

/// The time `days` days ago, as the simulator's --start-time.
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[test]
fn a_backfill_with_ties_across_pages_arrives_whole_once_and_a_second_run_sends_nothing() {
    // 150 a second on average: up to 300 alerts share one millisecond,
    // across pages of 100.
    let sim = sim(&["--events", "700", "--per-second", "150", "--plain"]);
    let a = agent(&sim, json!({}));
    a.file_cmd().assert().success();
    let lines = a.json_lines();
    let got = ids(&lines);
    assert_eq!(got.len(), 700, "{}", a.log());
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 700);
    let times: Vec<i64> = lines
        .iter()
        .map(|l| l["timestamp"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let mut shared = times.clone();
    shared.dedup();
    assert!(
        shared.len() < 10,
        "the test needs ties: {} distinct times",
        shared.len()
    );
    let state = a.state().unwrap();
    assert_eq!(state["source"], "mcas");
    assert!(state["cursors"]["alerts"]["ids"].as_array().unwrap().len() > 1);
    // Nothing new: nothing sent.
    a.file_cmd().assert().success();
    assert_eq!(a.json_lines().len(), 700);
    assert!(a.log().contains("alerts: exported 0 logs"), "{}", a.log());
}

#[test]
fn a_run_stopped_inside_a_millisecond_resumes_without_loss_or_repeat() {
    let sim = sim(&["--events", "450", "--per-second", "150", "--plain"]);
    let a = agent(&sim, json!({}));
    // 150 logs: the cursor stops inside a millisecond shared across pages.
    a.file_cmd()
        .args(["--max-events", "150"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 150);
    a.file_cmd()
        .args(["--max-events", "120"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 270);
    a.file_cmd().assert().success();
    let got = ids(&a.json_lines());
    assert_eq!(got.len(), 450);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 450);
}

#[test]
fn alerts_arriving_during_a_run_do_not_shift_its_pages() {
    // Half the alerts at first, 60 more with each request, all sharing
    // few milliseconds: each run reads what is there, the next the rest.
    let sim = sim(&[
        "--events",
        "800",
        "--per-second",
        "150",
        "--plain",
        "--arrive",
        "60",
    ]);
    let a = agent(&sim, json!({}));
    let mut runs = 0;
    while ids(&a.json_lines()).len() < 800 && runs < 10 {
        a.file_cmd().assert().success();
        runs += 1;
    }
    let got = ids(&a.json_lines());
    assert_eq!(got.len(), 800, "after {runs} runs: {}", a.log());
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 800);
    assert!(runs >= 1);
}

#[test]
fn a_later_run_sends_only_the_new_alerts() {
    let start = days_ago(1);
    let first = sim(&[
        "--events",
        "120",
        "--per-second",
        "2",
        "--start-time",
        &start,
    ]);
    let a = agent(&first, json!({}));
    a.file_cmd().assert().success();
    let before: HashSet<String> = ids(&a.json_lines()).into_iter().collect();
    assert_eq!(before.len(), 120);
    drop(first);
    // The same API later: the same alerts and 80 more.
    let later = sim(&[
        "--events",
        "200",
        "--per-second",
        "2",
        "--start-time",
        &start,
    ]);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(a.config_path()).unwrap()).unwrap();
    config["api_server"] = json!(later.url());
    a.write_config(&config.to_string());
    a.file_cmd().assert().success();
    let all = ids(&a.json_lines());
    assert_eq!(all.len(), 200, "{}", a.log());
    let new: Vec<&String> = all[120..].iter().collect();
    assert!(new.iter().all(|id| !before.contains(*id)));
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 200);
}

#[test]
fn the_first_run_takes_two_days_and_start_date_or_reset_go_further() {
    // Alerts three days old: outside the first run's two days.
    let sim = sim(&["--events", "60", "--start-time", &days_ago(3)]);
    let a = agent(&sim, json!({}));
    a.file_cmd().assert().success();
    assert!(a.json_lines().is_empty(), "{}", a.log());
    let day = (chrono::Utc::now() - chrono::Duration::days(4))
        .format("%Y-%m-%d")
        .to_string();
    a.file_cmd().args(["--start_date", &day]).assert().success();
    assert_eq!(a.json_lines().len(), 60);
    // A run after that: nothing new.
    a.file_cmd().assert().success();
    assert_eq!(a.json_lines().len(), 60);
    // -r starts over from the first run's window: nothing of three days ago.
    a.file_cmd().arg("-r").assert().success();
    assert_eq!(a.json_lines().len(), 60);
}

#[test]
fn a_rejected_token_is_one_line_and_shown_nowhere() {
    let sim = sim(&["--events", "10"]);
    let secret = "wrong-token-5f1c0a77";
    let a =
        Agent::with_config(&json!({"source": "mcas", "api_server": sim.url(), "token": secret}));
    let out = a.file_cmd().arg("-d").assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("rejected the credentials (HTTP 401"),
        "{stderr}"
    );
    assert!(stderr.contains("check token"), "{stderr}");
    for text in [
        stderr.to_string(),
        a.log(),
        std::fs::read_to_string(a.path("last_job.status")).unwrap(),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(a.json_lines().is_empty());
    assert!(a.state().is_none());
}

#[test]
fn the_token_may_come_from_the_command_line_or_the_environment() {
    let sim = sim(&["--events", "30", "--plain"]);
    let a = Agent::with_config(&json!({"source": "mcas", "api_server": sim.url()}));
    let out = a.file_cmd().assert().code(1).get_output().clone();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("field \"token\" is missing (or give --token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.file_cmd()
        .env("SIEM_AGENT_MCAS_TOKEN", TOKEN)
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 30);
    // --token over config.json's, and --source naming the config's source.
    let b = agent(&sim, json!({"token": "stale"}));
    b.file_cmd()
        .args(["--token", TOKEN, "--source", "mcas"])
        .assert()
        .success();
    assert_eq!(b.json_lines().len(), 30);
    assert!(!b.log().contains(TOKEN));
}

#[test]
fn rate_limits_server_errors_and_broken_bodies_are_retried() {
    let sim = sim(&[
        "--events",
        "350",
        "--per-second",
        "100",
        "--faults",
        "429,500,503,truncate,reset,malformed,502",
    ]);
    let a = agent(&sim, json!({}));
    a.file_cmd().args(["--retries", "8"]).assert().success();
    let got = ids(&a.json_lines());
    assert_eq!(got.len(), 350, "{}", a.log());
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 350);
    assert!(a.log().contains("retry 1/8"), "{}", a.log());
}

#[test]
fn alerts_and_activities_each_have_their_cursor() {
    let sim = sim(&["--events", "200", "--detect-events", "40", "--plain"]);
    let a = agent(&sim, json!({"data_types": ["activities", "alerts"]}));
    a.file_cmd().assert().success();
    let lines = a.json_lines();
    assert_eq!(lines.iter().filter(|l| l["app"] == "alerts").count(), 200);
    assert_eq!(
        lines.iter().filter(|l| l["app"] == "activities").count(),
        40
    );
    let state = a.state().unwrap();
    assert!(state["cursors"]["alerts"]["timestamp"].is_string());
    assert!(state["cursors"]["activities"]["timestamp"].is_string());
    let bad = agent(&sim, json!({"data_types": ["alerts", "files"]}));
    let out = bad.file_cmd().assert().code(1).get_output().clone();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field \"data_types\" holds \"files\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn severity_filters_alerts_by_severity_value() {
    let sim = sim(&["--events", "300", "--plain"]);
    let all = agent(&sim, json!({}));
    all.file_cmd().assert().success();
    let lines = all.json_lines();
    let high = lines.iter().filter(|l| l["severityValue"] == 2).count();
    assert!(high > 0 && high < 300);
    let a = agent(&sim, json!({}));
    a.file_cmd().args(["--severity", "high"]).assert().success();
    let got = a.json_lines();
    assert_eq!(got.len(), high);
    assert!(got.iter().all(|l| l["severityValue"] == 2));
}

/// The value of CEF extension key `key` in `line` (up to the next ` key=`).
fn cef_value(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    let mut end = rest.len();
    let bytes = rest.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b' ' {
            let tail = &rest[i + 1..];
            if let Some(eq) = tail.find('=')
                && eq > 0
                && tail[..eq].bytes().all(|b| b.is_ascii_alphanumeric())
                && !rest[..i].ends_with('\\')
            {
                end = i;
                break;
            }
        }
    }
    Some(rest[..end].replace("\\=", "=").replace("\\\\", "\\"))
}

#[test]
fn cef_carries_the_seed_agents_fields() {
    let sim = sim(&["--events", "40", "--plain"]);
    let json_agent = agent(&sim, json!({}));
    json_agent.file_cmd().assert().success();
    let logs = json_agent.json_lines();
    let a = agent(&sim, json!({}));
    a.cmd()
        .args(["-o", "FILE", "--format", "cef", "-f"])
        .arg(a.path("out.cef"))
        .assert()
        .success();
    let text = std::fs::read_to_string(a.path("out.cef")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40);
    for (line, log) in lines.iter().zip(&logs) {
        let header: Vec<&str> = line.splitn(8, '|').collect();
        assert_eq!(&header[..3], &["CEF:0", "MCAS", "SIEM_Agent"], "{line}");
        assert_eq!(header[4], log["alertType"].as_str().unwrap());
        assert_eq!(header[5], log["title"].as_str().unwrap());
        let sev = match log["severityValue"].as_i64().unwrap() {
            0 => "3",
            1 => "6",
            _ => "9",
        };
        assert_eq!(header[6], sev, "{line}");
        let ms = log["timestamp"].as_i64().unwrap().to_string();
        let ext = format!(" {}", header[7]);
        let v = |k: &str| cef_value(&ext, k).unwrap_or_else(|| panic!("{k} missing: {line}"));
        assert_eq!(v("externalId"), id_of(log));
        assert_eq!(v("rt"), ms);
        assert_eq!(v("start"), ms);
        assert_eq!(v("end"), ms);
        assert_eq!(v("msg"), log["description"].as_str().unwrap());
        assert_eq!(v("suser"), log["entities"][0]["label"].as_str().unwrap());
        assert_eq!(
            v("destinationServiceName"),
            log["entities"][1]["label"].as_str().unwrap()
        );
        assert_eq!(v("cn1Label"), "riskScore");
        assert_eq!(v("cn1"), log["threatScore"].to_string());
        assert_eq!(v("cs1Label"), "portalURL");
        assert_eq!(v("cs1"), log["URL"].as_str().unwrap());
        assert_eq!(v("cs2Label"), "uniqueServiceAppIds");
        assert_eq!(v("cs2"), log["entities"][1]["id"].as_str().unwrap());
        assert_eq!(v("cs3Label"), "relatedAudits");
        assert_eq!(v("cs3"), log["audits"][0].as_str().unwrap());
        assert_eq!(v("cs4Label"), "policyIDs");
        assert_eq!(v("cs4"), log["policyRule"][0]["id"].as_str().unwrap());
    }
}

#[test]
fn hostile_values_make_one_well_formed_line_each_in_every_format() {
    let sim = sim(&["--events", "140", "--detect-events", "30"]);
    for format in util::agent::LINE_FORMATS {
        let a = agent(&sim, json!({"data_types": ["alerts", "activities"]}));
        let lines = util::agent::lines_in(&a, format);
        assert_eq!(lines.len(), 170, "{format}");
        for line in &lines {
            util::agent::assert_well_formed(format, line, "MCAS|SIEM_Agent", "mcas@32473 _id=\"");
        }
    }
}
