//! Sources against hostile local APIs (issue 21), through the binary: a
//! Link header whose bare `prev` link comes before the `next` (REST and
//! Cirrus Identity), Cirrus without `orgurl` and without a config file, a
//! next URL on a gateway's path, a next URL equal to the page's own, a
//! full page without a next URL, Defender for Cloud Apps ignoring `skip`
//! within one millisecond, a declared REST API read in the wrong
//! `time_format` or paged by page number through `offset:`, each source's
//! first-run window in `status`, and `--severity` levels a source does not
//! have.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use util::agent::{Agent, bin};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

type Answer = dyn Fn(&Request, &str) -> ResponseTemplate + Send + Sync;

/// Answers every request with `answer(request, base URL)`.
struct Responder(Box<Answer>, String);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        (self.0)(req, &self.1)
    }
}

/// A local API on 127.0.0.1, stopped when dropped.
struct Api {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Api {
    fn start(answer: impl Fn(&Request, &str) -> ResponseTemplate + Send + Sync + 'static) -> Api {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(Responder(Box::new(answer), server.uri()))
                .mount(&server)
                .await;
            server
        });
        Api { rt, server }
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    /// The requests received whose path ends with `path`.
    fn requests(&self, path: &str) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().ends_with(path))
            .collect()
    }
}

fn param(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A time an hour ago plus `i` seconds: inside every first-run window,
/// and settled.
fn recent(i: usize) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(1) + chrono::Duration::seconds(i as i64)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn agent_with(config: Value) -> Agent {
    Agent::with_config(&config)
}

/// The values of `field` in what a run wrote.
fn values(a: &Agent, field: &str) -> Vec<String> {
    a.json_lines()
        .iter()
        .map(|l| match &l[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn assert_whole_once(got: &[String], n: usize, what: &str) {
    assert_eq!(got.len(), n, "{what}: {got:?}");
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        n,
        "{what}: {got:?}"
    );
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------- Cirrus

/// A Cirrus Identity Log API at `path_prefix` + `/logs/v1`: the entries
/// from `after` (a number), `limit` at a time, of `total` entries; the
/// `Link` header (`link(base, page_url, after, next_after)`) as the test
/// wants it.
fn cirrus_api(
    total: Arc<AtomicUsize>,
    link: impl Fn(&str, &Request, usize, usize) -> Option<String> + Send + Sync + 'static,
) -> Api {
    Api::start(move |req, base| {
        if req.method.as_str() != "POST" {
            return ResponseTemplate::new(405);
        }
        let after: usize = param(req, "after")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let limit: usize = param(req, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(1000);
        let total = total.load(Ordering::SeqCst);
        let end = (after + limit).min(total).max(after);
        let entries: Vec<Value> = (after..end)
            .map(|i| json!({"timestamp": rfc3339(recent(i)), "correlationid": format!("c{i}"), "service": "idp"}))
            .collect();
        let mut resp = ResponseTemplate::new(200).set_body_json(Value::Array(entries));
        if let Some(l) = link(base, req, after, end) {
            resp = resp.insert_header("Link", l.as_str());
        }
        resp
    })
}

fn cirrus_config(api: &Api, path: &str, orgurl: bool) -> Value {
    let mut c = json!({"source": "cirrus", "apiurl": format!("{}{path}", api.uri()),
                       "apikey": "demo-key", "apisecret": "demo-secret"});
    if orgurl {
        c["orgurl"] = json!("https://example.edu");
    }
    c
}

fn cirrus_run(a: &Agent, extra: &[&str]) -> std::process::Output {
    a.file_cmd()
        .args(["--settle", "0", "--limit", "2"])
        .args(extra)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

#[test]
fn cirrus_follows_the_next_link_after_a_bare_prev_link_and_reaches_every_page_across_runs() {
    let total = Arc::new(AtomicUsize::new(6));
    // Bare form, prev first: `URL1; rel="prev", URL2; rel="next"`.
    let api = cirrus_api(total.clone(), |base, _, after, next| {
        Some(format!(
            "{base}/logs/v1?limit=2&after={}; rel=\"prev\", {base}/logs/v1?limit=2&after={next}; rel=\"next\"",
            after.saturating_sub(2)
        ))
    });
    let a = agent_with(cirrus_config(&api, "/logs/v1", true));
    // A first run cut inside the second page, a second run to the end.
    let out = cirrus_run(&a, &["--max-events", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 6, &a.log());
    let position = a.state().unwrap()["cursors"]["logs"]["position"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(position.contains("after=6"), "{position}");
    // Entries added later: the next run sends them, and only them.
    total.store(9, Ordering::SeqCst);
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 9, &a.log());
}

#[test]
fn cirrus_runs_without_orgurl_and_without_a_config_file_on_flags_or_environment() {
    let total = Arc::new(AtomicUsize::new(3));
    let api = cirrus_api(total, |base, _, _, next| {
        Some(format!(
            "<{base}/logs/v1?limit=2&after={next}>; rel=\"next\""
        ))
    });
    let endpoint = format!("{}/logs/v1", api.uri());
    // A config without orgurl.
    let a = agent_with(cirrus_config(&api, "/logs/v1", false));
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 3, &a.log());
    // No config file at all: the flags, then the environment.
    for env in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let out_log = dir.path().join("out.log");
        let mut cmd = assert_cmd::Command::new(bin());
        cmd.arg("--config")
            .arg(dir.path().join("config.json"))
            .arg("--log-file")
            .arg(dir.path().join("agent.log"))
            .args(["--source", "cirrus", "--apiurl", &endpoint])
            .args(["--settle", "0", "--limit", "2", "--retry-delay-ms", "20"])
            .args(["-o", "FILE", "--format", "json", "-f"])
            .arg(&out_log)
            .env_remove("API_KEY")
            .env_remove("API_SECRET")
            .timeout(Duration::from_secs(60));
        if env {
            cmd.env("API_KEY", "demo-key")
                .env("API_SECRET", "demo-secret");
        } else {
            cmd.args(["--apikey", "demo-key", "--apisecret", "demo-secret"]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "env {env}: {}", stderr(&out));
        let got: Vec<String> = util::agent::read_json_lines(&out_log)
            .iter()
            .map(|l| l["correlationid"].as_str().unwrap().to_string())
            .collect();
        assert_whole_once(&got, 3, "flags only");
        // The state is kept beside the (missing) config file.
        assert!(dir.path().join("export_log.state").exists());
    }
    let basic = format!(
        "Basic {}",
        siem_agent::source::http::base64(b"demo-key:demo-secret")
    );
    let reqs = api.requests("/logs/v1");
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(param(r, "orgUrl"), None, "{}", r.url);
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            basic
        );
    }
    // Without credentials: one line naming the flags, no request.
    let dir = tempfile::tempdir().unwrap();
    let before = api.requests("/logs/v1").len();
    let out = assert_cmd::Command::new(bin())
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .args(["--source", "cirrus", "--apiurl", &endpoint, "-o", "STREAM"])
        .env_remove("API_KEY")
        .env_remove("API_SECRET")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--apikey"), "{err}");
    assert_eq!(api.requests("/logs/v1").len(), before);
}

#[test]
fn cirrus_resumes_from_a_next_url_on_a_gateway_path_of_the_same_origin() {
    let total = Arc::new(AtomicUsize::new(4));
    let api = cirrus_api(total.clone(), |base, _, _, next| {
        Some(format!(
            "<{base}/gw/logs/v1?limit=2&after={next}>; rel=\"next\""
        ))
    });
    let a = agent_with(cirrus_config(&api, "/logs/v1", true));
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 4, &a.log());
    assert!(!api.requests("/gw/logs/v1").is_empty());
    total.store(7, Ordering::SeqCst);
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 7, &a.log());
    assert!(
        a.log()
            .contains("exporting from the position the last run saved"),
        "{}",
        a.log()
    );
}

#[test]
fn cirrus_a_next_url_equal_to_the_page_s_own_ends_the_stream_and_no_later_run_sends_the_page_again()
{
    // Whatever was asked, the Link names the request itself: whole, or
    // without the parameters the request carried for the run (orgUrl,
    // limit).
    for whole in [true, false] {
        let total = Arc::new(AtomicUsize::new(2));
        let api = cirrus_api(total.clone(), move |base, req, _, _| {
            let query: Vec<String> = req
                .url
                .query_pairs()
                .filter(|(k, _)| whole || (k != "orgUrl" && k != "limit"))
                .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('/', "%2F")))
                .collect();
            Some(format!(
                "<{base}{}?{}>; rel=\"next\"",
                req.url.path(),
                query.join("&")
            ))
        });
        let a = agent_with(cirrus_config(&api, "/logs/v1", true));
        for run in 0..3 {
            let out = cirrus_run(&a, &[]);
            assert!(out.status.success(), "run {run}: {}", stderr(&out));
            assert_whole_once(&values(&a, "correlationid"), 2, &a.log());
        }
        // One request a run (the page asked again for what was added to
        // it), and the clock's.
        assert_eq!(api.requests("/logs/v1").len(), 3 + 3, "{}", a.log());
        assert!(a.log().contains("named no next page"), "{}", a.log());
    }
}

#[test]
fn cirrus_a_full_page_without_a_link_header_warns() {
    let total = Arc::new(AtomicUsize::new(5));
    let api = cirrus_api(total, |_, _, _, _| None);
    let a = agent_with(cirrus_config(&api, "/logs/v1", true));
    let out = cirrus_run(&a, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "correlationid"), 2, &a.log());
    let log = a.log();
    assert!(
        log.contains("WARN") && log.contains("a full page (2 entries, the limit asked)"),
        "{log}"
    );
    assert!(log.contains("logs after it may be missing"), "{log}");
    // A page that is not full and names no next is the end: no warning.
    let total = Arc::new(AtomicUsize::new(1));
    let api = cirrus_api(total, |_, _, _, _| None);
    let b = agent_with(cirrus_config(&api, "/logs/v1", true));
    assert!(cirrus_run(&b, &[]).status.success());
    assert!(!b.log().contains("full page"), "{}", b.log());
}

// ------------------------------------------------ Defender for Cloud Apps

#[test]
fn defender_a_server_that_ignores_skip_within_one_millisecond_ends_the_run_with_a_warning() {
    let ms = recent(0).timestamp_millis();
    // 100 alerts at one millisecond, hasNext true, whatever the skip.
    let api = Api::start(move |_, _| {
        let data: Vec<Value> = (0..100)
            .map(|i| json!({"_id": format!("a{i}"), "timestamp": ms, "severityValue": 2, "title": "t"}))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"data": data, "hasNext": true, "total": 5000}))
    });
    let a = agent_with(
        json!({"source": "mcas", "api_server": format!("{}/", api.uri()), "token": "demo-token"}),
    );
    let started = std::time::Instant::now();
    let out = a
        .file_cmd()
        .args(["--settle", "0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(out.status.code().is_some(), "killed by the timeout");
    // Logs past the repeated page cannot be reached: the run fails, and
    // the status says why.
    assert_eq!(out.status.code(), Some(1));
    let status = a.status().unwrap();
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("ignores or caps skip"),
        "{status}"
    );
    assert_whole_once(&values(&a, "_id"), 100, &a.log());
    let log = a.log();
    assert!(
        log.contains("WARN") && log.contains("mcas alerts: the API answered the same 100 alerts"),
        "{log}"
    );
    assert!(log.contains("ignores or caps skip"), "{log}");
    // The clock's request, the first page, the same page again: no more.
    let asked = api.requests("/api/v1/alerts/").len();
    assert!(asked <= 4, "{asked} requests");
}

// ------------------------------------------------------- Declared REST

/// A declared REST API at `/events`: `n` records `{"id", "t"}`, `t` as
/// `time(i)`; paged as `page(req, n)` says (the records' indexes, and
/// the Link header).
fn rest_api(
    n: usize,
    time: impl Fn(usize) -> Value + Send + Sync + 'static,
    page: impl Fn(&Request, &str, usize) -> (std::ops::Range<usize>, Option<String>)
    + Send
    + Sync
    + 'static,
) -> Api {
    Api::start(move |req, base| {
        if !req.url.path().ends_with("/events") {
            return ResponseTemplate::new(404);
        }
        let (range, link) = page(req, base, n);
        let records: Vec<Value> = range
            .map(|i| json!({"id": format!("r{i}"), "t": time(i), "msg": "m"}))
            .collect();
        let mut resp = ResponseTemplate::new(200).set_body_json(json!({"records": records}));
        if let Some(l) = link {
            resp = resp.insert_header("Link", l.as_str());
        }
        resp
    })
}

fn rest_config(api: &Api, extra: Value) -> Value {
    let mut c = json!({"source": "rest", "url": format!("{}/events", api.uri()),
                       "since_param": "since", "records": "/records",
                       "time_field": "t", "id_field": "id"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn rest_run(a: &Agent) -> std::process::Output {
    a.file_cmd()
        .args(["--settle", "0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

#[test]
fn rest_follows_the_next_link_after_a_bare_prev_link() {
    // Pages of two by `page=K`; each names its prev (bare) before its next.
    let api = rest_api(
        6,
        |i| json!(rfc3339(recent(i))),
        |req, base, n| {
            let k: usize = param(req, "page").and_then(|p| p.parse().ok()).unwrap_or(0);
            let range = (2 * k).min(n)..(2 * k + 2).min(n);
            let mut link = format!("{base}/events?page={}; rel=\"prev\"", k.saturating_sub(1));
            if 2 * k + 2 < n {
                link.push_str(&format!(", {base}/events?page={}; rel=\"next\"", k + 1));
            }
            (range, Some(link))
        },
    );
    let a = agent_with(rest_config(&api, json!({"next": "link"})));
    let out = rest_run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "id"), 6, &a.log());
    assert_eq!(api.requests("/events").len(), 1 + 3, "with the clock's");
}

#[test]
fn rest_times_read_in_the_wrong_time_format_stop_the_run_naming_time_format() {
    for (format, time) in [
        // epoch_ms against seconds: January 1970.
        (
            "epoch_ms",
            Box::new(|i| json!(recent(i).timestamp())) as Box<dyn Fn(usize) -> Value + Send + Sync>,
        ),
        // epoch_s against milliseconds: year 58891.
        ("epoch_s", Box::new(|i| json!(recent(i).timestamp_millis()))),
    ] {
        let api = rest_api(3, time, |_, _, n| (0..n, None));
        let a = agent_with(rest_config(&api, json!({"time_format": format})));
        let out = rest_run(&a);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}\n{}", a.log());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("\"time_format\""), "{err}");
        assert!(
            err.contains(&format!("{}", a.config_path().display())),
            "{err}"
        );
        assert!(a.json_lines().is_empty(), "{format}: nothing is sent");
    }
    // The right format: the same records delivered.
    let api = rest_api(3, |i| json!(recent(i).timestamp()), |_, _, n| (0..n, None));
    let a = agent_with(rest_config(&api, json!({"time_format": "epoch_s"})));
    assert!(rest_run(&a).status.success());
    assert_whole_once(&values(&a, "id"), 3, &a.log());
}

#[test]
fn rest_an_offset_read_as_a_page_number_stops_the_run_naming_next() {
    let offset_as = |pages: bool| {
        move |req: &Request, _: &str, n: usize| {
            let limit: usize = param(req, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(30);
            let o: usize = param(req, "offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0);
            let from = if pages { o * limit } else { o };
            (from.min(n)..(from + limit).min(n), None)
        }
    };
    let decl = json!({"params": {"limit": "30"}, "next": "offset:offset"});
    // An API that reads it as a page number: records 900.. (none) for
    // offset 30, while 100 exist.
    let api = rest_api(100, |i| json!(rfc3339(recent(i))), offset_as(true));
    let a = agent_with(rest_config(&api, decl.clone()));
    let out = rest_run(&a);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{}", a.log());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("check next") && err.contains("\"offset\""),
        "{err}"
    );
    // An API that reads it as a number of records: every record once,
    // with pages that overlap by one.
    let api = rest_api(100, |i| json!(rfc3339(recent(i))), offset_as(false));
    let a = agent_with(rest_config(&api, decl));
    let out = rest_run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole_once(&values(&a, "id"), 100, &a.log());
}

// ----------------------------------------------------------------- status

#[test]
fn status_says_each_source_s_own_first_run_window() {
    for (config, window) in [
        (
            json!({"source": "rest", "url": "https://x.example/e", "since_param": "s", "time_field": "t"}),
            "7 days",
        ),
        (
            json!({"source": "cirrus", "apikey": "k", "apisecret": "s"}),
            "7 days",
        ),
        (
            json!({"source": "mcas", "api_server": "https://x.example/", "token": "t"}),
            "2 days",
        ),
        (
            json!({"api_server": "https://x.example/", "key_id": "k", "key_secret": "s", "tenant": "t"}),
            "180 days",
        ),
    ] {
        let a = agent_with(config.clone());
        let out = assert_cmd::Command::new(bin())
            .arg("status")
            .arg("--config")
            .arg(a.config_path())
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            text.contains(&format!(
                "no cursor yet (the next run starts {window} back)"
            )),
            "{config}: {text}"
        );
    }
}

// --------------------------------------------------------------- severity

#[test]
fn severity_critical_with_a_defender_source_is_refused_naming_its_levels() {
    let api = Api::start(|_, _| {
        ResponseTemplate::new(200).set_body_json(json!({"data": [], "hasNext": false, "logs": []}))
    });
    let mcas = json!({"source": "mcas", "api_server": format!("{}/", api.uri()), "token": "demo-token",
                      "data_types": ["alerts", "activities"]});
    // One config.
    let a = agent_with(mcas.clone());
    let out = a
        .file_cmd()
        .args(["--severity", "critical"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--severity critical")
            && err.contains("mcas")
            && err.contains("low, medium, high"),
        "{err}"
    );
    assert!(api.requests("").is_empty(), "no request");
    assert!(a.json_lines().is_empty());
    // A level it has is taken.
    assert!(
        a.file_cmd()
            .args(["--severity", "high"])
            .output()
            .unwrap()
            .status
            .success()
    );

    // A directory of tenants: each checks its own. A CloudSOC tenant has
    // `critical`; the Defender tenant is refused, and named.
    let fleet = tempfile::tempdir().unwrap();
    let dir = fleet.path().join("tenants");
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, v: &Value| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(format!("{name}.json"));
        std::fs::write(&p, v.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write("defender", &mcas);
    write(
        "soc",
        &json!({"api_server": format!("{}/", api.uri()), "key_id": "k", "key_secret": "s", "tenant": "t"}),
    );
    let before = api.requests("").len();
    let out = assert_cmd::Command::new(bin())
        .arg("--config")
        .arg(&dir)
        .arg("--log-file")
        .arg(fleet.path().join("agent.log"))
        .args([
            "--severity",
            "critical",
            "--settle",
            "0",
            "--retry-delay-ms",
            "20",
        ])
        .args(["-o", "FILE", "--format", "json", "-f"])
        .arg(fleet.path().join("out.log"))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = stderr(&out);
    let log = std::fs::read_to_string(fleet.path().join("agent.log")).unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{err}\n{log}");
    let both = format!("{err}\n{log}");
    assert!(
        both.contains("defender") && both.contains("low, medium, high"),
        "{both}"
    );
    // The CloudSOC tenant ran (its requests), the Defender one did not.
    let after = api.requests("");
    assert!(after.len() > before, "{both}");
    assert!(
        after[before..]
            .iter()
            .all(|r| !r.url.path().contains("/api/v1/")),
        "{both}"
    );
}
