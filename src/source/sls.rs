//! Alibaba Cloud Log Service (SLS, seed 001): a Logstore's shards read
//! with `PullLogs`, each shard a stream of its own, paged by the service's
//! cursors.
//!
//! Each run lists the shards and takes each one's end cursor first, then
//! reads every shard from its saved position to that end: a cron run ends,
//! and logs arriving meanwhile wait for the next run. A page is what one
//! `PullLogs` from a cursor answers; the stream's position is that cursor
//! and how many logs of the page were delivered, so a run cut inside a
//! page resumes at the first log not confirmed (the service answers the
//! same groups again from the same cursor).
//!
//! Wire facts (signing, protobuf, LZ4) are in [`wire`]; the reference is
//! the vendor's SDKs, summed up in the project's `sls.md`.

mod group;
pub mod wire;

use super::http::{Answer, Client, HttpOptions, Origin, Proxy};
use super::keys::{KeyError, Keys};
use super::{Page, Request, SourceError};
use crate::event::{App, Event};
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing::{debug, warn};

/// Where a first run starts when config.json says nothing (`"start"`):
/// the last seven days.
pub const FIRST_RUN: chrono::Duration = chrono::Duration::days(7);

/// Log groups asked for per `PullLogs` (the service allows 1..1000; a
/// group holds one to thousands of logs).
pub const GROUPS_PER_PULL: u32 = 100;

/// The most logs one page may hold (the other sources' bound).
const MAX_PAGE_LOGS: usize = 100_000;

/// Where a shard without a saved position starts (`"start"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// The last [`FIRST_RUN`].
    #[default]
    Week,
    /// The oldest log the Logstore keeps.
    Begin,
    /// What arrives after the first run starts.
    End,
    /// Logs received from this time.
    At(DateTime<Utc>),
}

/// The Log Service's keys of config.json (each may instead come from a
/// flag or the seed's environment variables).
#[derive(Clone, Default)]
pub struct Config {
    /// `cn-hangzhou.log.aliyuncs.com`, `https://...`, or an address.
    pub endpoint: Option<String>,
    pub project: Option<String>,
    pub logstore: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<Secret>,
    pub consumer_group: Option<String>,
    pub start: Start,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("sls::Config")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .field("logstore", &self.logstore)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("consumer_group", &self.consumer_group)
            .field("start", &self.start)
            .finish()
    }
}

impl Config {
    pub const KEYS: [&'static str; 7] = [
        "endpoint",
        "project",
        "logstore",
        "access_key_id",
        "access_key_secret",
        "consumer_group",
        "start",
    ];

    pub fn parse(keys: &Keys) -> Result<Config, KeyError> {
        let start = match keys.optional_nonblank("start")? {
            None => Start::Week,
            Some(s) => parse_start(&s).ok_or_else(|| {
                keys.invalid(
                    "start",
                    format!(
                        "must be \"begin\", \"end\" or an ISO 8601 time such as 2026-03-15T00:00:00Z, not {s:?}"
                    ),
                )
            })?,
        };
        let name = |field: &'static str| -> Result<Option<String>, KeyError> {
            let v = keys.optional_nonblank(field)?;
            if let Some(v) = &v
                && !valid_name(v)
            {
                return Err(keys.invalid(
                    field,
                    format!("{v:?} is not a Log Service name (letters, digits, '-' and '_', 2 to 128 characters)"),
                ));
            }
            Ok(v)
        };
        Ok(Config {
            endpoint: keys.optional_nonblank("endpoint")?,
            project: name("project")?,
            logstore: name("logstore")?,
            access_key_id: keys.optional_nonblank("access_key_id")?,
            access_key_secret: keys
                .optional_nonblank("access_key_secret")?
                .map(Secret::new),
            consumer_group: name("consumer_group")?,
            start,
        })
    }
}

/// `"begin"`, `"end"` or a time (`2026-03-15T00:00:00Z`; a time without a
/// zone is UTC, not the host's zone as in the SDK: cron hosts differ).
pub fn parse_start(s: &str) -> Option<Start> {
    match s.trim() {
        t if t.eq_ignore_ascii_case("begin") => Some(Start::Begin),
        t if t.eq_ignore_ascii_case("end") => Some(Start::End),
        t => crate::event::parse_timestamp(t).map(Start::At),
    }
}

/// A project, Logstore or consumer group name as the service takes it.
pub fn valid_name(s: &str) -> bool {
    (2..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where a pull starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum From {
    /// A cursor the service gave.
    Cursor(String),
    /// The oldest log kept.
    Begin,
    /// The first log group received at or after this unix time.
    Time(i64),
}

/// A request for one page of a shard.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub shard: u32,
    pub from: From,
    /// The shard's end when the run began: the run reads no further.
    pub end: Option<String>,
}

/// A shard as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub id: u32,
    pub readonly: bool,
    /// Its end cursor when the run began.
    pub end: String,
    /// Whether this run reads it: always, but in a consumer group, where
    /// only the shards the group gives this consumer are.
    pub assigned: bool,
    /// The consumer group's checkpoint (where to resume), when it has
    /// one, and when the service received the log group there (for the
    /// lag `status` shows).
    pub checkpoint: Option<String>,
    pub checkpoint_time: Option<DateTime<Utc>>,
}

/// The Log Service client. Cheap to clone.
#[derive(Clone)]
pub struct Sls {
    http: Client,
    /// What requests connect to (`https://<project>.<endpoint>/`, or the
    /// address given).
    base: Url,
    /// The `Host` header, when it is not the URL's host (an address).
    host: Option<HeaderValue>,
    logstore: String,
    key_id: String,
    secret: Secret,
    start: Start,
    /// Each shard's end, taken when the run began.
    ends: Arc<Mutex<HashMap<u32, String>>>,
    path: std::path::PathBuf,
    /// The consumer group this run reads in, if any.
    group: Option<Arc<group::Group>>,
}

/// What an error answer says: the service's code and message.
#[derive(Debug, Default)]
struct ErrorBody {
    code: String,
    message: String,
}

impl Sls {
    pub fn new(
        config: &Config,
        path: &Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
    ) -> Result<Sls, SourceError> {
        let missing = |what: &str, flag: &str, var: &str| {
            SourceError::Setup(if path.exists() {
                format!(
                    "{}: field \"{what}\" is missing (or give {flag}, or set {var})",
                    path.display()
                )
            } else {
                format!(
                    "no {what}: give {flag} or set {var} (there is no config file {})",
                    path.display()
                )
            })
        };
        let endpoint = config
            .endpoint
            .as_deref()
            .ok_or_else(|| missing("endpoint", "--sls-endpoint", "SLS_ENDPOINT"))?;
        let project = config
            .project
            .as_deref()
            .ok_or_else(|| missing("project", "--sls-project", "SLS_PROJECT"))?;
        let logstore = config
            .logstore
            .clone()
            .ok_or_else(|| missing("logstore", "--sls-logstore", "SLS_LOGSTORE"))?;
        let key_id = config
            .access_key_id
            .clone()
            .ok_or_else(|| missing("access_key_id", "--sls-access-key-id", "SLS_AK_ID"))?;
        let secret = config
            .access_key_secret
            .clone()
            .ok_or_else(|| missing("access_key_secret", "--sls-access-key-secret", "SLS_AK_KEY"))?;
        crate::secret::register(secret.expose());
        let (base, host) = endpoint_url(endpoint, project).map_err(|problem| {
            SourceError::Setup(format!("{}: field \"endpoint\" {problem}", path.display()))
        })?;
        let host = match host {
            Some(h) => Some(HeaderValue::from_str(&h).map_err(|_| {
                SourceError::Setup(format!(
                    "{}: field \"project\" cannot go in a Host header",
                    path.display()
                ))
            })?),
            None => None,
        };
        let http = Client::new(
            base.clone(),
            HeaderMap::new(),
            http,
            proxy,
            Origin {
                config: path,
                field: "endpoint",
                credentials: "access_key_id and access_key_secret",
                location: "endpoint, project and logstore",
            },
        )?;
        Ok(Sls {
            http,
            base,
            host,
            logstore,
            key_id,
            secret,
            start: config.start,
            ends: Arc::default(),
            group: config
                .consumer_group
                .as_ref()
                .map(|name| Arc::new(group::Group::new(name, path))),
            path: path.to_path_buf(),
        })
    }

    /// Where a shard's first run starts.
    pub fn first_run(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.start {
            Start::Week => now - FIRST_RUN,
            Start::Begin => DateTime::UNIX_EPOCH,
            Start::End => now,
            Start::At(t) => t,
        }
    }

    /// The request for `shard`'s first page: the saved cursor, else from
    /// `since` (the epoch: the oldest log kept).
    pub fn first(&self, shard: u32, since: DateTime<Utc>, resume: Option<&str>) -> Request {
        let from = match resume {
            Some(c) => From::Cursor(c.to_string()),
            None if since.timestamp() <= 0 => From::Begin,
            None => From::Time(since.timestamp()),
        };
        Request::Sls(Query {
            shard,
            from,
            end: self.end_of(shard),
        })
    }

    fn end_of(&self, shard: u32) -> Option<String> {
        self.ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
            .cloned()
    }

    /// One signed request, retried as the service allows; the answer, or
    /// the service's error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        extra: &[(&'static str, &'static str)],
    ) -> Result<Answer, SourceError> {
        self.http
            .retrying(|| self.call_once(method.clone(), path, query, body.clone(), extra))
            .await
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        extra: &[(&'static str, &'static str)],
    ) -> Result<Answer, SourceError> {
        let mut url = self.base.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().copied());
        }
        let date = wire::http_date(Utc::now());
        let body_len = body.as_ref().map_or(0, Vec::len).to_string();
        let md5 = body.as_deref().map(wire::content_md5).unwrap_or_default();
        let content_type = if body.is_some() {
            "application/json"
        } else {
            ""
        };
        let log_headers = [
            ("x-log-apiversion", wire::API_VERSION),
            ("x-log-bodyrawsize", body_len.as_str()),
            ("x-log-signaturemethod", "hmac-sha1"),
        ];
        let signature = wire::signature(
            &wire::Signed {
                method: method.as_str(),
                content_md5: &md5,
                content_type,
                date: &date,
                headers: &log_headers,
                path,
                query,
            },
            self.secret.expose(),
        );
        let mut req = self.http.request(method, url);
        if let Some(h) = &self.host {
            req = req.header(reqwest::header::HOST, h.clone());
        }
        for (k, v) in log_headers {
            req = req.header(HeaderName::from_static(k), v);
        }
        for (k, v) in extra {
            req = req.header(HeaderName::from_static(k), *v);
        }
        let mut auth =
            HeaderValue::from_str(&format!("LOG {}:{signature}", self.key_id)).map_err(|_| {
                SourceError::Setup(format!(
                    "{}: field \"access_key_id\" cannot go in a header",
                    self.path.display()
                ))
            })?;
        auth.set_sensitive(true);
        req = req
            .header(reqwest::header::DATE, &date)
            .header("x-log-date", &date)
            .header(reqwest::header::AUTHORIZATION, auth);
        if let Some(body) = body {
            req = req
                .header("Content-MD5", md5)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        match self.http.send(req).await {
            Ok(a) => Ok(a),
            Err(e) => Err(self.service_error(e)),
        }
    }

    /// The service's error codes, read from the answer: quota errors are
    /// retried (whatever their status), credentials and names are named.
    fn service_error(&self, e: SourceError) -> SourceError {
        let (status, detail) = match &e {
            SourceError::Rejected { status, detail, .. } => (*status, detail.as_str()),
            SourceError::Status { status, detail, .. } => (*status, detail.as_str()),
            _ => return e,
        };
        let body = error_body(detail);
        let code = body.code.as_str();
        let said = if body.message.is_empty() {
            code.to_string()
        } else {
            format!("{code}: {}", body.message)
        };
        let file = self.path.display();
        match code {
            "ReadQuotaExceed"
            | "ShardReadQuotaExceed"
            | "WriteQuotaExceed"
            | "ServerBusy"
            | "RequestTimeout"
            | "InternalServerError" => {
                SourceError::Throttled(format!("the Log Service answered HTTP {status} {said}"))
            }
            "SignatureNotMatch"
            | "Unauthorized"
            | "InvalidAccessKeyId"
            | "InvalidAccessKeyId.NotFound" => SourceError::Rejected {
                status,
                detail: format!(" {said}"),
                check: crate::credentials::whence(
                    &self.path,
                    "access_key_id and access_key_secret",
                ),
            },
            "RequestTimeExpired" | "InvalidRequestTime" => SourceError::Setup(format!(
                "the Log Service refused the request's time (HTTP {status} {said}): this machine's clock is more than 15 minutes off"
            )),
            "ProjectNotExist" => SourceError::Setup(format!(
                "{file}: field \"project\": the Log Service has no such project (HTTP {status} {said})"
            )),
            "LogStoreNotExist" => SourceError::Setup(format!(
                "{file}: field \"logstore\": the project has no such Logstore (HTTP {status} {said})"
            )),
            "InvalidCursor" => SourceError::BadCursor(said),
            _ => e,
        }
    }

    /// Lists the shards and takes each one's end cursor (the run reads up
    /// to it).
    pub async fn shards(&self) -> Result<Vec<Shard>, SourceError> {
        let list = self.shard_list().await?;
        let Value::Array(items) = list else {
            return Err(SourceError::BadPage(
                "the shard list is not a JSON array".into(),
            ));
        };
        let mut shards = Vec::with_capacity(items.len());
        for item in items {
            let id = item
                .get("shardID")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| SourceError::BadPage("a shard of the list has no shardID".into()))?;
            let readonly = item
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("readonly"));
            let end = self.cursor(id, "end").await?;
            shards.push(Shard {
                id,
                readonly,
                end,
                assigned: true,
                checkpoint: None,
                checkpoint_time: None,
            });
        }
        shards.sort_by_key(|s| s.id);
        if let Some(group) = &self.group {
            self.join(group, &mut shards).await?;
        }
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        for s in &shards {
            ends.insert(s.id, s.end.clone());
        }
        Ok(shards)
    }

    /// A signed request whose answer is JSON (`what` names the answer in
    /// errors).
    async fn call_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Value, SourceError> {
        let answer = self.call(method, path, query, body, &[]).await?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| SourceError::BadPage(format!("{what} is not JSON ({e})")))
    }

    /// `GetCursorTime`: when the service received the log group at
    /// `cursor` (the end's: the last one's).
    async fn cursor_time(&self, shard: u32, cursor: &str) -> Result<DateTime<Utc>, SourceError> {
        let path = format!("/logstores/{}/shards/{shard}", self.logstore);
        let query = [("type", "cursor_time"), ("cursor", cursor)];
        let v = self
            .call_json(Method::GET, &path, &query, None, "a cursor time")
            .await?;
        v.get("cursor_time")
            .and_then(Value::as_i64)
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or_else(|| SourceError::BadPage("a cursor time answer names no time".into()))
    }

    /// `GetCursor` from `begin`, `end` or a unix time.
    async fn cursor(&self, shard: u32, from: &str) -> Result<String, SourceError> {
        let path = format!("/logstores/{}/shards/{shard}", self.logstore);
        let query = [("type", "cursor"), ("from", from)];
        let v = self
            .call_json(Method::GET, &path, &query, None, "a cursor answer")
            .await?;
        v.get("cursor")
            .and_then(Value::as_str)
            .filter(|c| valid_cursor(c))
            .map(String::from)
            .ok_or_else(|| SourceError::BadPage("a cursor answer names no usable cursor".into()))
    }

    /// One page: the log groups from the query's cursor, up to the end
    /// the run began with.
    pub async fn fetch(&self, app: App, q: &Query) -> Result<Page, SourceError> {
        if let Some(group) = &self.group
            && group.lost(q.shard)
        {
            // Given to another consumer: this run reads no more of it (the
            // position stays where it is).
            warn!(
                "{app}: the consumer group gave this shard to another consumer; this run reads no more of it"
            );
            return Ok(Page {
                events: Vec::new(),
                next: None,
                url: None,
                position: None,
                malformed: 0,
                lossy: false,
                repaired: 0,
            });
        }
        let start = match &q.from {
            From::Cursor(c) => c.clone(),
            From::Begin => self.cursor(q.shard, "begin").await?,
            From::Time(t) => self.cursor(q.shard, &t.to_string()).await?,
        };
        let (groups, next, lossy, cursor) = match self.pull(q.shard, &start, q.end.as_deref()).await
        {
            Err(SourceError::BadCursor(said)) if matches!(q.from, From::Cursor(_)) => {
                // The saved position's logs expired (or the cursor was
                // never valid): the SDKs jump to the end silently; this
                // reads from the oldest log kept, and says so.
                warn!(
                    "{app}: the Log Service no longer knows the saved cursor ({said}); its logs may have expired: exporting from the oldest log the shard keeps, logs in between are lost"
                );
                let begin = self.cursor(q.shard, "begin").await?;
                let (g, n, l) = self.pull(q.shard, &begin, q.end.as_deref()).await?;
                (g, n, l, begin)
            }
            Err(e) => return Err(e),
            Ok((g, n, l)) => (g, n, l, start),
        };
        let mut text = Vec::with_capacity(256 * groups.len() + 2);
        text.push(b'[');
        let mut times = Vec::new();
        for g in &groups {
            for l in &g.logs {
                if !times.is_empty() {
                    text.push(b',');
                }
                wire::flatten_json(g, l, &self.logstore, &mut text);
                times.push(DateTime::from_timestamp(
                    i64::from(l.time),
                    l.time_ns.unwrap_or(0).min(999_999_999),
                ));
            }
        }
        text.push(b']');
        if times.len() > MAX_PAGE_LOGS {
            return Err(SourceError::TooLarge(format!(
                "{} logs in one answer of {GROUPS_PER_PULL} log groups",
                times.len()
            )));
        }
        // Written from strings: always UTF-8.
        let text = String::from_utf8(text).unwrap_or_default();
        let mut events: Vec<Event> = crate::event::json::log_array(app, text)
            .map_err(|_| SourceError::BadPage("the log groups could not be read".into()))?;
        for (ev, t) in events.iter_mut().zip(times) {
            ev.time = t;
            ev.cursor_time = t;
        }
        // The end: nothing more (the cursor did not move) or the end the
        // run began with.
        let done = next == cursor || q.end.as_deref() == Some(next.as_str());
        debug!(
            "{app}: {} log groups, {} logs from cursor {cursor}",
            groups.len(),
            events.len()
        );
        Ok(Page {
            events,
            next: (!done).then(|| {
                Request::Sls(Query {
                    shard: q.shard,
                    from: From::Cursor(next.clone()),
                    end: q.end.clone(),
                })
            }),
            url: Some(cursor.as_str().into()),
            position: Some(next),
            malformed: 0,
            lossy,
            repaired: 0,
        })
    }

    /// `PullLogs`: the groups from `cursor`, the next cursor, and whether
    /// a string was not UTF-8.
    async fn pull(
        &self,
        shard: u32,
        cursor: &str,
        end: Option<&str>,
    ) -> Result<(Vec<wire::LogGroup>, String, bool), SourceError> {
        let path = format!("/logstores/{}/shards/{shard}", self.logstore);
        let count = GROUPS_PER_PULL.to_string();
        let mut query = vec![("type", "log"), ("cursor", cursor), ("count", &count)];
        if let Some(end) = end {
            query.push(("end_cursor", end));
        }
        self.http
            .retrying(|| async {
                let answer = self
                    .call_once(
                        Method::GET,
                        &path,
                        &query,
                        None,
                        &[
                            ("accept", "application/x-protobuf"),
                            ("accept-encoding", "lz4"),
                        ],
                    )
                    .await?;
                read_pull(&answer, cursor)
            })
            .await
    }

    /// What every destination confirmed of `shard`: its position (the
    /// cursor to resume from) goes to the consumer group as its
    /// checkpoint, soon (in the background, the latest per shard).
    pub fn committed(&self, shard: u32, position: Option<&str>) {
        if let (Some(group), Some(p)) = (&self.group, position) {
            group.note_checkpoint(shard, p);
        }
    }

    /// The run's end: the last checkpoints saved, the shards released.
    pub async fn finish(&self) {
        if let Some(group) = &self.group {
            self.leave(group).await;
        }
    }

    /// `check`: the credentials, the project and the Logstore (listing
    /// the shards); how many shards.
    pub async fn probe(&self) -> Result<usize, SourceError> {
        Ok(self.shard_list().await?.as_array().map_or(0, Vec::len))
    }

    /// `ListShards`' answer.
    async fn shard_list(&self) -> Result<Value, SourceError> {
        let path = format!("/logstores/{}/shards", self.logstore);
        self.call_json(Method::GET, &path, &[], None, "the shard list")
            .await
    }

    /// `check`, beyond the credentials: the Logstore's shards and the
    /// consumer group, each a line (what, and what was found).
    pub async fn probe_details(&self) -> Vec<(String, Result<String, SourceError>)> {
        let mut out = Vec::new();
        let shards = self.shard_list().await.map(|v| {
            let list = v.as_array().cloned().unwrap_or_default();
            let readonly = list
                .iter()
                .filter(|s| s.get("status").and_then(Value::as_str) == Some("readonly"))
                .count();
            format!("{} shards ({readonly} readonly)", list.len())
        });
        out.push((format!("Logstore {}", self.logstore), shards));
        if let Some(g) = &self.group {
            let path = format!("/logstores/{}/consumergroups", self.logstore);
            let found =
                self.call_json(Method::GET, &path, &[], None, "the consumer groups")
                    .await
                    .map(|v| {
                        let this = v.as_array().into_iter().flatten().find(|c| {
                            c.get("name").and_then(Value::as_str) == Some(g.name.as_str())
                        });
                        match this {
                            Some(c) => format!(
                                "exists (timeout {} s); this host is consumer {}",
                                c.get("timeout").and_then(Value::as_u64).unwrap_or(0),
                                g.consumer
                            ),
                            None => format!(
                                "absent: the first run creates it; this host is consumer {}",
                                g.consumer
                            ),
                        }
                    });
            out.push((format!("consumer group {}", g.name), found));
        }
        out
    }

    /// The service's clock, from a signed request's answer.
    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        let path = format!("/logstores/{}/shards", self.logstore);
        let answer = self
            .call_once(Method::GET, &path, &[], None, &[])
            .await
            .ok()?;
        let date = answer.headers.get(reqwest::header::DATE)?.to_str().ok()?;
        wire::parse_http_date(date)
    }
}

/// A cursor as the service writes them (base64 text).
fn valid_cursor(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 256
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'+' | b'/' | b'-' | b'_'))
}

/// A `PullLogs` answer read: its groups, its next cursor, and whether a
/// string was not UTF-8. A body cut short, a corrupt LZ4 block or a size
/// that does not match is an error to retry, never data.
fn read_pull(a: &Answer, cursor: &str) -> Result<(Vec<wire::LogGroup>, String, bool), SourceError> {
    let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok());
    let next = header("x-log-cursor")
        .filter(|c| valid_cursor(c))
        .ok_or_else(|| {
            SourceError::BadPage("the answer names no next cursor (x-log-cursor)".into())
        })?
        .to_string();
    let count: usize = match header("x-log-count") {
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| SourceError::BadPage(format!("x-log-count {n:?} is not a count")))?,
        None => usize::MAX,
    };
    let raw_size: Option<usize> =
        match header("x-log-bodyrawsize") {
            Some(n) => Some(n.trim().parse().map_err(|_| {
                SourceError::BadPage(format!("x-log-bodyrawsize {n:?} is not a size"))
            })?),
            None => None,
        };
    if count == 0 || raw_size == Some(0) {
        if next != cursor && count != 0 {
            return Err(SourceError::BadPage(
                "an empty answer that moves the cursor".into(),
            ));
        }
        return Ok((Vec::new(), next, false));
    }
    let body = match header("x-log-compresstype").map(str::trim) {
        None | Some("") => {
            if let Some(n) = raw_size
                && n != a.body.len()
            {
                return Err(SourceError::BadPage(format!(
                    "{} bytes where x-log-bodyrawsize announces {n} (cut short?)",
                    a.body.len()
                )));
            }
            std::borrow::Cow::Borrowed(&a.body[..])
        }
        Some(t) if t.eq_ignore_ascii_case("lz4") => {
            let n = raw_size.ok_or_else(|| {
                SourceError::BadPage("an lz4 body without x-log-bodyrawsize".into())
            })?;
            std::borrow::Cow::Owned(
                wire::lz4_decompress(&a.body, n)
                    .map_err(|e| SourceError::BadPage(format!("a corrupt lz4 body ({e})")))?,
            )
        }
        Some(other) => {
            return Err(SourceError::BadPage(format!(
                "a body compressed with {other:?}, which was not asked for"
            )));
        }
    };
    let (groups, lossy) = wire::decode(&body).map_err(|e| SourceError::BadPage(e.to_string()))?;
    if count != usize::MAX && groups.len() != count {
        return Err(SourceError::BadPage(format!(
            "{} log groups where x-log-count announces {count}",
            groups.len()
        )));
    }
    Ok((groups, next, lossy))
}

/// The `errorCode` and `errorMessage` of an error answer's start (the
/// JSON object, whatever follows it).
fn error_body(detail: &str) -> ErrorBody {
    let Some(start) = detail.find('{') else {
        return ErrorBody::default();
    };
    let mut values = serde_json::Deserializer::from_str(&detail[start..]).into_iter::<Value>();
    match values.next() {
        Some(Ok(v)) => {
            let text = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            ErrorBody {
                code: text("errorCode"),
                message: text("errorMessage"),
            }
        }
        _ => ErrorBody::default(),
    }
}

/// The URL requests go to and, for an address, the `Host` header:
/// `cn-hangzhou.log.aliyuncs.com` is `https://<project>.cn-hangzhou...`;
/// `127.0.0.1:8080` or `http://[::1]:8080` is connected to as given, with
/// `Host: <project>.<address>` (as the SDK sends it).
pub fn endpoint_url(endpoint: &str, project: &str) -> Result<(Url, Option<String>), String> {
    let e = endpoint.trim();
    let with_scheme = if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    };
    let url =
        Url::parse(&with_scheme).map_err(|err| format!("is not a host name ({err}): {e:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be a host name, or start with https:// ({e:?})"
        ));
    }
    if !url.username().is_empty() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "must be a host name such as cn-hangzhou.log.aliyuncs.com ({e:?})"
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(format!("has no host ({e:?})"));
    };
    let mut base = url.clone();
    base.set_path("/");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok((base, Some(format!("{project}.{host}"))));
    }
    base.set_host(Some(&format!("{project}.{host}")))
        .map_err(|err| format!("with the project is not a host name ({err})"))?;
    Ok((base, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_route_by_host() {
        let (u, h) = endpoint_url("cn-hangzhou.log.aliyuncs.com", "p1").unwrap();
        assert_eq!(u.as_str(), "https://p1.cn-hangzhou.log.aliyuncs.com/");
        assert_eq!(h, None);
        let (u, h) = endpoint_url("http://127.0.0.1:8080", "p1").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(h.as_deref(), Some("p1.127.0.0.1"));
        let (u, h) = endpoint_url("127.0.0.1", "p1").unwrap();
        assert_eq!(u.as_str(), "https://127.0.0.1/");
        assert_eq!(h.as_deref(), Some("p1.127.0.0.1"));
        let (_, h) = endpoint_url("http://[::1]:9", "p").unwrap();
        assert_eq!(h.as_deref(), Some("p.[::1]"));
        assert!(endpoint_url("ftp://x", "p").is_err());
        assert!(endpoint_url("https://u:pw@x", "p").is_err());
    }

    #[test]
    fn start_and_names() {
        assert_eq!(parse_start("begin"), Some(Start::Begin));
        assert_eq!(parse_start("END"), Some(Start::End));
        assert!(matches!(
            parse_start("2023-03-15 00:00:00"),
            Some(Start::At(_))
        ));
        assert_eq!(parse_start("yesterday"), None);
        assert!(valid_name("my-logstore_1"));
        assert!(!valid_name("a"));
        assert!(!valid_name("has space"));
    }

    fn answer(headers: &[(&'static str, String)], body: Vec<u8>) -> Answer {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Answer {
            status: reqwest::StatusCode::OK,
            headers: h,
            body,
        }
    }

    #[test]
    fn pull_answers_plain_or_lz4_are_read_and_broken_ones_refused() {
        let g = wire::LogGroup {
            logs: vec![wire::Log {
                time: 1_700_000_000,
                time_ns: None,
                contents: vec![("k".into(), "v".into())],
            }],
            ..wire::LogGroup::default()
        };
        let mut raw = Vec::new();
        wire::encode_group(&g, &mut raw);
        wire::encode_group(&g, &mut raw);
        let base = |extra: Vec<(&'static str, String)>| {
            let mut h = vec![
                ("x-log-cursor", "Tk9=".to_string()),
                ("x-log-count", "2".to_string()),
                ("x-log-bodyrawsize", raw.len().to_string()),
            ];
            h.extend(extra);
            h
        };
        // Plain, as a server that does not compress answers.
        let (groups, next, _) = read_pull(&answer(&base(vec![]), raw.clone()), "Q1=").unwrap();
        assert_eq!((groups.len(), next.as_str()), (2, "Tk9="));
        // LZ4.
        let lz4 = base(vec![("x-log-compresstype", "lz4".into())]);
        let (groups, _, _) = read_pull(&answer(&lz4, wire::lz4_compress(&raw)), "Q1=").unwrap();
        assert_eq!(groups, vec![g.clone(), g]);
        // Cut short, corrupt, miscounted, another compression, no cursor.
        let cut = read_pull(&answer(&base(vec![]), raw[..raw.len() - 3].to_vec()), "Q1=");
        assert!(matches!(cut, Err(SourceError::BadPage(_))));
        let mut bad = wire::lz4_compress(&raw);
        bad.truncate(bad.len() / 2);
        assert!(read_pull(&answer(&lz4, bad), "Q1=").is_err());
        let mut three = base(vec![]);
        three[1].1 = "3".into();
        assert!(read_pull(&answer(&three, raw.clone()), "Q1=").is_err());
        let zstd = base(vec![("x-log-compresstype", "zstd".into())]);
        assert!(read_pull(&answer(&zstd, raw.clone()), "Q1=").is_err());
        let mut none = base(vec![]);
        none.remove(0);
        assert!(read_pull(&answer(&none, raw.clone()), "Q1=").is_err());
        // The end: nothing, the cursor where it was.
        let end = vec![
            ("x-log-cursor", "Q1=".to_string()),
            ("x-log-count", "0".to_string()),
            ("x-log-bodyrawsize", "0".to_string()),
        ];
        let (groups, next, _) = read_pull(&answer(&end, Vec::new()), "Q1=").unwrap();
        assert!(groups.is_empty() && next == "Q1=");
    }

    #[test]
    fn error_bodies_are_read() {
        let b = error_body(r#": {"errorCode":"ReadQuotaExceed","errorMessage":"slow down"}"#);
        assert_eq!(b.code, "ReadQuotaExceed");
        assert_eq!(b.message, "slow down");
        assert_eq!(error_body(": <html>").code, "");
        let b =
            error_body(r#": {"errorCode":"LogStoreNotExist"} (check endpoint in the config file)"#);
        assert_eq!(b.code, "LogStoreNotExist");
    }
}
