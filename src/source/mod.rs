//! Source: pulls pages of logs from the vendor API. One file per vendor;
//! this module holds what they share: the page, the errors (retryable or
//! fatal) and the retry schedule.

pub mod body;
pub mod cirrus;
pub mod cloudsoc;
pub mod http;
pub mod keys;
pub mod lenient;
pub mod link;
pub mod mcas;
pub mod oauth;
pub mod rest;
pub mod sls;

use crate::event::{App, Event};
use chrono::{DateTime, Utc};
use http::{HttpOptions, Proxy};
use reqwest::Url;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

pub use crate::event::Vendor;

/// The keys of config.json that hold a secret, whatever the source: each
/// is registered for redaction before anything is checked.
pub const SECRET_KEYS: [&str; 5] = [
    "key_secret",
    "token",
    "apisecret",
    "access_key_secret",
    "client_secret",
];

/// A config's source section: the vendor's own keys, read and checked by
/// the vendor's file (config.json keeps what every source shares).
#[derive(Clone)]
pub enum VendorConfig {
    CloudSoc(cloudsoc::Config),
    Mcas(mcas::Config),
    Cirrus(cirrus::Config),
    Rest(Box<rest::Config>),
    Sls(sls::Config),
}

/// Secrets show as `Secret(***)`; a declared API shows its URL only (its
/// query parameters may hold a key).
impl std::fmt::Debug for VendorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VendorConfig::CloudSoc(c) => c.fmt(f),
            VendorConfig::Mcas(c) => c.fmt(f),
            VendorConfig::Cirrus(c) => c.fmt(f),
            VendorConfig::Sls(c) => c.fmt(f),
            VendorConfig::Rest(spec) => f
                .debug_struct("Spec")
                .field("url", &spec.url.as_str())
                .finish(),
        }
    }
}

impl VendorConfig {
    /// Reads `vendor`'s keys of a config file's object.
    pub fn parse(vendor: Vendor, keys: &keys::Keys) -> Result<VendorConfig, keys::KeyError> {
        Ok(match vendor {
            Vendor::CloudSoc => VendorConfig::CloudSoc(cloudsoc::Config::parse(keys)?),
            Vendor::Mcas => VendorConfig::Mcas(mcas::Config::parse(keys)?),
            Vendor::Cirrus => VendorConfig::Cirrus(cirrus::Config::parse(keys)?),
            Vendor::Rest => VendorConfig::Rest(Box::new(rest::Config::read(keys)?)),
            Vendor::Sls => VendorConfig::Sls(sls::Config::parse(keys)?),
        })
    }

    /// The keys `vendor` reads.
    pub fn keys(vendor: Vendor) -> &'static [&'static str] {
        match vendor {
            Vendor::CloudSoc => &cloudsoc::Config::KEYS,
            Vendor::Mcas => &mcas::Config::KEYS,
            Vendor::Cirrus => &cirrus::Config::KEYS,
            Vendor::Rest => &rest::Config::KEYS,
            Vendor::Sls => &sls::Config::KEYS,
        }
    }

    pub fn vendor(&self) -> Vendor {
        match self {
            VendorConfig::CloudSoc(_) => Vendor::CloudSoc,
            VendorConfig::Mcas(_) => Vendor::Mcas,
            VendorConfig::Cirrus(_) => Vendor::Cirrus,
            VendorConfig::Rest(_) => Vendor::Rest,
            VendorConfig::Sls(_) => Vendor::Sls,
        }
    }

    /// The API's URL, as configured (for messages).
    pub fn api_url(&self) -> String {
        match self {
            VendorConfig::CloudSoc(c) => c.api_server.clone(),
            VendorConfig::Mcas(c) => c.api_server.clone(),
            VendorConfig::Cirrus(c) => c.apiurl.clone(),
            VendorConfig::Rest(spec) => spec.url.to_string(),
            VendorConfig::Sls(c) => c.endpoint.clone().unwrap_or_default(),
        }
    }
}

/// The next page to ask for, in the source's own terms: the run only
/// hands it back to [`Source::fetch`] (and notices one asked twice).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// GET this URL (CloudSOC's first URL and `next_url`).
    Get(Url),
    /// Defender for Cloud Apps: logs from a time, after a number of them.
    Mcas(mcas::Query),
    /// A declared REST API's page.
    Rest(rest::Query),
    /// A Log Service shard's page.
    Sls(sls::Query),
}

impl Request {
    /// What it is, for messages (`a next_url`).
    pub fn what(&self) -> &'static str {
        match self {
            Request::Get(_) => "a next_url",
            Request::Mcas(_) => "a page",
            Request::Rest(_) => "a next page",
            Request::Sls(_) => "a next cursor",
        }
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Get(url) => write!(f, "{url}"),
            Request::Mcas(q) => write!(f, "from {} ms, skip {}", q.gte_ms, q.skip),
            // Without its query: a declared parameter may hold a key.
            Request::Rest(q) => write!(f, "{} (offset {})", q.url.path(), q.offset),
            Request::Sls(q) => write!(f, "shard {} from {:?}", q.shard, q.from),
        }
    }
}

/// What the command line says to one source or another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub cirrus: cirrus::Options,
}

/// A vendor's API, as the run drives it without knowing which: the first
/// request of a stream from a time, each page with the request for the
/// next, the server's clock, and how far back the API keeps logs.
#[derive(Clone)]
pub enum Source {
    CloudSoc(cloudsoc::CloudSoc),
    Mcas(mcas::Mcas),
    Cirrus(cirrus::Cirrus),
    Rest(rest::Rest),
    Sls(sls::Sls),
}

impl Source {
    /// The client for the API `config` names; `path` is its file (for
    /// messages).
    pub fn open(
        config: &VendorConfig,
        path: &Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
        options: &Options,
    ) -> Result<Source, SourceError> {
        Ok(match config {
            VendorConfig::CloudSoc(c) => {
                Source::CloudSoc(cloudsoc::CloudSoc::new(c, path, http, proxy)?)
            }
            VendorConfig::Mcas(c) => Source::Mcas(mcas::Mcas::new(c, path, http, proxy)?),
            VendorConfig::Cirrus(c) => {
                Source::Cirrus(cirrus::Cirrus::new(c, path, http, proxy, &options.cirrus)?)
            }
            VendorConfig::Rest(spec) => Source::Rest(rest::Rest::new(spec, path, http, proxy)?),
            VendorConfig::Sls(c) => Source::Sls(sls::Sls::new(c, path, http, proxy)?),
        })
    }

    pub fn vendor(&self) -> Vendor {
        match self {
            Source::CloudSoc(_) => Vendor::CloudSoc,
            Source::Mcas(_) => Vendor::Mcas,
            Source::Cirrus(_) => Vendor::Cirrus,
            Source::Rest(_) => Vendor::Rest,
            Source::Sls(_) => Vendor::Sls,
        }
    }

    /// The request for `app`'s logs from `since` (inclusive), with the
    /// filters the API applies itself.
    /// `resume` is the position a run of an API paged by position saved.
    pub fn first(
        &self,
        app: App,
        since: DateTime<Utc>,
        resume: Option<&str>,
        filters: &[(&'static str, String)],
    ) -> Result<Request, SourceError> {
        Ok(match self {
            Source::CloudSoc(c) => Request::Get(c.first_url(app, since, filters)),
            // Filtered here only (--severity and the rest apply locally).
            Source::Mcas(_) => mcas::Mcas::first(since),
            Source::Cirrus(c) => c.first(since, resume)?,
            Source::Rest(r) => r.first(since),
            Source::Sls(s) => match app {
                App::SlsShard(shard) => s.first(shard, since, resume),
                other => {
                    return Err(SourceError::Setup(format!(
                        "the Log Service has no stream {other}"
                    )));
                }
            },
        })
    }

    /// What goes on the wire for `req` (method, URL, body), as a run tells
    /// a request made twice: never the run's own counters. A declared
    /// API's method and body are the same for every request of it.
    pub fn wire(&self, req: &Request) -> String {
        match req {
            Request::Get(url) => format!("GET {url}"),
            Request::Mcas(q) => format!("POST gte {} skip {}", q.gte_ms, q.skip),
            Request::Rest(q) => format!("REST {}", q.url),
            Request::Sls(q) => format!("SLS shard {} {:?} to {:?}", q.shard, q.from, q.end),
        }
    }

    /// One page, retried as the API allows.
    pub async fn fetch(&self, app: App, req: &Request) -> Result<Page, SourceError> {
        match (self, req) {
            (Source::CloudSoc(c), Request::Get(url)) => c.fetch(app, url).await,
            (Source::Mcas(m), Request::Mcas(q)) => m.fetch(app, q).await,
            (Source::Cirrus(c), Request::Get(url)) => c.fetch(url).await,
            (Source::Rest(r), Request::Rest(q)) => r.fetch(q).await,
            (Source::Sls(s), Request::Sls(q)) => s.fetch(app, q).await,
            (_, other) => Err(SourceError::Setup(format!(
                "{} cannot follow {other}",
                self.vendor()
            ))),
        }
    }

    /// What every destination confirmed of `app`: its position (an API
    /// paged by position), for a source that reports it back (a Log
    /// Service consumer group's checkpoint).
    pub fn committed(&self, app: App, position: Option<&str>) {
        if let (Source::Sls(s), App::SlsShard(shard)) = (self, app) {
            s.committed(shard, position);
        }
    }

    /// The run's end, for a source that has something to close (a Log
    /// Service consumer group: the last checkpoints, the shards released).
    pub async fn finish(&self) {
        if let Source::Sls(s) = self {
            s.finish().await;
        }
    }

    /// Where a log's time is read, for messages about a log without one.
    pub fn time_words(&self) -> String {
        match self {
            Source::CloudSoc(_) => "created_timestamp or inserted_timestamp".into(),
            Source::Mcas(_) => "timestamp".into(),
            Source::Cirrus(_) => "timestamp".into(),
            Source::Rest(r) => format!("time_field {:?}", r.time_field()),
            Source::Sls(_) => "__time__".into(),
        }
    }

    /// Whether the API is known to answer newest first (a declared
    /// API's `"order"`); others are watched page by page.
    pub fn newest_first(&self) -> bool {
        match self {
            Source::Rest(r) => r.newest_first(),
            _ => false,
        }
    }

    /// The API server's clock, when it tells.
    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        match self {
            Source::CloudSoc(c) => c.server_now().await,
            Source::Mcas(m) => m.server_now().await,
            Source::Cirrus(c) => c.server_now().await,
            Source::Rest(r) => r.server_now().await,
            Source::Sls(s) => s.server_now().await,
        }
    }

    /// `check`: whether the API takes our credentials.
    pub async fn probe_credentials(&self) -> Result<(), SourceError> {
        match self {
            Source::CloudSoc(c) => c.probe_datasources().await,
            Source::Mcas(m) => m.probe(App::Alerts).await.map(|_| ()),
            Source::Cirrus(c) => c.probe().await.map(|_| ()),
            Source::Rest(r) => r.probe().await.map(|_| ()),
            Source::Sls(s) => s.probe().await.map(|_| ()),
        }
    }

    /// `check`: one small request for `app`'s logs of the last hour; how
    /// many came back (0 or 1).
    pub async fn probe_stream(&self, app: App) -> Result<usize, SourceError> {
        match self {
            Source::CloudSoc(c) => c.probe_logs(app).await,
            Source::Mcas(m) => m.probe(app).await,
            Source::Cirrus(c) => c.probe().await,
            Source::Rest(r) => r.probe().await,
            Source::Sls(s) => s.probe().await.map(|n| n.min(1)),
        }
    }

    /// The oldest time the API still answers for `app`, when it has a
    /// limit.
    pub fn oldest(&self, app: App, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            // Detect keeps incidents longer than Investigate's 180 days.
            Source::CloudSoc(_) => (app == App::Investigate)
                .then(|| now - cloudsoc::MAX_LOOKBACK + chrono::Duration::hours(1)),
            // Cirrus keeps 90 days.
            Source::Cirrus(_) => Some(now - cirrus::KEPT + chrono::Duration::hours(1)),
            Source::Mcas(_) | Source::Rest(_) | Source::Sls(_) => None,
        }
    }

    /// Where a stream's first run (no saved cursor, no --start_date)
    /// starts.
    pub fn first_run(&self, _app: App, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Source::CloudSoc(_) => now - cloudsoc::MAX_LOOKBACK + chrono::Duration::hours(1),
            Source::Mcas(_) => now - mcas::FIRST_RUN,
            Source::Cirrus(_) => now - cirrus::FIRST_RUN,
            Source::Rest(_) => now - rest::FIRST_RUN,
            Source::Sls(s) => s.first_run(now),
        }
    }
}

/// One page of logs, in the order the API sent them.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<Event>,
    /// The next page, if the API named one.
    pub next: Option<Request>,
    /// For an API that pages by position: the URL this page was read
    /// from (a log of it delivered moves the position into it), and where
    /// to resume once all of it is (the position after its last log).
    pub url: Option<std::sync::Arc<str>>,
    pub position: Option<String>,
    /// Entries of `logs` that were not JSON objects (skipped, counted).
    pub malformed: u64,
    /// True when the body held bytes that are not UTF-8 (replaced by U+FFFD).
    pub lossy: bool,
    /// Values JSON cannot carry (lone surrogate escapes, numbers out of
    /// range) that were replaced so that the rest of the page is read.
    pub repaired: u64,
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("the API rejected the credentials (HTTP {status}{detail}): check {check}")]
    Rejected {
        status: u16,
        detail: String,
        /// What to check, and where it came from (`key_id, key_secret and
        /// tenant in config.json`).
        check: String,
    },
    /// The OAuth 2.0 token endpoint refused the client (or the request).
    #[error("the token endpoint {url} refused the request (HTTP {status}{detail}): check {check}")]
    TokenRejected {
        url: String,
        status: u16,
        detail: String,
        check: String,
    },
    #[error("the API answered HTTP {status}{detail}")]
    Status {
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    #[error("cannot reach the API: {0}")]
    Transport(String),
    #[error("the API sent a page that cannot be read: {0}")]
    BadPage(String),
    #[error("the API sent a page over the limits ({0}); nothing of it was delivered")]
    TooLarge(String),
    #[error(
        "{what} points to {origin}, not to the configured API server; refusing to send the credentials there"
    )]
    ForeignNextUrl { what: String, origin: String },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<SourceError>,
    },
    #[error("{0}")]
    Setup(String),
    /// The API asks to slow down (a quota), whatever its status: retried.
    #[error("{0}")]
    Throttled(String),
    /// The API does not know the position asked for (expired, or never
    /// valid).
    #[error("the API does not know the cursor asked for ({0})")]
    BadCursor(String),
    /// The API makes no progress (the same page again): the stream ends,
    /// what was delivered is saved, the run fails.
    #[error("{0}")]
    NoProgress(String),
}

impl SourceError {
    /// Whether trying the same request again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            SourceError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            SourceError::Transport(_) | SourceError::BadPage(_) | SourceError::Throttled(_) => true,
            _ => false,
        }
    }

    /// The wait the server asked for (429 or 503 with Retry-After).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SourceError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Retry schedule: the server's Retry-After when it gives one (capped), or
/// exponential backoff from `base` with jitter, capped.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base: Duration,
}

/// The longest single wait, whatever the server asks.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);
/// The longest backoff step when the server names none.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based) after `err`;
    /// `jitter` in [0, 1).
    pub fn delay(&self, attempt: u32, err: &SourceError, jitter: f64) -> Duration {
        if let Some(d) = err.retry_after() {
            return d.min(MAX_RETRY_WAIT);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF);
        // Between half and all of the step, so that agents started by the
        // same cron minute do not retry in step.
        exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// A random number in [0, 1) from the standard library's hasher keys.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

pub use crate::report::one_line as error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy {
            retries: 5,
            base: Duration::from_secs(1),
        };
        let e = SourceError::Transport("reset".into());
        assert_eq!(p.delay(0, &e, 0.999_999).as_millis(), 999);
        assert_eq!(p.delay(0, &e, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(3, &e, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay(20, &e, 0.0), MAX_BACKOFF / 2);
        let e = SourceError::Status {
            status: 429,
            detail: String::new(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(p.delay(4, &e, 0.3), Duration::from_secs(7));
        let e = SourceError::Status {
            status: 429,
            detail: String::new(),
            retry_after: Some(Duration::from_secs(86_400)),
        };
        assert_eq!(p.delay(0, &e, 0.3), MAX_RETRY_WAIT);
    }

    #[test]
    fn classification() {
        let s = |status| SourceError::Status {
            status,
            detail: String::new(),
            retry_after: None,
        };
        assert!(s(429).retryable() && s(500).retryable() && s(503).retryable());
        assert!(!s(400).retryable() && !s(404).retryable());
        assert!(
            !SourceError::Rejected {
                status: 403,
                detail: String::new(),
                check: "the token".into(),
            }
            .retryable()
        );
        assert!(SourceError::BadPage("x".into()).retryable());
    }

    #[test]
    fn vendor_names() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::parse(v.name()), Some(v));
            assert_eq!(Vendor::parse(&v.name().to_uppercase()), Some(v));
        }
        assert_eq!(Vendor::parse("okta"), None);
        assert_eq!(Vendor::default(), Vendor::CloudSoc);
        assert_eq!(Vendor::names(), "cloudsoc, mcas, cirrus, rest, sls");
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
