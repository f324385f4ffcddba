//! A REST API declared in config.json (`"source": "rest"`) through the
//! binary, against the simulator's four shapes (`simulate --vendor rest`):
//! each way of naming the next page (link, body, token, offset), the
//! (time, ids) cursor across runs, a later run, the first-run window,
//! --start_date, rejected credentials shown nowhere, faults retried,
//! hostile values in every format, and declaration errors in one line.
//! The README's three worked examples are the first three configs here.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use util::agent::{Agent, Sim};

fn sim(args: &[&str]) -> Sim {
    let mut all = vec!["--vendor", "rest"];
    all.extend_from_slice(args);
    Sim::start(&all)
}

/// The four declarations, by their `next` style.
fn declarations(sim: &Sim) -> Vec<(&'static str, Value, &'static str)> {
    let base = sim.url();
    vec![
        (
            "link",
            // Okta's System Log.
            json!({"source": "rest", "url": format!("{base}api/v1/logs"),
                   "headers": {"Authorization": "SSWS demo-token"},
                   "params": {"limit": "100"}, "since_param": "since",
                   "time_field": "published", "id_field": "uuid", "next": "link",
                   "hec_sourcetype": "okta:im2:log",
                   "mapping": okta_mapping()}),
            "uuid",
        ),
        (
            "body",
            // The next URL in the answer.
            json!({"source": "rest", "url": format!("{base}body/events"),
                   "auth": {"bearer": "demo-token"}, "since_param": "since",
                   "records": "/data/items", "time_field": "published", "id_field": "uuid",
                   "next": "body:/links/next"}),
            "uuid",
        ),
        (
            "offset",
            // Paged by offset, times in epoch milliseconds.
            json!({"source": "rest", "url": format!("{base}offset/events"),
                   "headers": {"X-Api-Key": "demo-secret"}, "params": {"limit": "30"},
                   "since_param": "since_ms", "since_format": "epoch_ms",
                   "records": "/results", "time_field": "time", "time_format": "epoch_ms",
                   "id_field": "id", "next": "offset:offset"}),
            "id",
        ),
        (
            "token",
            json!({"source": "rest", "url": format!("{base}token/events"),
                   "auth": {"basic": ["demo-key", "demo-secret"]},
                   "since_param": "from", "since_format": "epoch_s",
                   "records": "/records", "time_field": "/meta/created", "time_format": "epoch_ms",
                   "id_field": "uuid", "next": "token:/meta/next_token:page_token"}),
            "uuid",
        ),
    ]
}

/// The README's mapping of Okta's System Log to CEF and LEEF.
fn okta_mapping() -> Value {
    json!({"vendor": "Okta", "product": "System Log",
           "signature": "/eventType", "name": ["/displayMessage", "/eventType"],
           "severity": {"field": "/severity", "map": {"DEBUG": 1, "INFO": 3, "WARN": 6, "ERROR": 8}},
           "keys": {"suser": "/actor/alternateId", "src": "/client/ipAddress",
                    "outcome": "/outcome/result", "msg": "/displayMessage"}})
}

#[test]
fn the_declared_mapping_shapes_cef_and_leef() {
    let sim = sim(&["--events", "60"]);
    let (_, config, _) = declarations(&sim).remove(0);
    let a = Agent::with_config(&config);
    let cef = util::agent::lines_in(&a, "cef");
    assert_eq!(cef.len(), 60);
    let _ = std::fs::remove_file(a.path("export_log.state"));
    let leef = util::agent::lines_in(&a, "leef");
    assert_eq!(leef.len(), 60);
    let _ = std::fs::remove_file(a.path("export_log.state"));
    let json = {
        a.file_cmd().assert().success();
        a.json_lines()
    };
    let version = env!("CARGO_PKG_VERSION");
    for ((c, l), j) in cef.iter().zip(&leef).zip(&json) {
        util::agent::assert_well_formed("cef", c, "Okta|System Log", "");
        util::agent::assert_well_formed("leef", l, "Okta|System Log", "");
        // Every seventh record holds hostile values (checked well formed).
        let plain = |k: &str| {
            j[k].as_str().is_some_and(|t| {
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " .-_".contains(c))
            })
        };
        let hostile = !plain("eventType") || !plain("displayMessage") || !plain("severity");
        let sev = match j["severity"].as_str() {
            Some("INFO") => "3",
            Some("WARN") => "6",
            _ => "5",
        };
        let user = j["actor"]["alternateId"].as_str().unwrap();
        let ip = j["client"]["ipAddress"].as_str().unwrap();
        let outcome = j["outcome"]["result"].as_str().unwrap();
        if !hostile {
            let kind = j["eventType"].as_str().unwrap();
            let message = j["displayMessage"].as_str().unwrap();
            assert!(
                c.starts_with(&format!(
                    "CEF:0|Okta|System Log|{version}|{kind}|{message}|{sev}|"
                )),
                "{c}"
            );
            assert!(
                l.starts_with(&format!("LEEF:2.0|Okta|System Log|{version}|{kind}|x09|")),
                "{l}"
            );
            assert!(c.contains(&format!(" msg={message}")), "{c}");
            // Taken by msg: not repeated as a custom key.
            assert!(!c.contains("restDisplayMessage="), "{c}");
        }
        assert!(
            c.contains(&format!(" suser={user} src={ip} outcome={outcome}")),
            "{c}"
        );
        assert!(c.contains(" restActor="), "{c}");
        assert!(
            l.contains(&format!("\tusrName={user}\tsrc={ip}\toutcome={outcome}")),
            "{l}"
        );
        assert!(l.contains(&format!("\tsev={}\t", sev.max("1"))), "{l}");
    }
    // A mapping that does not fit is one line naming it.
    let mut bad = config.clone();
    bad["mapping"]["keys"]["user"] = json!("/actor/alternateId");
    let b = Agent::with_config(&bad);
    let out = b.file_cmd().assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("field \"mapping\"") && err.contains("\"user\""),
        "{err}"
    );
}

fn ids(a: &Agent, id: &str) -> Vec<String> {
    a.json_lines()
        .iter()
        .map(|l| match &l[id] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn assert_whole_once(got: &[String], n: usize, what: &str) {
    assert_eq!(got.len(), n, "{what}");
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), n, "{what}");
}

#[test]
fn each_next_style_backfills_whole_once_and_a_second_run_sends_nothing() {
    // 200 a second on average: many records share a second across pages.
    let sim = sim(&["--events", "450", "--per-second", "200", "--plain"]);
    for (style, config, id) in declarations(&sim) {
        let a = Agent::with_config(&config);
        a.file_cmd().assert().success();
        assert_whole_once(&ids(&a, id), 450, style);
        let state = a.state().unwrap();
        assert_eq!(state["source"], "rest");
        assert!(state["cursors"]["logs"]["timestamp"].is_string(), "{style}");
        a.file_cmd().assert().success();
        assert_eq!(ids(&a, id).len(), 450, "{style}: {}", a.log());
        // Cut short and resumed: nothing lost, nothing twice.
        let b = Agent::with_config(&config);
        for cap in ["130", "95"] {
            b.file_cmd().args(["--max-events", cap]).assert().success();
        }
        b.file_cmd().assert().success();
        assert_whole_once(&ids(&b, id), 450, style);
    }
}

#[test]
fn a_later_run_sends_only_the_new_records_and_the_first_run_takes_seven_days() {
    let start = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let first = sim(&[
        "--events",
        "200",
        "--per-second",
        "3",
        "--start-time",
        &start,
        "--plain",
    ]);
    let (_, config, id) = declarations(&first).remove(0);
    let a = Agent::with_config(&config);
    a.file_cmd().assert().success();
    let before: HashSet<String> = ids(&a, id).into_iter().collect();
    assert_eq!(before.len(), 200);
    drop(first);
    let later = sim(&[
        "--events",
        "320",
        "--per-second",
        "3",
        "--start-time",
        &start,
        "--plain",
    ]);
    let (_, config, _) = declarations(&later).remove(0);
    a.write_config(&config.to_string());
    a.file_cmd().assert().success();
    let all = ids(&a, id);
    assert_whole_once(&all, 320, "later");
    assert!(all[200..].iter().all(|i| !before.contains(i)));

    // Records ten days old: outside the first run's seven days.
    let old = (chrono::Utc::now() - chrono::Duration::days(10))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let sim = sim(&[
        "--events",
        "50",
        "--per-second",
        "1",
        "--start-time",
        &old,
        "--plain",
    ]);
    let (_, config, id) = declarations(&sim).remove(1);
    let b = Agent::with_config(&config);
    b.file_cmd().assert().success();
    assert!(ids(&b, id).is_empty(), "{}", b.log());
    let day = (chrono::Utc::now() - chrono::Duration::days(11))
        .format("%Y-%m-%d")
        .to_string();
    b.file_cmd().args(["--start_date", &day]).assert().success();
    assert_whole_once(&ids(&b, id), 50, "start_date");
}

#[test]
fn rejected_credentials_are_one_line_and_the_secrets_are_shown_nowhere() {
    let sim = sim(&["--events", "20"]);
    for (style, mut config, _) in declarations(&sim) {
        let secret = "Zq9-not-the-right-secret";
        match style {
            "link" => config["headers"]["Authorization"] = json!(format!("SSWS {secret}")),
            "body" => config["auth"]["bearer"] = json!(secret),
            "offset" => config["headers"]["X-Api-Key"] = json!(secret),
            _ => config["auth"]["basic"][1] = json!(secret),
        }
        let a = Agent::with_config(&config);
        let out = a.file_cmd().arg("-d").assert().code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{style}: {stderr}");
        assert!(
            stderr.contains("rejected the credentials (HTTP 401"),
            "{style}: {stderr}"
        );
        assert!(stderr.contains("check headers and auth"), "{stderr}");
        for text in [stderr.to_string(), a.log()] {
            assert!(!text.contains(secret), "{style}: {text}");
        }
        assert!(a.json_lines().is_empty());
    }
}

#[test]
fn rate_limits_server_errors_and_broken_bodies_are_retried() {
    let sim = sim(&[
        "--events",
        "300",
        "--faults",
        "429,500,503,truncate,reset,malformed,502",
    ]);
    let (_, config, id) = declarations(&sim).remove(0);
    let a = Agent::with_config(&config);
    a.file_cmd().args(["--retries", "8"]).assert().success();
    assert_whole_once(&ids(&a, id), 300, "faults");
    assert!(a.log().contains("retry 1/8"));
}

#[test]
fn hostile_values_make_one_well_formed_line_each_in_every_format() {
    let sim = sim(&["--events", "140"]);
    for (style, config, _) in declarations(&sim).into_iter().take(2) {
        for format in util::agent::LINE_FORMATS {
            let lines = util::agent::lines_in(&Agent::with_config(&config), format);
            assert_eq!(lines.len(), 140, "{style} {format}");
            for line in &lines {
                // The first (Okta's) has its mapping.
                let header = if style == "link" {
                    "Okta|System Log"
                } else {
                    "siem-agent|REST API"
                };
                util::agent::assert_well_formed(format, line, header, "rest@32473 uuid=\"");
            }
        }
    }
}

#[test]
fn a_wrong_or_missing_key_is_one_line_naming_it() {
    let sim = sim(&["--events", "5"]);
    let (_, config, _) = declarations(&sim).remove(0);
    for (change, msg) in [
        (json!({"next": "pages"}), "field \"next\" is \"pages\""),
        (
            json!({"time_field": null}),
            "field \"time_field\" is missing",
        ),
        (
            json!({"records": "data"}),
            "field \"records\" must be a JSON pointer",
        ),
        (json!({"auth": {"digest": "x"}}), "field \"auth\" must be"),
    ] {
        let mut c = config.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let a = Agent::with_config(&c);
        let out = a.file_cmd().assert().code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("config.json: ") && stderr.contains(msg),
            "{stderr}"
        );
        assert!(!stderr.contains("demo-token"), "{stderr}");
    }
    // A key of no declaration: warned about by name, not an error.
    let mut c = config.clone();
    c["pagination"] = json!("x");
    let a = Agent::with_config(&c);
    a.file_cmd().assert().success();
    assert!(
        a.log().contains("unknown key \"pagination\""),
        "{}",
        a.log()
    );
}

#[test]
fn a_declared_parameter_is_not_shown_in_the_debug_log() {
    let sim = sim(&["--events", "40", "--plain"]);
    let (_, mut config, id) = declarations(&sim).remove(0);
    // Some APIs take their key as a query parameter.
    config["params"]["api_key"] = json!("Kx9-param-secret-value");
    let a = Agent::with_config(&config);
    a.file_cmd().arg("-d").assert().success();
    assert_whole_once(&ids(&a, id), 40, "params");
    let log = a.log();
    assert!(log.contains("GET ") && log.contains("api_key=***"), "{log}");
    assert!(!log.contains("Kx9-param-secret-value"), "{log}");
}

#[test]
fn a_declaration_that_does_not_fit_the_api_stops_instead_of_looping_or_resending() {
    let sim = sim(&["--events", "300", "--plain"]);
    let decls = declarations(&sim);
    // A misspelt offset parameter: the API answers its first page again
    // and again; the run ends there, each record sent once, and fails
    // (the records after the first page are missing).
    let (_, mut config, id) = decls[2].clone();
    config["next"] = json!("offset:ofset");
    let a = Agent::with_config(&config);
    a.file_cmd().assert().code(1);
    let got = ids(&a, id);
    assert_eq!(got.len(), 30, "{}", a.log());
    assert!(
        a.log().contains("answered the same page for offset") && a.log().contains("check next"),
        "{}",
        a.log()
    );
    // Times that are not where time_field says, or not as time_format
    // says: one line naming them, nothing sent, the cursor unmoved.
    for change in [
        json!({"time_field": "publishd"}),
        json!({"time_format": "epoch_s"}),
    ] {
        let (_, mut config, _) = decls[0].clone();
        for (k, v) in change.as_object().unwrap() {
            config[k] = v.clone();
        }
        let a = Agent::with_config(&config);
        let out = a.file_cmd().assert().code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("config.json: no record of the answer has a time"),
            "{stderr}"
        );
        assert!(
            stderr.contains("check time_field and time_format"),
            "{stderr}"
        );
        assert!(a.json_lines().is_empty());
        assert!(a.state().is_none());
    }
    // Records where the answer has none.
    let (_, mut config, _) = decls[1].clone();
    config["records"] = json!("/data/entries");
    let a = Agent::with_config(&config);
    let out = a.file_cmd().assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the answer has nothing at \"records\" \"/data/entries\""),
        "{stderr}"
    );
}
