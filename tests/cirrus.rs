//! Cirrus Identity's Log API (`"source": "cirrus"`) through the binary,
//! against the simulator as that API (`simulate --vendor cirrus`): the
//! position cursor (the Link header's next URL, both forms), runs cut
//! inside a page, resumed runs, the seven-day window, --since, --query,
//! -x, the environment credentials, rejected credentials, faults, hostile
//! values in every format, and CEF's fields.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use util::agent::{Agent, Sim};

fn sim(args: &[&str]) -> Sim {
    let mut all = vec!["--vendor", "cirrus"];
    all.extend_from_slice(args);
    Sim::start(&all)
}

fn endpoint(sim: &Sim) -> String {
    format!("{}logs/v1", sim.url())
}

fn agent(sim: &Sim, extra: Value) -> Agent {
    let mut config = json!({
        "source": "cirrus",
        "apiurl": endpoint(sim),
        "apikey": "demo-key",
        "apisecret": "demo-secret",
        "orgurl": "https://example.edu",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            config.as_object_mut().unwrap().remove(k);
        } else {
            config[k] = v.clone();
        }
    }
    Agent::with_config(&config)
}

/// An entry's identity (entries have no id).
fn cid(v: &Value) -> String {
    v["correlationid"].as_str().unwrap_or_default().to_string()
}

fn cids(a: &Agent) -> Vec<String> {
    a.json_lines().iter().map(cid).collect()
}

fn assert_whole_once(got: &[String], n: usize) {
    assert_eq!(got.len(), n);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), n);
}

#[test]
fn a_backfill_follows_the_link_header_in_both_forms_and_a_second_run_sends_nothing() {
    for form in ["angle", "bare"] {
        let sim = sim(&[
            "--events",
            "2300",
            "--per-second",
            "300",
            "--plain",
            "--link-form",
            form,
        ]);
        let a = agent(&sim, json!({}));
        a.file_cmd().assert().success();
        assert_whole_once(&cids(&a), 2300);
        // JSON: each entry as the client printed it, nothing added.
        let text = std::fs::read_to_string(a.path("out.log")).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("{\"timestamp\":\""), "{first}");
        assert!(a.json_lines().iter().all(|e| e.get("app").is_none()));
        let state = a.state().unwrap();
        assert_eq!(state["source"], "cirrus");
        let position = state["cursors"]["logs"]["position"].as_str().unwrap();
        assert!(position.starts_with(&endpoint(&sim)), "{position}");
        assert!(a.log().contains("from 3 pages"), "{form}: {}", a.log());
        a.file_cmd().assert().success();
        assert_eq!(cids(&a).len(), 2300);
        assert!(
            a.log()
                .contains("exporting from the position the last run saved")
        );
    }
}

#[test]
fn runs_cut_inside_pages_resume_without_loss_or_repeat() {
    // 300 entries a second: pages of 100 and runs end inside one second.
    let sim = sim(&["--events", "1000", "--per-second", "300", "--plain"]);
    let a = agent(&sim, json!({}));
    for cap in ["150", "270", "5"] {
        a.file_cmd()
            .args(["--limit", "100", "--max-events", cap])
            .assert()
            .success();
    }
    assert_eq!(cids(&a).len(), 425);
    assert!(
        a.state().unwrap()["cursors"]["logs"]["skip"]
            .as_u64()
            .unwrap()
            > 0
    );
    a.file_cmd().args(["--limit", "100"]).assert().success();
    assert_whole_once(&cids(&a), 1000);
}

#[test]
fn a_later_run_sends_only_the_new_entries() {
    let start = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let first = sim(&[
        "--events",
        "300",
        "--per-second",
        "2",
        "--start-time",
        &start,
        "--plain",
    ]);
    let a = agent(&first, json!({}));
    a.file_cmd().assert().success();
    let before: HashSet<String> = cids(&a).into_iter().collect();
    assert_eq!(before.len(), 300);
    drop(first);
    // The same API later, on another port: the saved position names the
    // old one, so the position's origin must be the configured apiurl.
    let later = sim(&[
        "--events",
        "450",
        "--per-second",
        "2",
        "--start-time",
        &start,
        "--plain",
    ]);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(a.config_path()).unwrap()).unwrap();
    config["apiurl"] = json!(endpoint(&later));
    a.write_config(&config.to_string());
    let out = a.file_cmd().assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the saved position points to")
            && stderr.contains("refusing to send the credentials"),
        "{stderr}"
    );
    // Moved back to where the position points: only the new entries.
    let state = a.state().unwrap();
    let position = state["cursors"]["logs"]["position"]
        .as_str()
        .unwrap()
        .to_string();
    let port_of = |u: &str| {
        u.split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let text = std::fs::read_to_string(a.path("export_log.state"))
        .unwrap()
        .replace(&port_of(&position), &port_of(&endpoint(&later)));
    std::fs::write(a.path("export_log.state"), text).unwrap();
    a.file_cmd().assert().success();
    let all = cids(&a);
    assert_whole_once(&all, 450);
    assert!(all[300..].iter().all(|c| !before.contains(c)));
}

#[test]
fn the_first_run_takes_seven_days_and_since_goes_elsewhere() {
    let old = (chrono::Utc::now() - chrono::Duration::days(9))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let sim = sim(&[
        "--events",
        "40",
        "--per-second",
        "1",
        "--start-time",
        &old,
        "--plain",
    ]);
    let a = agent(&sim, json!({}));
    a.file_cmd().assert().success();
    assert!(cids(&a).is_empty(), "{}", a.log());
    let since = (chrono::Utc::now() - chrono::Duration::days(10))
        .format("%Y-%m-%d %H:%M:%SZ")
        .to_string();
    a.file_cmd().args(["--since", &since]).assert().success();
    assert_whole_once(&cids(&a), 40);
    let out = a
        .file_cmd()
        .args(["--since", "yesterday"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an RFC 3339 time in UTC"));
}

#[test]
fn query_is_sent_and_applied_and_x_makes_one_request_without_moving_the_position() {
    let sim = sim(&["--events", "900", "--per-second", "50", "--plain"]);
    let all = agent(&sim, json!({}));
    all.file_cmd().assert().success();
    let every = all.json_lines();
    let mfa = every.iter().filter(|e| e["metricsubtype"] == "mfa").count();
    assert!(mfa > 0 && mfa < 900);
    let q = agent(&sim, json!({}));
    q.file_cmd()
        .args(["--query", "metrictype=auth,metricsubtype=mfa"])
        .assert()
        .success();
    let got = q.json_lines();
    assert_eq!(got.len(), mfa);
    assert!(got.iter().all(|e| e["metricsubtype"] == "mfa"));
    let out = q
        .file_cmd()
        .args(["--query", "colour=red"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("'colour' is not a query key"));

    let x = agent(&sim, json!({}));
    x.file_cmd()
        .args(["-x", "--limit", "100"])
        .assert()
        .success();
    assert_eq!(cids(&x).len(), 100);
    assert!(
        x.state()
            .is_none_or(|s| s["cursors"]["logs"]["position"].is_null())
    );
    x.file_cmd()
        .args(["-x", "--limit", "100"])
        .assert()
        .success();
    assert_eq!(cids(&x)[..100], cids(&x)[100..]);
}

#[test]
fn credentials_from_flags_or_environment_and_rejected_ones_shown_nowhere() {
    let sim = sim(&["--events", "30", "--plain"]);
    let bare = agent(&sim, json!({"apikey": null, "apisecret": null}));
    let out = bare.file_cmd().assert().code(1).get_output().clone();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("field \"apikey\" is missing (or give --apikey, or set API_KEY)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bare.file_cmd()
        .env("API_KEY", "demo-key")
        .env("API_SECRET", "demo-secret")
        .assert()
        .success();
    assert_eq!(cids(&bare).len(), 30);
    let flags = agent(
        &sim,
        json!({"apikey": null, "apisecret": null, "orgurl": null, "apiurl": "https://unused.invalid/logs/v1"}),
    );
    flags
        .file_cmd()
        .args([
            "--apikey",
            "demo-key",
            "--apisecret",
            "demo-secret",
            "--orgurl",
            "https://example.edu",
        ])
        .args(["--apiurl", &endpoint(&sim)])
        .assert()
        .success();
    assert_eq!(cids(&flags).len(), 30);

    let secret = "wrong-secret-a9c3";
    let bad = agent(&sim, json!({"apisecret": secret}));
    let out = bad
        .file_cmd()
        .arg("-d")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("rejected the credentials (HTTP 403"),
        "{stderr}"
    );
    assert!(stderr.contains("check apikey and apisecret"), "{stderr}");
    let basic = siem_agent::source::http::base64(format!("demo-key:{secret}").as_bytes());
    for text in [stderr.to_string(), bad.log()] {
        assert!(!text.contains(secret) && !text.contains(&basic), "{text}");
    }
    assert!(bad.state().is_none());
}

#[test]
fn rate_limits_server_errors_and_broken_bodies_are_retried() {
    let sim = sim(&[
        "--events",
        "2500",
        "--faults",
        "429,500,503,truncate,reset,malformed,502",
    ]);
    let a = agent(&sim, json!({}));
    a.file_cmd().args(["--retries", "8"]).assert().success();
    assert_whole_once(&cids(&a), 2500);
    assert!(a.log().contains("retry 1/8"));
}

#[test]
fn hostile_values_make_one_well_formed_line_each_in_every_format_and_cef_maps_the_fields() {
    let sim = sim(&["--events", "140"]);
    for format in util::agent::LINE_FORMATS {
        let lines = util::agent::lines_in(&agent(&sim, json!({})), format);
        assert_eq!(lines.len(), 140, "{format}");
        for line in &lines {
            util::agent::assert_well_formed(
                format,
                line,
                "Cirrus Identity|Log API",
                "cirrus@32473 timestamp=\"",
            );
        }
    }
    // CEF's fields, against the same entries as JSON.
    let plain = self::sim(&["--events", "20", "--plain"]);
    let j = agent(&plain, json!({}));
    j.file_cmd().assert().success();
    let c = agent(&plain, json!({}));
    c.cmd()
        .args(["-o", "FILE", "--format", "cef", "-f"])
        .arg(c.path("out.cef"))
        .assert()
        .success();
    let text = std::fs::read_to_string(c.path("out.cef")).unwrap();
    for (line, e) in text.lines().zip(j.json_lines()) {
        let sig = format!(
            "|{}:{}|",
            e["metrictype"].as_str().unwrap(),
            e["metricsubtype"].as_str().unwrap()
        );
        assert!(line.contains(&sig), "{line}");
        let ms = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        for part in [
            format!("|rt={ms} "),
            format!(" suser={} ", e["user"].as_str().unwrap()),
            format!(" src={} ", e["clientip"].as_str().unwrap()),
            format!(
                " destinationServiceName={} ",
                e["service"].as_str().unwrap()
            ),
            format!(" cirrusCorrelationid={}", cid(&e)),
            " cirrusTenant=demo ".to_string(),
        ] {
            assert!(line.contains(&part), "{part:?} not in {line}");
        }
    }
}
