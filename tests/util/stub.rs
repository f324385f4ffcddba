//! A local HTTP stub of the log API (wiremock on 127.0.0.1) whose answer
//! to each logs request a test computes from the request: its app, its
//! `created_timestamp` and its number.

use super::agent::Agent;
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What a test sees of one logs request.
pub struct Ask<'a> {
    /// `Investigate` or `Detect`.
    pub app: String,
    /// The `created_timestamp` parameter.
    pub since: String,
    /// Requests for logs answered before this one (both apps).
    pub n: usize,
    pub request: &'a Request,
}

type Answer = dyn Fn(&Ask) -> ResponseTemplate + Send + Sync;

struct Responder(Box<Answer>, AtomicUsize);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let param = |k: &str| {
            req.url
                .query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let ask = Ask {
            app: param("app"),
            since: param("created_timestamp"),
            n: self.1.fetch_add(1, Ordering::SeqCst),
            request: req,
        };
        (self.0)(&ask)
    }
}

pub struct Stub {
    pub rt: tokio::runtime::Runtime,
    pub server: MockServer,
}

impl Stub {
    pub fn start(answer: impl Fn(&Ask) -> ResponseTemplate + Send + Sync + 'static) -> Stub {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path_regex("/logs/get/?$"))
                .respond_with(Responder(Box::new(answer), AtomicUsize::new(0)))
                .mount(&server)
                .await;
            server
        });
        Stub { rt, server }
    }

    pub fn url(&self) -> String {
        format!("{}/", self.server.uri())
    }

    pub fn agent(&self) -> Agent {
        Agent::new(&self.url())
    }
}

/// A page of `logs` (the last: no next_url).
pub fn page(logs: &[serde_json::Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        serde_json::json!({"status": "success", "logs": logs, "meta": {"total": logs.len()}}),
    )
}

/// A stub answering every request (any method, any path) with what
/// `answer` computes from it and the number of requests before it: for
/// hostile APIs of any source.
pub struct AnyStub {
    pub rt: tokio::runtime::Runtime,
    pub server: MockServer,
}

type AnyAnswer = dyn Fn(&Request, usize) -> ResponseTemplate + Send + Sync;

struct AnyResponder(Box<AnyAnswer>, AtomicUsize);

impl Respond for AnyResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        (self.0)(req, self.1.fetch_add(1, Ordering::SeqCst))
    }
}

impl AnyStub {
    pub fn start(
        answer: impl Fn(&Request, usize) -> ResponseTemplate + Send + Sync + 'static,
    ) -> AnyStub {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(AnyResponder(Box::new(answer), AtomicUsize::new(0)))
                .mount(&server)
                .await;
            server
        });
        AnyStub { rt, server }
    }

    /// The base URL, without a trailing slash.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// How many requests it was sent.
    pub fn requests(&self) -> usize {
        self.rt
            .block_on(self.server.received_requests())
            .map_or(0, |r| r.len())
    }
}

/// The value of query parameter `k` of a request.
pub fn param(req: &Request, k: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.into_owned())
}
