//! The run loop's delivery discipline (`run/ledger.rs`), through the
//! binary, against hostile APIs on 127.0.0.1 (issue 21): pages that loop,
//! repeat, run newest first or out of order, and fail midway. Each test
//! failed on the agent before the discipline: records sent without end,
//! lost, or sent again by every run.

mod util;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use util::agent::Agent;
use util::stub::{AnyStub, param};
use wiremock::ResponseTemplate;

/// Records `r000`.. one second apart, a day ago (inside the first run's
/// window of a declared API).
fn records(n: usize) -> Vec<Value> {
    let base = Utc::now() - Duration::days(1);
    (0..n)
        .map(|i| {
            let t = base + Duration::seconds(i as i64);
            json!({"uuid": format!("r{i:03}"), "published": t.to_rfc3339_opts(SecondsFormat::Secs, true), "msg": "m"})
        })
        .collect()
}

fn time_of(r: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(r["published"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Those of `all` at or after the request's `since`.
fn since(req: &wiremock::Request, all: &[Value]) -> Vec<Value> {
    let from = param(req, "since")
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc));
    all.iter()
        .filter(|r| from.is_none_or(|f| time_of(r) >= f))
        .cloned()
        .collect()
}

/// The stub's own origin, as the agent was told it.
fn origin(req: &wiremock::Request) -> String {
    let host = req.headers.get("host").unwrap().to_str().unwrap();
    format!("http://{host}")
}

fn json_page(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A declared REST API at the stub, with `extra` keys.
fn agent(api: &AnyStub, extra: Value) -> Agent {
    let mut config = json!({"source": "rest", "url": format!("{}/logs", api.uri()),
        "since_param": "since", "time_field": "published", "id_field": "uuid"});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Agent::with_config(&config)
}

struct Run {
    code: Option<i32>,
    stderr: String,
}

fn run(a: &Agent, extra: &[&str]) -> Run {
    let out = a
        .file_cmd()
        .args(extra)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How many times each record was written.
fn copies(a: &Agent) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in a.json_lines() {
        *m.entry(l["uuid"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

fn assert_each_once(a: &Agent, n: usize, what: &str) {
    let c = copies(a);
    let twice: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: written more than once: {twice:?}"
    );
    assert_eq!(c.len(), n, "{what}: {} of {n} records", c.len());
}

/// The run failed for lack of progress, named the source and stream, and
/// the status says why.
fn assert_stalled(a: &Agent, r: &Run, why: &str) {
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("rest logs: ") && r.stderr.contains(why),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("logs may be missing upstream"),
        "{}",
        r.stderr
    );
    let status = a.status().unwrap();
    assert_eq!(status["state"], "failed", "{status}");
    assert!(status["error"].as_str().unwrap().contains(why), "{status}");
    assert!(a.log().contains(why), "{}", a.log());
}

#[test]
fn a_link_loop_ends_the_stream_with_each_record_once() {
    // p0 -> p1 -> p2 -> p0: 142 copies of each record in 10 s before.
    let all = records(15);
    let api = AnyStub::start(move |req, _| {
        let p: usize = param(req, "page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let next = format!("<{}/logs?page={}>; rel=\"next\"", origin(req), (p + 1) % 3);
        json_page(Value::Array(all[p * 5..p * 5 + 5].to_vec())).insert_header("Link", next.as_str())
    });
    let a = agent(&api, json!({"next": "link"}));
    let r = run(&a, &[]);
    assert_stalled(
        &a,
        &r,
        "the API led back to a request this run already made",
    );
    assert_each_once(&a, 15, "link loop");
    assert!(api.requests() <= 5, "{} requests", api.requests());
    // What was delivered is committed: the next run sends nothing again.
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(1));
    assert_each_once(&a, 15, "second run");
}

#[test]
fn a_token_cycle_ends_the_stream_with_each_record_once() {
    // t1 -> t2 -> t1: 220 copies before.
    let all = records(15);
    let api = AnyStub::start(move |req, _| {
        let (p, next) = match param(req, "page_token").as_deref() {
            None => (0, "t1"),
            Some("t1") => (1, "t2"),
            _ => (2, "t1"),
        };
        json_page(json!({"items": all[p * 5..p * 5 + 5], "next": next}))
    });
    let a = agent(
        &api,
        json!({"records": "/items", "next": "token:/next:page_token"}),
    );
    let r = run(&a, &[]);
    assert_stalled(&a, &r, "already made");
    assert_each_once(&a, 15, "token cycle");
}

#[test]
fn a_next_url_in_the_body_that_never_changes_ends_the_stream() {
    // 218 copies in 5 s before.
    let all = records(10);
    let api = AnyStub::start(move |req, _| {
        let again = param(req, "cursor").is_some();
        let next = format!("{}/logs?cursor=same", origin(req));
        let items = if again { &all[5..] } else { &all[..5] };
        json_page(json!({"items": items, "next": next}))
    });
    let a = agent(&api, json!({"records": "/items", "next": "body:/next"}));
    let r = run(&a, &[]);
    assert_stalled(&a, &r, "already made");
    assert_each_once(&a, 10, "body next");
    assert!(api.requests() <= 3, "{} requests", api.requests());
}

#[test]
fn pages_that_bring_nothing_new_end_the_stream() {
    // Every token after the second answers the same last page, with a new
    // token each time (an API that caps its position).
    let all = records(10);
    let api = AnyStub::start(move |req, _| {
        let n: usize = param(req, "page_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let items = if n == 0 { &all[..5] } else { &all[5..] };
        json_page(json!({"items": items, "next": (n + 1).to_string()}))
    });
    let a = agent(
        &api,
        json!({"records": "/items", "next": "token:/next:page_token"}),
    );
    let r = run(&a, &[]);
    assert_stalled(&a, &r, "3 pages in a row brought nothing new");
    assert_each_once(&a, 10, "capped position");
    // Five pages, the server's clock, and what the fetcher read ahead.
    assert!(api.requests() <= 8, "{} requests", api.requests());
}

#[test]
fn overlapping_pages_write_each_record_once() {
    // Each page starts five records after the one before but holds ten.
    let all = records(50);
    let api = AnyStub::start(move |req, _| {
        let n: usize = param(req, "page_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let items = &all[n * 5..(n * 5 + 10).min(50)];
        let next = (n * 5 + 10 < 50).then(|| (n + 1).to_string());
        json_page(json!({"items": items, "next": next}))
    });
    let a = agent(
        &api,
        json!({"records": "/items", "next": "token:/next:page_token"}),
    );
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 50, "overlapping pages");
}

#[test]
fn records_without_an_id_are_never_dropped_for_their_content() {
    // Two identical events in one second are two events, also when a
    // page of them has the same content as the one before: it counts as
    // nothing new, and is sent.
    let base = (Utc::now() - Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let same = json!({"published": base, "msg": "login failed", "user": "bob"});
    let other = json!({"published": base, "msg": "login ok", "user": "eve"});
    let api = AnyStub::start(move |req, _| {
        let n: usize = param(req, "page_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        match n {
            0 | 1 => json_page(json!({"items": [same, same], "next": (n + 1).to_string()})),
            _ => json_page(json!({"items": [other]})),
        }
    });
    let mut config = json!({"source": "rest", "url": format!("{}/logs", api.uri()),
        "since_param": "since", "time_field": "published",
        "records": "/items", "next": "token:/next:page_token"});
    config["id_field"] = Value::Null;
    config.as_object_mut().unwrap().remove("id_field");
    let a = Agent::with_config(&config);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let msgs: Vec<String> = a
        .json_lines()
        .iter()
        .map(|l| l["msg"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        msgs,
        [
            "login failed",
            "login failed",
            "login failed",
            "login failed",
            "login ok"
        ]
    );
    assert!(
        a.log()
            .contains("the same content as one this run already read"),
        "{}",
        a.log()
    );
}

/// An API paged by offset (`limit` per page) that serves `order` (indexes
/// into `all`); `fail_at` makes every page reaching past that many records
/// answer 500 while the flag is set.
fn offset_api(
    all: Vec<Value>,
    order: Vec<usize>,
    limit: usize,
    fail_at: Option<(usize, Arc<AtomicBool>)>,
) -> AnyStub {
    AnyStub::start(move |req, _| {
        let offset: usize = param(req, "offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        if let Some((at, on)) = &fail_at
            && offset + limit > *at
            && on.load(Ordering::SeqCst)
        {
            return ResponseTemplate::new(500).set_body_string("down");
        }
        let served: Vec<Value> = order.iter().map(|&i| all[i].clone()).collect();
        let served = since(req, &served);
        let end = (offset + limit).min(served.len());
        json_page(Value::Array(served[offset.min(end)..end].to_vec()))
    })
}

fn offset_agent(api: &AnyStub, limit: usize) -> Agent {
    agent(
        api,
        json!({"params": {"limit": limit.to_string()}, "next": "offset:offset"}),
    )
}

#[test]
fn newest_first_with_a_failing_page_loses_nothing_and_repeats_nothing() {
    // Before: run 1 sent 10 and saved the newest record's time; run 2
    // exported nothing and exited 0: 20 records lost.
    let all = records(30);
    let down = Arc::new(AtomicBool::new(true));
    let api = offset_api(all, (0..30).rev().collect(), 10, Some((10, down.clone())));
    let a = offset_agent(&api, 10);
    let r = run(&a, &["--retries", "1"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_each_once(&a, 10, "run 1");
    assert!(a.log().contains("out of time order"), "{}", a.log());
    down.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 30, "run 2");
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 30, "run 3");
}

#[test]
fn newest_first_cut_by_max_events_loses_nothing_and_repeats_nothing() {
    // Before: 25 of 30 lost with --max-events 5.
    let all = records(30);
    let newest = all[29]["published"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z')
        .to_string();
    let api = offset_api(all, (0..30).rev().collect(), 10, None);
    let a = offset_agent(&api, 10);
    for i in 1..=6 {
        let r = run(&a, &["--max-events", "5"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_each_once(&a, 5 * i, &format!("run {i}"));
    }
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 30, "the last run");
    // Read back to where it started: the cursor is at the newest record.
    let state = a.state().unwrap();
    let cursor = &state["cursors"]["logs"];
    assert!(cursor["ahead"].is_null(), "{state}");
    assert_eq!(cursor["timestamp"], newest.as_str(), "{state}");
}

/// 300 records with each adjacent pair swapped.
fn swapped_pairs() -> Vec<usize> {
    (0..300).map(|i| i ^ 1).collect()
}

#[test]
fn out_of_order_pages_cut_by_max_events_are_each_delivered_once() {
    // Before: after 4 runs, 94 records delivered 4 times.
    let all = records(300);
    let api = offset_api(all, swapped_pairs(), 50, None);
    let a = offset_agent(&api, 50);
    for i in 1..=3 {
        let r = run(&a, &["--max-events", "100"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_each_once(&a, 100 * i, &format!("run {i}"));
    }
    let r = run(&a, &["--max-events", "100"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 300, "run 4");
}

#[test]
fn a_failing_page_after_out_of_order_ones_is_not_followed_by_repeats() {
    // Before: each failed run sent about 148 records again.
    let all = records(300);
    let down = Arc::new(AtomicBool::new(true));
    let api = offset_api(all, swapped_pairs(), 50, Some((150, down.clone())));
    let a = offset_agent(&api, 50);
    let r = run(&a, &["--retries", "1"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let first = copies(&a).len();
    assert!(first >= 140, "{first} records before the failing page");
    assert_each_once(&a, first, "failed run 1");
    let r = run(&a, &["--retries", "1"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_each_once(&a, first, "failed run 2");
    down.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 300, "healthy run");
}

fn cirrus_agent(sim: &util::agent::Sim) -> Agent {
    Agent::with_config(&json!({
        "source": "cirrus",
        "apiurl": format!("{}logs/v1", sim.url()),
        "apikey": "demo-key",
        "apisecret": "demo-secret",
        "orgurl": "https://example.edu",
    }))
}

#[test]
fn a_start_date_left_in_a_recurring_job_is_warned_about() {
    // Three runs re-exported their whole window without a word before.
    let sim = util::agent::Sim::start(&["--events", "50", "--per-second", "1"]);
    let a = Agent::new(&sim.url());
    let day = (Utc::now() - Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    for i in 0..2 {
        let out = a
            .file_cmd()
            .args(["--severity", "all", "--start_date", &day])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warned = stderr.contains(&format!("--start_date {day} is before the saved cursor"))
            && stderr.contains("remove --start_date from a recurring job");
        assert_eq!(warned, i == 1, "run {i}: {stderr}");
    }
}

#[test]
fn since_in_the_future_is_named_as_such() {
    let sim = util::agent::Sim::start(&["--vendor", "cirrus", "--events", "5"]);
    let a = cirrus_agent(&sim);
    let later = (Utc::now() + Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let out = a.file_cmd().args(["--since", &later]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--since") && stderr.contains("is in the future"),
        "{stderr}"
    );
    assert!(!stderr.contains("saved cursor"), "{stderr}");
}

#[test]
fn a_cirrus_position_saved_without_its_time_is_resumed_and_said_so() {
    let sim =
        util::agent::Sim::start(&["--vendor", "cirrus", "--events", "250", "--per-second", "1"]);
    let a = cirrus_agent(&sim);
    assert!(
        a.file_cmd()
            .args(["--max-events", "120"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let state = a.path("export_log.state");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let cursor = &mut v["cursors"]["logs"];
    assert!(cursor["position"].is_string(), "{v}");
    cursor["timestamp"] = Value::Null;
    std::fs::write(&state, v.to_string()).unwrap();
    let out = a.file_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the saved position has no timestamp"),
        "{stderr}"
    );
    // Resumed where it stopped: every entry once, none from a restart.
    let lines = a.json_lines();
    let ids: std::collections::HashSet<String> = lines
        .iter()
        .map(|l| l["correlationid"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(lines.len(), 250);
    assert_eq!(ids.len(), 250);
}

/// What a page of [`link_api`] answers while its flag is set.
#[derive(Clone, Copy)]
enum Flagged {
    /// Every page after the first answers 500.
    Fail,
    /// The second page is empty, and still names the third.
    Empty,
}

/// An API serving `pages` in order, each naming the next in its `Link`
/// header, and answering as `flagged` says while `flag` is set.
fn link_api(pages: Vec<Vec<Value>>, flag: Arc<AtomicBool>, flagged: Flagged) -> AnyStub {
    AnyStub::start(move |req, _| {
        let p: usize = param(req, "page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let on = flag.load(Ordering::SeqCst);
        let items = match flagged {
            Flagged::Fail if on && p >= 1 => {
                return ResponseTemplate::new(500).set_body_string("down");
            }
            Flagged::Empty if on && p == 1 => Vec::new(),
            _ => pages[p].clone(),
        };
        let page = json_page(Value::Array(items));
        if p + 1 < pages.len() {
            let next = format!("<{}/logs?page={}>; rel=\"next\"", origin(req), p + 1);
            page.insert_header("Link", next.as_str())
        } else {
            page
        }
    })
}

#[test]
fn a_declared_newest_first_api_holds_the_cursor_from_its_first_record() {
    // One record a page: no page shows the order, the declaration does.
    let all = records(5);
    let down = Arc::new(AtomicBool::new(true));
    let api = link_api(
        (0..5).rev().map(|i| vec![all[i].clone()]).collect(),
        down.clone(),
        Flagged::Fail,
    );
    let a = agent(&api, json!({"next": "link", "order": "newest_first"}));
    let r = run(&a, &["--retries", "1"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_each_once(&a, 1, "run 1");
    down.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 5, "run 2");
    let bad = agent(&api, json!({"next": "link", "order": "sideways"}));
    let r = run(&bad, &[]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("field \"order\" is \"sideways\": oldest_first or newest_first"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_undeclared_newest_first_api_whose_first_page_shows_no_order_loses_nothing() {
    // A first page of one record: it alone cannot show the order; before,
    // its time was saved and the 30 older records were lost for good.
    let all = records(31);
    let down = Arc::new(AtomicBool::new(true));
    let api = link_api(
        std::iter::once(vec![all[30].clone()])
            .chain((0..3).map(|p| {
                all[20 - p * 10..30 - p * 10]
                    .iter()
                    .rev()
                    .cloned()
                    .collect()
            }))
            .collect(),
        down.clone(),
        Flagged::Fail,
    );
    let a = agent(&api, json!({"next": "link"}));
    let r = run(&a, &["--retries", "0"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_each_once(&a, 1, "run 1");
    down.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 31, "run 2");
}

#[test]
fn pages_that_go_back_in_time_each_oldest_first_lose_nothing() {
    // Page 1: r020..r029, page 2: r010..r019, page 3: r000..r009.
    let all = records(30);
    let down = Arc::new(AtomicBool::new(true));
    let api = link_api(
        (0..3)
            .map(|p| all[20 - p * 10..30 - p * 10].to_vec())
            .collect(),
        down.clone(),
        Flagged::Fail,
    );
    let a = agent(&api, json!({"next": "link"}));
    let r = run(&a, &["--retries", "0"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_each_once(&a, 10, "run 1");
    down.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 30, "run 2");
}

#[test]
fn an_empty_page_that_names_a_next_one_does_not_move_a_held_cursor() {
    // Declared newest first, 30 records in pages of 10; page 2 is empty
    // but names page 3. Before: the cursor jumped to the newest record
    // and 20 were lost without a word.
    let all = records(30);
    let hole = Arc::new(AtomicBool::new(true));
    let api = link_api(
        (0..3)
            .map(|p| {
                all[20 - p * 10..30 - p * 10]
                    .iter()
                    .rev()
                    .cloned()
                    .collect()
            })
            .collect(),
        hole.clone(),
        Flagged::Empty,
    );
    let a = agent(&api, json!({"next": "link", "order": "newest_first"}));
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 10, "run 1");
    assert!(
        r.stderr.contains("empty page that still names a next page"),
        "{}",
        r.stderr
    );
    hole.store(false, Ordering::SeqCst);
    let r = run(&a, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 30, "run 2");
}

#[test]
fn logs_held_back_for_settle_are_never_passed_by_a_catching_up_cursor() {
    // Records of the last 400 s, newest first. Run 1 (--settle 0) takes
    // the 5 newest; run 2 (--settle 300) reads to the end but holds the
    // last 300 s back: the cursor must not move to the 5 delivered before.
    let base = Utc::now() - Duration::seconds(400);
    let all: Vec<Value> = (0..400)
        .map(|i| {
            let t = base + Duration::seconds(i);
            json!({"uuid": format!("r{i:03}"), "published": t.to_rfc3339_opts(SecondsFormat::Secs, true), "msg": "m"})
        })
        .collect();
    let api = offset_api(all, (0..400).rev().collect(), 100, None);
    let a = agent(
        &api,
        json!({"params": {"limit": "100"}, "next": "offset:offset", "order": "newest_first"}),
    );
    let r = run(&a, &["--settle", "0", "--max-events", "5"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(&a, &["--settle", "300"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(&a, &["--settle", "0"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 400, "after the third run");
}

#[test]
fn identical_records_without_an_id_under_offset_paging_are_each_delivered() {
    // A, A, B, C with pages of 1 and of 2: before, every run failed on
    // "the same page for offset 1".
    let day = Utc::now() - Duration::days(1);
    let base = day.to_rfc3339_opts(SecondsFormat::Secs, true);
    let later = (day + Duration::seconds(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let a_rec = json!({"published": base, "msg": "A"});
    let recs = vec![
        a_rec.clone(),
        a_rec,
        json!({"published": base, "msg": "B"}),
        json!({"published": later, "msg": "C"}),
    ];
    for limit in [1usize, 2] {
        let api = offset_api(recs.clone(), (0..4).collect(), limit, None);
        let a = Agent::with_config(
            &json!({"source": "rest", "url": format!("{}/logs", api.uri()),
            "since_param": "since", "time_field": "published",
            "params": {"limit": limit.to_string()}, "next": "offset:offset"}),
        );
        let r = run(&a, &[]);
        assert_eq!(r.code, Some(0), "limit {limit}: {}", r.stderr);
        let msgs: Vec<String> = a
            .json_lines()
            .iter()
            .map(|l| l["msg"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(msgs, ["A", "A", "B", "C"], "limit {limit}");
    }
}

#[test]
fn the_debug_line_about_a_record_without_a_time_names_time_field() {
    let mut all = records(3);
    all[1].as_object_mut().unwrap().remove("published");
    let api = AnyStub::start(move |_, _| json_page(Value::Array(all.clone())));
    let a = agent(&api, json!({}));
    let r = run(&a, &["-d"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_each_once(&a, 3, "records");
    let log = a.log();
    assert!(
        log.contains("log r001 has no valid time_field \"published\""),
        "{log}"
    );
    assert!(!log.contains("created_timestamp"), "{log}");
}
