//! The Splunk HEC output against a local stub that answers as HEC
//! documents: token check (403, code 4), busy (503, code 9), batches of
//! concatenated event objects, ackIds per channel, and /ack polls that
//! acknowledge a batch on its second poll.

mod util;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use util::agent::{Agent, Sim};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

#[derive(Default)]
struct State {
    events: Vec<Value>,
    requests: usize,
    busy_left: usize,
    next_ack: u64,
    /// ackId -> times polled.
    polls: HashMap<u64, u32>,
    ack_requests: usize,
}

#[derive(Clone)]
struct Stub(Arc<Mutex<State>>);

fn answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

impl Stub {
    fn authorized(req: &Request) -> bool {
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Splunk {TOKEN}"))
    }
}

struct Events(Stub);
impl Respond for Events {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.0.lock().unwrap();
        if !Stub::authorized(req) {
            return answer(403, json!({"text": "Invalid token", "code": 4}));
        }
        if s.busy_left > 0 {
            s.busy_left -= 1;
            return answer(503, json!({"text": "Server is busy", "code": 9}));
        }
        let mut batch = Vec::new();
        for (i, v) in serde_json::Deserializer::from_slice(&req.body)
            .into_iter::<Value>()
            .enumerate()
        {
            match v {
                Ok(v) if v.get("event").is_some() && v["time"].is_number() => batch.push(v),
                _ => {
                    return answer(
                        400,
                        json!({"text": "Invalid data format", "code": 6, "invalid-event-number": i}),
                    );
                }
            }
        }
        s.requests += 1;
        s.events.extend(batch);
        match req.headers.get("x-splunk-request-channel") {
            Some(_) => {
                s.next_ack += 1;
                let id = s.next_ack;
                s.polls.insert(id, 0);
                answer(200, json!({"text": "Success", "code": 0, "ackId": id}))
            }
            None => answer(200, json!({"text": "Success", "code": 0})),
        }
    }
}

struct Acks(Stub);
impl Respond for Acks {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.0.lock().unwrap();
        if !Stub::authorized(req) {
            return answer(403, json!({"text": "Invalid token", "code": 4}));
        }
        if !req.url.query().unwrap_or("").contains("channel=") {
            return answer(400, json!({"text": "Data channel is missing", "code": 10}));
        }
        s.ack_requests += 1;
        let asked: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut acks = serde_json::Map::new();
        for id in asked["acks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
        {
            let polls = s.polls.entry(id).or_insert(0);
            *polls += 1;
            acks.insert(id.to_string(), Value::Bool(*polls >= 2));
        }
        answer(200, json!({ "acks": acks }))
    }
}

struct Hec {
    _rt: tokio::runtime::Runtime,
    server: MockServer,
    stub: Stub,
}

impl Hec {
    fn start(busy: usize) -> Hec {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stub = Stub(Arc::new(Mutex::new(State {
            busy_left: busy,
            ..State::default()
        })));
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/services/collector/event"))
                .respond_with(Events(stub.clone()))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/services/collector/ack"))
                .respond_with(Acks(stub.clone()))
                .mount(&server)
                .await;
            server
        });
        Hec {
            _rt: rt,
            server,
            stub,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.stub.0.lock().unwrap()
    }
}

fn run(a: &Agent, hec: &Hec, token: &str, extra: &[&str]) -> std::process::Output {
    a.cmd()
        .args([
            "-o",
            "HEC",
            "--severity",
            "all",
            "--hec-url",
            &hec.server.uri(),
            "--hec-token",
            token,
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn events_go_in_batches_with_the_logs_time() {
    let hec = Hec::start(0);
    let sim = Sim::start(&["--events", "250", "--detect-events", "30"]);
    let a = Agent::new(&sim.url());
    let out = run(
        &a,
        &hec,
        TOKEN,
        &["--hec-batch", "100", "--hec-index", "security"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = hec.state();
    assert_eq!(s.events.len(), 280);
    // 250 Investigate logs: 100 + 100 + 50; 30 Detect logs: 30.
    assert_eq!(s.requests, 4);
    for e in &s.events {
        let log = &e["event"];
        // Each stream's own sourcetype.
        let want = if log["app"] == "Detect" {
            "symantec:cloudsoc:detect"
        } else {
            "symantec:cloudsoc:investigate"
        };
        assert_eq!(e["sourcetype"], want);
        assert_eq!(e["source"], "siem-agent");
        assert_eq!(e["index"], "security");
        let field = if log["app"] == "Detect" {
            "incident_start_time"
        } else {
            "created_timestamp"
        };
        let t = siem_agent::event::parse_timestamp(log[field].as_str().unwrap()).unwrap();
        assert_eq!(
            e["time"].as_f64().unwrap(),
            t.timestamp_millis() as f64 / 1000.0
        );
    }
    let ids: std::collections::HashSet<String> = s
        .events
        .iter()
        .map(|e| util::agent::id_of(&e["event"]))
        .collect();
    assert_eq!(ids.len(), 280);
    assert!(a.state().is_some());
}

#[test]
fn with_acks_the_cursor_waits_for_indexing() {
    let hec = Hec::start(0);
    let sim = Sim::start(&["--events", "120", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let out = run(&a, &hec, TOKEN, &["--hec-ack", "--hec-batch", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = hec.state();
    assert_eq!(s.events.len(), 120);
    assert_eq!(s.polls.len(), 3);
    // Every batch was polled until acknowledged (the stub says yes on the second poll).
    assert!(s.polls.values().all(|&p| p >= 2), "{:?}", s.polls);
    assert!(s.ack_requests >= 2);
}

#[test]
fn a_busy_collector_is_retried() {
    let hec = Hec::start(2);
    let sim = Sim::start(&["--events", "30", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let out = run(&a, &hec, TOKEN, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("HEC is busy (503"), "{stderr}");
    assert_eq!(hec.state().events.len(), 30);
}

#[test]
fn a_refused_token_stops_the_run_without_showing_the_token() {
    let hec = Hec::start(0);
    let sim = Sim::start(&["--events", "30"]);
    let a = Agent::new(&sim.url());
    let bad = "bad-token-0000-secret";
    let out = run(&a, &hec, bad, &["-d"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("HEC refused the token (403 Forbidden: Invalid token)"),
        "{stderr}"
    );
    assert!(a.state().is_none());
    for text in [
        stderr.to_string(),
        a.log(),
        std::fs::read_to_string(a.path("last_job.status")).unwrap_or_default(),
    ] {
        assert!(!text.contains(bad), "the token leaked: {text}");
    }
}

#[test]
fn url_and_token_can_come_from_config_json() {
    let hec = Hec::start(0);
    let sim = Sim::start(&["--events", "10", "--detect-events", "0"]);
    let a = Agent::with_config(&json!({
        "api_server": sim.url(), "key_id": "demo-key", "key_secret": "demo-secret", "tenant": "demo",
        "hec_url": hec.server.uri(), "hec_token": TOKEN,
    }));
    a.cmd()
        .args(["-o", "HEC", "--severity", "all"])
        .env_remove("SIEM_AGENT_HEC_TOKEN")
        .assert()
        .success();
    assert_eq!(hec.state().events.len(), 10);
}

#[test]
fn each_source_has_its_own_sourcetype_which_config_and_flag_override() {
    // Defender for Cloud Apps' alerts and activities, each its own.
    let hec = Hec::start(0);
    let sim = Sim::start(&["--vendor", "mcas", "--events", "6", "--detect-events", "4"]);
    let a = Agent::with_config(&json!({"source": "mcas", "api_server": sim.url(),
        "token": "demo-token", "data_types": ["alerts", "activities"]}));
    let out = run(&a, &hec, TOKEN, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut kinds: Vec<String> = hec
        .state()
        .events
        .iter()
        .map(|e| e["sourcetype"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "ms:defender:cloudapps:activity",
            "ms:defender:cloudapps:alert"
        ]
    );
    // Cirrus Identity's.
    let hec = Hec::start(0);
    let sim = Sim::start(&["--vendor", "cirrus", "--events", "5"]);
    let c = Agent::with_config(
        &json!({"source": "cirrus", "apiurl": format!("{}logs/v1", sim.url()),
        "apikey": "demo-key", "apisecret": "demo-secret"}),
    );
    let out = run(&c, &hec, TOKEN, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(hec.state().events.len() == 5);
    assert!(
        hec.state()
            .events
            .iter()
            .all(|e| e["sourcetype"] == "cirrus:identity:log")
    );
    // config.json's hec_sourcetype over the stream's; the flag over both.
    let sim = Sim::start(&["--events", "3", "--detect-events", "0"]);
    let mut config = json!({"api_server": sim.url(), "key_id": "demo-key",
        "key_secret": "demo-secret", "tenant": "demo", "hec_sourcetype": "acme:casb",
        "fields": {"env": "prod", "siem_tenant": "{tenant}"}});
    let t = Agent::with_config(&config);
    let hec = Hec::start(0);
    let out = run(&t, &hec, TOKEN, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for e in &hec.state().events {
        assert_eq!(e["sourcetype"], "acme:casb");
        // The static fields, in the event; {tenant}: the config's name.
        assert_eq!(e["event"]["env"], "prod", "{e}");
        assert_eq!(e["event"]["siem_tenant"], "config", "{e}");
    }
    config["hec_sourcetype"] = Value::Null;
    let u = Agent::with_config(&config);
    let hec = Hec::start(0);
    let out = run(&u, &hec, TOKEN, &["--hec-sourcetype", "mine:override"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hec.state().events.len(), 3);
    assert!(
        hec.state()
            .events
            .iter()
            .all(|e| e["sourcetype"] == "mine:override")
    );
}

/// A TLS front for the stub: terminates TLS with the test server
/// certificate and relays the bytes to the stub's plain port.
fn tls_front(hec: &Hec, certs: &util::certs::Certs) -> u16 {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs.path("server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.path("server.key")).unwrap();
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let backend = hec.server.address().to_owned();
    let listener = hec
        ._rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    hec._rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[test]
fn https_collectors_are_verified() {
    let certs = util::certs::Certs::new();
    let hec = Hec::start(0);
    let port = tls_front(&hec, &certs);
    let sim = Sim::start(&["--events", "20", "--detect-events", "0"]);
    let url = format!("https://localhost:{port}");
    let ca = certs.path("ca.pem");
    let other = certs.path("other-ca.pem");
    let a = Agent::new(&sim.url());
    let ok = a
        .cmd()
        .args([
            "-o",
            "HEC",
            "--severity",
            "all",
            "--hec-url",
            &url,
            "--hec-token",
            TOKEN,
            "--tls-ca",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(hec.state().events.len(), 20);

    let b = Agent::new(&sim.url());
    let bad = b
        .cmd()
        // Investigate alone: the empty Detect, read at the same time,
        // would end (its cursor saved) before the first send fails.
        .args(["--elastica_app", "investigate"])
        .args([
            "-o",
            "HEC",
            "--severity",
            "all",
            "--hec-url",
            &url,
            "--hec-token",
            TOKEN,
            "--tls-ca",
        ])
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // Not retried: one line that says why.
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    assert!(b.state().is_none());
}

/// With acknowledgement the cursor follows the acknowledged batches inside
/// a page: the state file is written long before the page of 1000 logs
/// has been sent (at 200 a second, five seconds).
#[test]
fn with_acks_the_cursor_moves_inside_a_page() {
    let hec = Hec::start(0);
    let sim = Sim::start(&["--events", "1000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let mut child = a
        .process()
        // Investigate alone: the empty Detect, read at the same time,
        // would save its cursor at once.
        .args(["--elastica_app", "investigate"])
        .args(["-o", "HEC", "--severity", "all", "--hec-url"])
        .arg(hec.server.uri())
        .args(["--hec-token", TOKEN, "--hec-ack", "--hec-batch", "20"])
        .args(["--rate", "200", "--retry-delay-ms", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let committed = util::wait_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(20),
        || a.state().is_some(),
    );
    let sent = hec.state().events.len();
    let _ = child.kill();
    let _ = child.wait();
    assert!(committed, "no cursor was written");
    assert!(sent < 1000, "the cursor moved only after {sent} events");
    // Saved as delivered: in the cursor's second, or (the first page,
    // before the next shows the API in time order) remembered ahead.
    let state = a.state().unwrap();
    let cursor = &state["cursors"]["Investigate"];
    let count = |k: &str| cursor[k].as_array().map_or(0, Vec::len);
    assert!(count("ids") + count("ahead") > 0, "{state}");
}
