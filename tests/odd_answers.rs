//! Answers that must not block a source: an empty answer (`204 No
//! Content`, an empty `200`) is a caught-up run, not an unreadable page
//! (REST and Cirrus); a log nested deeper than the JSON parser's limit is
//! delivered with its too-deep value as its JSON text, among the others
//! (CloudSOC and REST).

mod util;

use serde_json::{Value, json};
use util::agent::Agent;
use util::stub::Stub;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A server answering every request with `answer`, on a runtime of its own.
struct Server {
    _rt: tokio::runtime::Runtime,
    server: MockServer,
}

fn serve(answer: ResponseTemplate) -> Server {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&server).await;
        server
    });
    Server { _rt: rt, server }
}

fn rest_config(url: &str) -> Value {
    json!({"source": "rest", "url": url, "headers": {"X-Api-Key": "odd-answers-key"},
           "since_param": "since", "records": "/data", "time_field": "time", "id_field": "id"})
}

fn cirrus_config(url: &str) -> Value {
    json!({"source": "cirrus", "apiurl": url, "apikey": "demo-key",
           "apisecret": "demo-secret", "orgurl": "https://example.edu"})
}

fn empty_answers() -> Vec<(&'static str, ResponseTemplate)> {
    vec![
        ("204", ResponseTemplate::new(204)),
        ("empty 200", ResponseTemplate::new(200)),
        (
            "200 of whitespace",
            ResponseTemplate::new(200).set_body_raw("\r\n", "application/json"),
        ),
    ]
}

#[test]
fn an_empty_answer_is_a_caught_up_run_for_rest_and_cirrus() {
    for (what, answer) in empty_answers() {
        let s = serve(answer);
        for (source, config) in [
            ("rest", rest_config(&format!("{}/events", s.server.uri()))),
            (
                "cirrus",
                cirrus_config(&format!("{}/logs/v1", s.server.uri())),
            ),
        ] {
            let a = Agent::with_config(&config);
            let out = a.file_cmd().output().unwrap();
            assert!(
                out.status.success(),
                "{source}, {what}: {}{}",
                String::from_utf8_lossy(&out.stderr),
                a.log()
            );
            assert!(a.json_lines().is_empty(), "{source}, {what}");
            assert_eq!(
                a.status().unwrap()["state"],
                "succeeded",
                "{source}, {what}"
            );
            // And the next run too: nothing sticks.
            a.file_cmd().assert().success();
        }
    }
}

/// `depth` arrays around a value, as JSON text.
fn nested(depth: usize) -> String {
    format!("{}\"bottom\"{}", "[".repeat(depth), "]".repeat(depth))
}

/// The value at the bottom of `v` (into the first element of each
/// array) and how many arrays were passed on the way.
fn bottom(mut v: &Value) -> (usize, &Value) {
    let mut arrays = 0;
    while let Value::Array(items) = v {
        arrays += 1;
        v = &items[0];
    }
    (arrays, v)
}

/// The deep log's `v`: arrays down to a string holding the rest as JSON
/// text, `depth` arrays in all.
fn assert_carries_its_text(v: &Value, depth: usize) {
    let (kept, text) = bottom(v);
    let text = text.as_str().expect("the too-deep value as a string");
    assert!(kept < depth && kept > 50, "{kept} levels kept of {depth}");
    assert_eq!(text, nested(depth - kept), "the too-deep value's JSON text");
}

#[test]
fn a_log_nested_too_deeply_is_delivered_as_text_among_the_others_from_cloudsoc() {
    for depth in [200usize, 5000] {
        let t = (chrono::Utc::now() - chrono::Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let body = format!(
            r#"{{"status":"success","logs":[
                {{"_id":"a","created_timestamp":"{t}","severity":"error","message":"m"}},
                {{"_id":"deep","created_timestamp":"{t}","severity":"error","message":"m","v":{}}},
                {{"_id":"b","created_timestamp":"{t}","severity":"error","message":"m"}}
            ]}}"#,
            nested(depth)
        );
        let api = Stub::start(move |ask| {
            if ask.app == "Investigate" {
                ResponseTemplate::new(200)
                    .set_body_raw(body.clone().into_bytes(), "application/json")
            } else {
                util::stub::page(&[])
            }
        });
        let a = api.agent();
        let run = || {
            let out = a
                .file_cmd()
                .args(["--severity", "all", "--elastica-app", "investigate"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{depth}: {}{}",
                String::from_utf8_lossy(&out.stderr),
                a.log()
            );
        };
        run();
        let lines = a.json_lines();
        let ids: Vec<&str> = lines.iter().map(|l| l["_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "deep", "b"], "{depth}");
        assert_carries_its_text(&lines[1]["v"], depth);
        // The next run is not blocked on that page, nor sends it again.
        run();
        assert_eq!(a.json_lines().len(), 3, "{depth}");
    }
}

#[test]
fn a_log_nested_too_deeply_is_delivered_as_text_among_the_others_from_rest() {
    for depth in [200usize, 5000] {
        let t = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let body = format!(
            r#"{{"data":[{{"id":"a","time":"{t}"}},{{"id":"deep","time":"{t}","v":{}}},{{"id":"b","time":"{t}"}}]}}"#,
            nested(depth)
        );
        let s =
            serve(ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/json"));
        let a = Agent::with_config(&rest_config(&format!("{}/events", s.server.uri())));
        let out = a.file_cmd().output().unwrap();
        assert!(
            out.status.success(),
            "{depth}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            a.log()
        );
        let lines = a.json_lines();
        let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "deep", "b"], "{depth}");
        assert_carries_its_text(&lines[1]["v"], depth);
        a.file_cmd().assert().success();
        assert_eq!(a.json_lines().len(), 3, "{depth}");
    }
}

#[test]
fn a_timeout_names_the_url_without_its_secrets() {
    // Connections are taken by the kernel and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut config = rest_config(&format!("http://127.0.0.1:{port}/events"));
    config["params"] = json!({"api_key": "Timeout-Key-4471"});
    let a = Agent::with_config(&config);
    let out = a
        .file_cmd()
        .args(["--http-timeout", "1", "--retries", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("siem-agent: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("timed out"), "{line}");
    // The endpoint, without its query (where the key is).
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}/events: timed out")),
        "{line}"
    );
    for out in [stderr.to_string(), a.log()] {
        assert!(!out.contains("Timeout-Key-4471"), "{out}");
    }
    drop(silent);
}

#[test]
fn a_timeout_reading_the_body_names_the_url_without_its_secrets() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Headers, the start of a body, then a byte now and then: each read
    // within --http-timeout, the whole answer past the request's limit.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        for conn in server.incoming() {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut conn) = conn else { continue };
            let stopped = stopped.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ =
                    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{\"data\":");
                while !stopped.load(Ordering::SeqCst) && conn.write_all(b" ").is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            });
        }
    });
    let mut config = rest_config(&format!("http://{addr}/events"));
    config["params"] = json!({"api_key": "Timeout-Key-4471"});
    let a = Agent::with_config(&config);
    let out = a
        .file_cmd()
        .args(["--http-timeout", "1", "--retries", "0"])
        .output()
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let _ = std::net::TcpStream::connect(addr);
    thread.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("siem-agent: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains(&format!("http://{addr}/events: timed out")),
        "{line}"
    );
    assert!(!stderr.contains("Timeout-Key-4471") && !a.log().contains("Timeout-Key-4471"));
}

/// A REST page whose body is `body` (raw), and what the run said.
fn rest_run_on(body: &str) -> (Option<i32>, String) {
    let server =
        serve(ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json"));
    let a = Agent::with_config(&rest_config(&format!("{}/logs", server.server.uri())));
    let out = a.file_cmd().args(["--retries", "0"]).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trailing_garbage_after_a_repaired_value_is_what_the_error_names() {
    // Before: the lone surrogate (repaired) was blamed.
    let t = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (code, stderr) = rest_run_on(&format!(
        r#"{{"data":[{{"id":"a","time":"{t}","x":"\ud800"}}]}} garbage"#
    ));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("trailing characters"), "{stderr}");
    assert!(!stderr.contains("surrogate"), "{stderr}");
}

#[test]
fn an_unquoted_number_as_a_key_is_refused_not_repaired() {
    // Before: `1e400` became a key, and the page was delivered.
    let t = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (code, stderr) = rest_run_on(&format!(
        r#"{{"data":[{{"id":"a","time":"{t}", 1e400: "x"}}]}}"#
    ));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot be read"), "{stderr}");
}
