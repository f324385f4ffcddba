//! A misbehaving API (a local stub): repeating and empty pages, oversized
//! pages, wrong types, non-UTF-8 bytes, and a storm of 429s. No panic; one
//! clear error or a counted skip; the cursor never passes an undelivered log.

mod util;

use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use util::agent::Agent;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers Investigate requests with the pages `pages(n, base_url)` gives
/// for the n-th request, Detect with nothing.
struct Pages<F: Fn(usize, &str) -> ResponseTemplate + Send + Sync>(
    F,
    AtomicUsize,
    Arc<Mutex<String>>,
);

impl<F: Fn(usize, &str) -> ResponseTemplate + Send + Sync> Respond for Pages<F> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if req.url.query().unwrap_or("").contains("app=Detect") {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"logs": [], "meta": {"total": 0}}));
        }
        let n = self.1.fetch_add(1, Ordering::SeqCst);
        (self.0)(n, &self.2.lock().unwrap())
    }
}

struct Api {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Api {
    fn start(pages: impl Fn(usize, &str) -> ResponseTemplate + Send + Sync + 'static) -> Api {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let base = Arc::new(Mutex::new(String::new()));
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            *base.lock().unwrap() = format!("{}/demo/api/admin/v1/logs/get/", server.uri());
            Mock::given(method("GET"))
                .and(path_regex("/logs/get/?$"))
                .respond_with(Pages(pages, AtomicUsize::new(0), base.clone()))
                .mount(&server)
                .await;
            server
        });
        Api { rt, server }
    }

    fn agent(&self) -> Agent {
        Agent::new(&format!("{}/", self.server.uri()))
    }

    /// Requests for log pages (not the data-sources request that reads
    /// the server's clock).
    fn requests(&self) -> usize {
        self.rt
            .block_on(self.server.received_requests())
            .map(|r| {
                r.iter()
                    .filter(|q| q.url.path().contains("/logs/get"))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn log(i: usize) -> Value {
    json!({"_id": format!("id-{i}"), "created_timestamp": format!("2026-11-20T10:00:{:02}", i % 60), "severity": "error", "message": format!("m{i}")})
}

fn page(logs: Vec<Value>, next: Option<String>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"logs": logs, "meta": {"total": 100}, "next_url": next}))
}

fn run(a: &Agent, extra: &[&str]) -> (std::process::Output, Vec<Value>) {
    let out = a
        .file_cmd()
        .args(["--severity", "all", "--elastica-app", "investigate"])
        .args(extra)
        .output()
        .unwrap();
    (out, a.json_lines())
}

#[test]
fn a_next_url_that_repeats_ends_the_run_after_delivering_what_came() {
    let api = Api::start(|_, base| page(vec![log(1), log(2)], Some(format!("{base}?from=2"))));
    let a = api.agent();
    let (out, lines) = run(&a, &[]);
    // No endless loop: the repeat is noticed at once, what came is
    // delivered once (a page met again under a new URL is not sent again),
    // and the run fails: logs may be missing upstream.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("cloudsoc Investigate: the API led back to a request this run already made"),
        "{stderr}"
    );
    let ids: Vec<String> = lines.iter().map(util::agent::id_of).collect();
    assert_eq!(ids, ["id-1", "id-2"]);
    assert!(api.requests() <= 3, "{} requests", api.requests());
    assert!(a.log().contains("already made"), "{}", a.log());
    assert!(a.state().is_some());
    let status = a.status().unwrap();
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("logs may be missing upstream"),
        "{status}"
    );
}

#[test]
fn an_empty_page_that_still_has_a_next_url_ends_the_run() {
    let api = Api::start(|n, base| match n {
        0 => page(vec![log(1)], Some(format!("{base}?from=1"))),
        _ => page(vec![], Some(format!("{base}?from={}", n + 1))),
    });
    let a = api.agent();
    let (out, lines) = run(&a, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.len(), 1);
    assert!(api.requests() <= 3);
}

#[test]
fn a_page_over_the_limit_is_delivered_whole() {
    let api = Api::start(|n, _| match n {
        0 => page((0..2500).map(log).collect(), None),
        _ => page(vec![], None),
    });
    let a = api.agent();
    let (out, lines) = run(&a, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.len(), 2500);
}

#[test]
fn wrong_types_are_delivered_or_skipped_and_counted_never_a_panic() {
    let api = Api::start(|n, _| match n {
        0 => page(
            vec![
                json!({"_id": 42, "created_timestamp": "2026-11-20T10:00:00", "severity": ["error"], "message": {"a": 1}}),
                json!({"_id": "t1", "created_timestamp": 12345, "severity": null}),
                json!({"_id": "t2", "created_timestamp": "yesterday"}),
                json!("not an object"),
                json!(null),
                json!([1, 2]),
                json!({"_id": "t3", "created_timestamp": "2026-11-20T10:00:01", "user": true, "threat_score": 1e308}),
            ],
            None,
        ),
        _ => page(vec![], None),
    });
    let a = api.agent();
    let (out, lines) = run(&a, &["--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Every object is delivered (those without a usable time too); the
    // three entries that are not objects are skipped and counted.
    assert_eq!(lines.len(), 4);
    assert!(stderr.contains("skipped 3 entries"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    // The cursor rests on the newest log with a valid time.
    let state = a.state().unwrap().to_string();
    assert!(state.contains("2026-11-20T10:00:01"), "{state}");
}

#[test]
fn a_body_that_is_not_an_api_page_is_one_clear_error() {
    for body in [
        &b"{\"logs\": 5}"[..],
        b"<html>maintenance</html>",
        b"{\"logs\": [",
        b"[]",
    ] {
        let body = body.to_vec();
        let api = Api::start(move |_, _| {
            ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json")
        });
        let a = api.agent();
        let (out, lines) = run(&a, &["--retries", "1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.trim_end().lines().last().unwrap().contains("error:"),
            "{stderr}"
        );
        assert!(lines.is_empty());
        assert!(a.state().is_none());
    }
}

#[test]
fn bytes_that_are_not_utf8_are_replaced_and_said() {
    let api = Api::start(|n, _| match n {
        0 => {
            let mut body = br#"{"logs": [{"_id": "u1", "created_timestamp": "2026-11-20T10:00:00", "message": "caf"#.to_vec();
            body.extend_from_slice(b"\xe9 \xff\xfe ok\"}], \"meta\": {}}");
            ResponseTemplate::new(200).set_body_raw(body, "application/json")
        }
        _ => page(vec![], None),
    });
    let a = api.agent();
    let (out, lines) = run(&a, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "caf\u{fffd} \u{fffd}\u{fffd} ok");
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}

#[test]
fn a_storm_of_429_honours_retry_after_and_gives_up_in_bounded_time() {
    let api = Api::start(|_, _| {
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_string("slow down")
    });
    let a = api.agent();
    let started = std::time::Instant::now();
    let (out, _) = run(&a, &["--retries", "2"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gave up after 3 attempts"), "{stderr}");
    assert_eq!(api.requests(), 3);
    // Two waits of the server's 1 s (not the 20 ms the tests otherwise use).
    assert!(took >= std::time::Duration::from_secs(2), "{took:?}");
    assert!(a.state().is_none());
}
