//! A REST API declared in config.json (`"source": "rest"`), for the many
//! SaaS log APIs shaped alike (Okta's System Log is the model): a URL, a
//! method, headers and auth, the parameter that asks for logs since a
//! time, where the records are in the answer, their time and id fields, and
//! how the next page is named:
//!
//! - `link`: the `Link` header's `rel="next"` URL;
//! - `body:/pointer`: a next URL in the answer;
//! - `token:/pointer:param`: a token in the answer, sent back as `param`;
//! - `offset:param`: the number of records read so far, sent as `param`.
//!
//! Two checks catch a declaration that does not fit the API, which would
//! otherwise skip records without a word:
//!
//! - Times. A record dated before 2000, or more than a day ahead of the
//!   server's clock, was read in the wrong `time_format` (`epoch_ms`
//!   against seconds puts records in January 1970, and the cursor passes
//!   them as already delivered; the reverse puts them in year 58891). A
//!   page whose every dated record is so stops the run, naming
//!   `time_format`.
//! - Offsets. After a page of `count` records read from offset `N`, the
//!   next request asks from `N + count - 1`: one record back. An API that
//!   reads the parameter as a number of records answers first the record
//!   that ended the page before (or, in a list sorted newest first that
//!   grew meanwhile, a few places later); one that reads it as a page
//!   number answers other records, or none, and the run stops naming
//!   `next`. The records read twice are dropped. (A page of one record is
//!   followed from `N + 1`, unchecked: one back would be the same request.)
//!
//! The cursor is CloudSOC's: the newest second delivered and the ids at
//! it; each run asks from that second (`since_param`) and skips those ids.
//! Every header value and auth secret is a registered secret.

use super::http::{Client, HttpOptions, Origin, Proxy};
use super::{Page, Request, SourceError, body};
use crate::event::{App, Event, Val, parse_epoch_ms, parse_timestamp};
use crate::secret::{Secret, register};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{AUTHORIZATION, DATE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value};
use std::path::Path;
use tracing::debug;

/// Where a first run starts: the last seven days.
pub const FIRST_RUN: chrono::Duration = chrono::Duration::days(7);

/// How a time is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    Rfc3339,
    EpochMs,
    EpochS,
}

impl TimeFormat {
    fn parse(s: &str) -> Option<TimeFormat> {
        Some(match s {
            "rfc3339" => TimeFormat::Rfc3339,
            "epoch_ms" => TimeFormat::EpochMs,
            "epoch_s" => TimeFormat::EpochS,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::EpochMs => "epoch_ms",
            TimeFormat::EpochS => "epoch_s",
        }
    }

    fn write(self, t: DateTime<Utc>) -> String {
        match self {
            TimeFormat::Rfc3339 => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            TimeFormat::EpochMs => t.timestamp_millis().to_string(),
            TimeFormat::EpochS => t.timestamp().to_string(),
        }
    }

    /// A record's time, in this format (a number or a string of it).
    fn read(self, v: Val<'_>) -> Option<DateTime<Utc>> {
        let text = match v {
            Val::Str(s) | Val::Num(s) => s.trim(),
            _ => return None,
        };
        match self {
            TimeFormat::Rfc3339 => parse_timestamp(text),
            TimeFormat::EpochMs => parse_epoch_ms(text),
            TimeFormat::EpochS => text
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && s.abs() < 1e14)
                .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64)),
        }
    }
}

/// How the next page is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// One page only.
    None,
    Link,
    Body(String),
    Token {
        pointer: String,
        param: String,
    },
    Offset(String),
}

/// A declared API's keys of config.json: its declaration (every vendor's
/// file has its `Config`).
pub type Config = Spec;

/// The declaration, checked.
#[derive(Clone, Debug)]
pub struct Spec {
    pub url: Url,
    pub method: Method,
    /// Header values, every one a secret.
    pub headers: Vec<(String, Secret)>,
    pub auth: Option<Auth>,
    pub params: Vec<(String, String)>,
    pub body: Option<Value>,
    pub since_param: String,
    pub since_format: TimeFormat,
    /// A JSON pointer to the records ("" = the answer itself).
    pub records: String,
    pub time_field: String,
    pub time_format: TimeFormat,
    pub id_field: Option<String>,
    pub next: Next,
    /// `"order": "newest_first"`: the API answers its newest records
    /// first; the cursor holds until the run has read the whole answer.
    pub newest_first: bool,
    /// `"mapping"`: how the records look in CEF and LEEF.
    pub mapping: Option<crate::encode::declared::Mapping>,
}

#[derive(Clone, Debug)]
pub enum Auth {
    Basic(String, Secret),
    Bearer(Secret),
    /// OAuth 2.0 client credentials: a token endpoint's access tokens.
    OAuth2(Box<super::oauth::OAuth2>),
}

/// A declaration error: the file, the key and what is wrong.
fn bad(path: &Path, key: &str, problem: impl std::fmt::Display) -> String {
    format!("{}: field \"{key}\" {problem}", path.display())
}

impl Spec {
    /// The keys a declaration may hold.
    pub const KEYS: [&'static str; 15] = [
        "url",
        "method",
        "headers",
        "auth",
        "params",
        "body",
        "since_param",
        "since_format",
        "records",
        "time_field",
        "time_format",
        "id_field",
        "next",
        "order",
        "mapping",
    ];

    /// The declaration among a config file's keys, checked; the values of
    /// its query parameters registered as secrets where they show in a URL
    /// (an API key may be one).
    pub fn read(keys: &super::keys::Keys) -> Result<Spec, super::keys::KeyError> {
        let spec = Spec::parse(keys.path, keys.obj)
            .map_err(|message| super::keys::KeyError::Declared { message })?;
        for (k, v) in &spec.params {
            crate::secret::register_param(k, v);
        }
        Ok(spec)
    }

    /// Checks the declaration in `obj` (config.json at `path`); secrets
    /// are registered before anything can print them.
    pub fn parse(path: &Path, obj: &Map<String, Value>) -> Result<Spec, String> {
        // Secrets first.
        // A value's scheme word aside (`SSWS <token>`), the token alone is
        // a secret too: an answer may echo it.
        let register_value = |s: &str| {
            register(s);
            if let Some((_, token)) = s.trim().split_once(' ') {
                register(token.trim());
            }
        };
        if let Some(Value::Object(h)) = obj.get("headers") {
            for v in h.values() {
                if let Value::String(s) = v {
                    register_value(s);
                }
            }
        }
        if let Some(Value::Object(a)) = obj.get("auth").filter(|a| a.get("type").is_some()) {
            super::oauth::OAuth2::register_secrets(a);
        } else if let Some(Value::Object(a)) = obj.get("auth") {
            for v in a.values() {
                match v {
                    Value::String(s) => register_value(s),
                    Value::Array(items) => {
                        for s in items.iter().skip(1).filter_map(Value::as_str) {
                            register(s);
                        }
                    }
                    _ => {}
                }
            }
        }
        let string = |key: &str| -> Result<Option<String>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() && key != "records" => {
                    Err(bad(path, key, "is empty"))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(path, key, "must be a string")),
            }
        };
        let required = |key: &str| -> Result<String, String> {
            string(key)?.ok_or_else(|| bad(path, key, "is missing"))
        };
        let url_text = required("url")?;
        let url = Url::parse(url_text.trim())
            .map_err(|e| bad(path, "url", format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return Err(bad(
                path,
                "url",
                "must be an http:// or https:// URL without credentials",
            ));
        }
        let method = match string("method")?
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("GET") => Method::GET,
            Some("POST") => Method::POST,
            Some(other) => return Err(bad(path, "method", format!("is {other:?}: GET or POST"))),
        };
        let mut headers = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = v
                        .as_str()
                        .ok_or_else(|| bad(path, "headers", format!("{k:?} must be a string")))?;
                    if HeaderName::from_bytes(k.as_bytes()).is_err()
                        || HeaderValue::from_str(v).is_err()
                    {
                        return Err(bad(
                            path,
                            "headers",
                            format!("{k:?} cannot be sent as a header"),
                        ));
                    }
                    headers.push((k.clone(), Secret::new(v.to_string())));
                }
            }
            Some(_) => return Err(bad(path, "headers", "must be an object of strings")),
        }
        let auth = match obj.get("auth") {
            None | Some(Value::Null) => None,
            Some(Value::Object(a)) if a.contains_key("type") => match a.get("type") {
                Some(Value::String(t)) if t == "oauth2" => Some(Auth::OAuth2(Box::new(
                    super::oauth::OAuth2::parse(a).map_err(|p| bad(path, "auth", p))?,
                ))),
                _ => return Err(bad(path, "auth", "has a \"type\" other than \"oauth2\"")),
            },
            Some(Value::Object(a)) if a.len() == 1 => match a.iter().next() {
                Some((k, Value::Array(pair))) if k == "basic" && pair.len() == 2 => {
                    match (pair[0].as_str(), pair[1].as_str()) {
                        (Some(u), Some(p)) => {
                            Some(Auth::Basic(u.to_string(), Secret::new(p.to_string())))
                        }
                        _ => return Err(bad(path, "auth", "basic must be [\"user\", \"secret\"]")),
                    }
                }
                Some((k, Value::String(t))) if k == "bearer" => {
                    if HeaderValue::from_str(&format!("Bearer {t}")).is_err() {
                        return Err(bad(
                            path,
                            "auth",
                            "bearer holds characters that cannot be sent",
                        ));
                    }
                    Some(Auth::Bearer(Secret::new(t.clone())))
                }
                _ => {
                    return Err(bad(
                        path,
                        "auth",
                        "must be {\"basic\": [\"user\", \"secret\"]}, {\"bearer\": \"token\"} or {\"type\": \"oauth2\", ...}",
                    ));
                }
            },
            Some(_) => {
                return Err(bad(
                    path,
                    "auth",
                    "must be {\"basic\": [\"user\", \"secret\"]}, {\"bearer\": \"token\"} or {\"type\": \"oauth2\", ...}",
                ));
            }
        };
        let mut params = Vec::new();
        match obj.get("params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) => {
                for (k, v) in p {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(bad(
                                path,
                                "params",
                                format!("{k:?} must be a string or a number"),
                            ));
                        }
                    };
                    params.push((k.clone(), v));
                }
            }
            Some(_) => return Err(bad(path, "params", "must be an object")),
        }
        let body = match obj.get("body") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(bad(path, "body", "must be a JSON object")),
        };
        let format = |key: &str| -> Result<TimeFormat, String> {
            match string(key)? {
                None => Ok(TimeFormat::Rfc3339),
                Some(s) => TimeFormat::parse(&s).ok_or_else(|| {
                    bad(path, key, format!("is {s:?}: rfc3339, epoch_ms or epoch_s"))
                }),
            }
        };
        let records = string("records")?.unwrap_or_default();
        if !records.is_empty() && !records.starts_with('/') {
            return Err(bad(
                path,
                "records",
                "must be a JSON pointer such as \"/data\" (\"\" = the answer itself)",
            ));
        }
        let pointer = |p: &str, what: &str| -> Result<String, String> {
            if p.starts_with('/') {
                Ok(p.to_string())
            } else {
                Err(bad(
                    path,
                    "next",
                    format!("{what} needs a JSON pointer such as /links/next"),
                ))
            }
        };
        let next = match string("next")?.as_deref() {
            None => Next::None,
            Some("link") => Next::Link,
            Some(s) if s.starts_with("body:") => Next::Body(pointer(&s[5..], "body:")?),
            Some(s) if s.starts_with("token:") => {
                let (p, param) = s[6..].rsplit_once(':').ok_or_else(|| {
                    bad(path, "next", "token: is token:/pointer/to/token:param_name")
                })?;
                if param.is_empty() {
                    return Err(bad(
                        path,
                        "next",
                        "token: needs the parameter's name after the pointer",
                    ));
                }
                Next::Token {
                    pointer: pointer(p, "token:")?,
                    param: param.to_string(),
                }
            }
            Some(s) if s.starts_with("offset:") && s.len() > 7 => Next::Offset(s[7..].to_string()),
            Some(other) => {
                return Err(bad(
                    path,
                    "next",
                    format!(
                        "is {other:?}: link, body:/pointer, token:/pointer:param or offset:param"
                    ),
                ));
            }
        };
        let mapping = match obj.get("mapping") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(
                crate::encode::declared::Mapping::parse(m).map_err(|p| bad(path, "mapping", p))?,
            ),
            Some(_) => return Err(bad(path, "mapping", "must be an object")),
        };
        Ok(Spec {
            mapping,
            url,
            method,
            headers,
            auth,
            params,
            body,
            since_param: required("since_param")?,
            since_format: format("since_format")?,
            records,
            time_field: required("time_field")?,
            time_format: format("time_format")?,
            id_field: string("id_field")?,
            next,
            newest_first: match string("order")?.as_deref() {
                None | Some("oldest_first") => false,
                Some("newest_first") => true,
                Some(other) => {
                    return Err(bad(
                        path,
                        "order",
                        format!("is {other:?}: oldest_first or newest_first"),
                    ));
                }
            },
        })
    }
}

/// One page request: a URL (the next ones as the API named them) and,
/// for `offset:`, how many records were read before it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub url: Url,
    pub offset: u64,
    /// The key of the first record of the page before (an API that
    /// ignores the offset answers the same page again).
    pub before: Option<String>,
    /// `offset:`: the key of the last record of the page before, which the
    /// URL (one record back) must answer first.
    pub overlap: Option<String>,
}

/// The client of a declared API. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    http: Client,
    spec: std::sync::Arc<Spec>,
    /// config.json, for messages.
    config: std::sync::Arc<Path>,
}

impl Rest {
    pub fn new(
        spec: &Spec,
        config: &Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
    ) -> Result<Rest, SourceError> {
        let mut headers = HeaderMap::new();
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SourceError::Setup(format!("headers: {k:?} is not a header name")))?;
            headers.insert(
                name,
                super::http::secret_header(v.expose(), &format!("headers: {k:?}"))?,
            );
        }
        let mut tokens = None;
        if let Some(auth) = &spec.auth {
            let text = match auth {
                Auth::Basic(user, secret) => {
                    let c = super::http::basic_credentials(user, secret);
                    register(&c);
                    format!("Basic {c}")
                }
                Auth::Bearer(token) => format!("Bearer {}", token.expose()),
                Auth::OAuth2(grant) => {
                    tokens = Some(super::oauth::Tokens::new(
                        (**grant).clone(),
                        config,
                        "auth's token_url",
                        format!(
                            "auth's {}",
                            crate::credentials::whence(config, "client_id and client_secret")
                        ),
                        http,
                        proxy,
                    )?);
                    String::new()
                }
            };
            if text.is_empty() {
                // The token goes with each request.
            } else {
                let mut value = HeaderValue::from_str(&text).map_err(|_| {
                    SourceError::Setup("auth holds characters that cannot be sent".into())
                })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
        let http = Client::new(
            spec.url.clone(),
            headers,
            http,
            proxy,
            Origin {
                config,
                field: "url",
                credentials: "headers and auth",
                location: "url",
            },
        )?;
        let http = match tokens {
            Some(t) => http.with_tokens(t),
            None => http,
        };
        Ok(Rest {
            http,
            spec: std::sync::Arc::new(spec.clone()),
            config: config.into(),
        })
    }

    /// The first request, from `since` (inclusive).
    pub fn first(&self, since: DateTime<Utc>) -> Request {
        let mut url = self.spec.url.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.spec.params {
                q.append_pair(k, v);
            }
            q.append_pair(&self.spec.since_param, &self.spec.since_format.write(since));
            if let Next::Offset(param) = &self.spec.next {
                q.append_pair(param, "0");
            }
        }
        Request::Rest(Query {
            url,
            offset: 0,
            before: None,
            overlap: None,
        })
    }

    /// One page, retried as the API allows.
    pub async fn fetch(&self, q: &Query) -> Result<Page, SourceError> {
        self.http.retrying(|| self.fetch_once(q)).await
    }

    /// `check`: the first request of the last hour answers.
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let Request::Rest(q) = self.first(Utc::now() - chrono::Duration::hours(1)) else {
            return Ok(0);
        };
        Ok(self.fetch_once(&q).await?.events.len())
    }

    /// The declared `time_field`, for messages.
    pub fn time_field(&self) -> &str {
        &self.spec.time_field
    }

    /// Whether the declaration says the API answers newest first.
    pub fn newest_first(&self) -> bool {
        self.spec.newest_first
    }

    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        let Request::Rest(q) = self.first(Utc::now()) else {
            return None;
        };
        self.http.server_now(self.request(&q.url)).await
    }

    /// `url` for the debug log: the values of the declared `params` (an
    /// API key may be one) shown as `***`, and registered secrets masked.
    fn shown(&self, url: &Url) -> String {
        let mut shown = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let declared = self.spec.params.iter().any(|(p, _)| *p == k);
                let v = if declared {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        crate::secret::redact(shown.as_str())
    }

    fn request(&self, url: &Url) -> reqwest::RequestBuilder {
        let req = self.http.request(self.spec.method.clone(), url.clone());
        match self
            .spec
            .body
            .as_ref()
            .filter(|_| self.spec.method == Method::POST)
        {
            Some(b) => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string()),
            None => req,
        }
    }

    async fn fetch_once(&self, q: &Query) -> Result<Page, SourceError> {
        debug!("{} {}", self.spec.method, self.shown(&q.url));
        let answer = self.http.send(self.request(&q.url)).await?;
        let link = super::link::next_of(&answer.headers);
        // The server's clock, else ours: records dated more than a day
        // past it were read in the wrong time_format.
        let now = answer
            .headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let body = body::parse(answer.body)?;
        let declared =
            |what: String| SourceError::Setup(format!("{}: {what}", self.config.display()));
        let items = match body.value.pointer(&self.spec.records) {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) => Vec::new(),
            // Nothing there: an empty answer is no page; anything else is
            // a declaration that does not fit the API.
            None if matches!(&body.value, Value::Null)
                || body.value.as_object().is_some_and(|o| o.is_empty()) =>
            {
                Vec::new()
            }
            None => {
                return Err(declared(format!(
                    "the answer has nothing at \"records\" {:?}: check records",
                    self.spec.records
                )));
            }
            Some(_) => {
                return Err(declared(format!(
                    "\"records\" {:?} is not an array in the answer: check records",
                    self.spec.records
                )));
            }
        };
        let mut count = items.len() as u64;
        // Whether the last entry is a record (one that is not is not
        // an event, and cannot be matched by its key).
        let last_is_record = items.last().is_some_and(Value::is_object);
        let (mut events, malformed) = body::events(App::RestLogs, items)?;
        for ev in &mut events {
            let time = record_time(ev, &self.spec.time_field, self.spec.time_format);
            ev.set_time_and_id(time, self.spec.id_field.as_deref());
        }
        // Not one time read: the declaration does not fit the records, and
        // every run would send the whole window again.
        if !events.is_empty() && events.iter().all(|e| e.time.is_none()) {
            return Err(declared(format!(
                "no record of the answer has a time in \"time_field\" {:?} read as {}: check time_field and time_format",
                self.spec.time_field,
                self.spec.time_format.name()
            )));
        }
        if let Some(when) = implausible_times(&events, now) {
            return Err(declared(format!(
                "the records' times in \"time_field\" {:?} read as \"time_format\" {} are {when}: check time_format (rfc3339, epoch_ms or epoch_s; a number of seconds is epoch_s)",
                self.spec.time_field,
                self.spec.time_format.name()
            )));
        }
        // An API that ignores the offset (or a misspelt parameter) answers
        // the first page again: the export ends there.
        let first_key = events.first().map(|e| e.key().into_owned());
        // (Only with ids: records without one may be alike, and two
        // identical events are two.)
        if matches!(self.spec.next, Next::Offset(_))
            && self.spec.id_field.is_some()
            && q.before.is_some()
            && first_key == q.before
        {
            // No progress: the stream ends, and the run fails (records
            // after the first page may be missing).
            return Err(SourceError::NoProgress(format!(
                "{}: the API answered the same page for offset {} as for the one before: it ignores the offset parameter in \"next\" (misspelt?): check next",
                self.config.display(),
                q.offset
            )));
        }
        // One record back: the record that ended the page before must
        // come first (see the module's comment). Records added at the
        // start of a list sorted newest first push it further: those
        // before it were read already, and are dropped with it.
        if let (Some(expected), Next::Offset(param)) = (&q.overlap, &self.spec.next) {
            let Some(at) = events.iter().position(|e| e.key() == expected.as_str()) else {
                return Err(declared(format!(
                    "asked with \"{param}\" {} (one record back), the API answered {} instead of the last record of the page before: it does not read \"{param}\" as a number of records (a page number?): check next",
                    q.offset - 1,
                    if events.is_empty() {
                        "no record"
                    } else {
                        "other records"
                    }
                )));
            };
            events.drain(..=at);
            // The offset counts places in the list: one was asked twice.
            count -= 1;
        }
        let text_at = |p: &str| match body.value.pointer(p) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let overlap = match &self.spec.next {
            Next::Offset(_) if count >= 2 && last_is_record => {
                events.last().map(|e| e.key().into_owned())
            }
            _ => None,
        };
        let next = match &self.spec.next {
            Next::None => None,
            Next::Link => match link {
                Some(raw) => Some(self.http.pin(&q.url, &raw, "the Link header's next URL")?),
                None => None,
            },
            Next::Body(p) => match text_at(p) {
                Some(raw) => Some(self.http.pin(&q.url, &raw, "the answer's next URL")?),
                None => None,
            },
            Next::Token { pointer, param } => {
                text_at(pointer).map(|token| with_param(&q.url, param, &token))
            }
            Next::Offset(param) => (count > 0).then(|| {
                // One record back, when that is another request than this.
                let from = if overlap.is_some() {
                    q.offset + count - 1
                } else {
                    q.offset + count
                };
                with_param(&q.url, param, &from.to_string())
            }),
        };
        Ok(Page {
            next: next.map(|url| {
                Request::Rest(Query {
                    url,
                    offset: q.offset + count,
                    before: first_key.clone(),
                    overlap: overlap.clone(),
                })
            }),
            url: None,
            position: None,
            events,
            malformed,
            lossy: body.lossy,
            repaired: body.repaired,
        })
    }
}

/// Why a page's times cannot be right, when every record of it that has a
/// time is dated before 2000 or more than a day after `now`: one record
/// so dated may be the producer's error (the run delivers it), a whole
/// page is the declaration's.
fn implausible_times(events: &[Event], now: DateTime<Utc>) -> Option<String> {
    let earliest = DateTime::from_timestamp(946_684_800, 0)?; // 2000-01-01
    let latest = now + chrono::Duration::days(1);
    let times: Vec<DateTime<Utc>> = events.iter().filter_map(|e| e.time).collect();
    let first = *times.first()?;
    if times.iter().all(|t| *t < earliest) {
        Some(format!(
            "before 2000 ({})",
            first.to_rfc3339_opts(SecondsFormat::Secs, true)
        ))
    } else if times.iter().all(|t| *t > latest) {
        Some(format!(
            "more than a day ahead of now (year {})",
            chrono::Datelike::year(&first)
        ))
    } else {
        None
    }
}

/// `url` with `param` set to `value` (replaced if present).
fn with_param(url: &Url, param: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(param, value);
    out
}

/// A record's time from `field`: a top-level field, or a JSON pointer
/// (`/meta/created`) into one.
fn record_time(ev: &Event, field: &str, format: TimeFormat) -> Option<DateTime<Utc>> {
    match field.strip_prefix('/') {
        None => ev.get(field).and_then(|v| format.read(v)),
        Some(path) => {
            let (top, rest) = path.split_once('/').unwrap_or((path, ""));
            let top = top.replace("~1", "/").replace("~0", "~");
            match ev.get(&top)? {
                Val::Nested(json) if !rest.is_empty() => {
                    let v: Value = serde_json::from_str(json).ok()?;
                    match v.pointer(&format!("/{rest}"))? {
                        Value::String(s) => format.read(Val::Str(s)),
                        Value::Number(n) => format.read(Val::Num(&n.to_string())),
                        _ => None,
                    }
                }
                v if rest.is_empty() => format.read(v),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<Spec, String> {
        Spec::parse(Path::new("config.json"), v.as_object().unwrap())
    }

    fn okta() -> Value {
        json!({"source": "rest", "url": "https://acme.okta.com/api/v1/logs",
               "headers": {"Authorization": "SSWS 00abc-secret-token"},
               "params": {"limit": "1000"}, "since_param": "since",
               "records": "", "time_field": "published", "id_field": "uuid", "next": "link"})
    }

    #[test]
    fn a_declaration_is_checked_key_by_key() {
        let s = spec(okta()).unwrap();
        assert_eq!(s.next, Next::Link);
        assert_eq!(s.method, Method::GET);
        assert!(!format!("{s:?}").contains("00abc-secret-token"));
        for (change, msg) in [
            (json!({"url": null}), "field \"url\" is missing"),
            (json!({"url": "ftp://x/"}), "field \"url\" must be an http"),
            (
                json!({"method": "PUT"}),
                "field \"method\" is \"PUT\": GET or POST",
            ),
            (
                json!({"next": "pages"}),
                "field \"next\" is \"pages\": link, body:/pointer",
            ),
            (
                json!({"next": "token:/t"}),
                "token:/pointer/to/token:param_name",
            ),
            (json!({"next": "body:next"}), "needs a JSON pointer"),
            (
                json!({"records": "data"}),
                "field \"records\" must be a JSON pointer",
            ),
            (
                json!({"time_format": "iso"}),
                "field \"time_format\" is \"iso\": rfc3339, epoch_ms or epoch_s",
            ),
            (json!({"auth": {"basic": "x"}}), "field \"auth\" must be"),
            (json!({"headers": {"X": 5}}), "\"X\" must be a string"),
            (
                json!({"since_param": null}),
                "field \"since_param\" is missing",
            ),
            (
                json!({"time_field": null}),
                "field \"time_field\" is missing",
            ),
        ] {
            let mut v = okta();
            for (k, val) in change.as_object().unwrap() {
                if val.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = val.clone();
                }
            }
            let e = spec(v).unwrap_err();
            assert!(e.starts_with("config.json: "), "{e}");
            assert!(e.contains(msg), "{e} lacks {msg}");
        }
        let s = spec(
            json!({"url": "https://x/", "since_param": "from", "time_field": "t",
            "next": "token:/meta/next:page_token", "auth": {"basic": ["u", "p4ss"]}}),
        )
        .unwrap();
        assert_eq!(
            s.next,
            Next::Token {
                pointer: "/meta/next".into(),
                param: "page_token".into()
            }
        );
        assert!(matches!(s.auth, Some(Auth::Basic(ref u, _)) if u == "u"));
        assert!(!format!("{s:?}").contains("p4ss"));
    }

    #[test]
    fn times_in_each_format() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(TimeFormat::Rfc3339.write(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(TimeFormat::EpochMs.write(t), "1767323045678");
        assert_eq!(TimeFormat::EpochS.write(t), "1767323045");
        assert_eq!(TimeFormat::EpochMs.read(Val::Num("1767323045678")), Some(t));
        assert_eq!(TimeFormat::EpochS.read(Val::Str("1767323045.678")), Some(t));
        assert_eq!(
            TimeFormat::Rfc3339.read(Val::Str("2026-01-02T03:04:05.678Z")),
            Some(t)
        );
        assert_eq!(TimeFormat::EpochS.read(Val::Str("soon")), None);
    }

    #[test]
    fn a_nested_time_is_read_through_a_pointer() {
        let ev = Event::from_log(
            App::RestLogs,
            json!({"meta": {"created": 1767323045678i64}, "t": "2026-01-02T03:04:05Z"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            record_time(&ev, "/meta/created", TimeFormat::EpochMs)
                .unwrap()
                .timestamp(),
            1767323045
        );
        assert_eq!(
            record_time(&ev, "t", TimeFormat::Rfc3339)
                .unwrap()
                .timestamp(),
            1767323045
        );
        assert_eq!(record_time(&ev, "/meta/missing", TimeFormat::EpochMs), None);
    }

    #[test]
    fn a_page_dated_before_2000_or_a_day_ahead_is_implausible() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let page = |times: &[i64]| -> Vec<Event> {
            times
                .iter()
                .map(|t| {
                    let mut ev = Event::from_log(App::RestLogs, Default::default());
                    ev.set_time_and_id(DateTime::from_timestamp(*t, 0), None);
                    ev
                })
                .collect()
        };
        let s = now.timestamp();
        // Seconds read as milliseconds: January 1970.
        let e = implausible_times(&page(&[s / 1000, s / 1000 + 1]), now).unwrap();
        assert!(e.starts_with("before 2000 (1970-01-"), "{e}");
        // Milliseconds read as seconds: far ahead.
        assert!(implausible_times(&page(&[s * 1000]), now).is_some());
        // Right, or one record wrong among right ones: not the declaration's.
        assert_eq!(implausible_times(&page(&[s - 60, s]), now), None);
        assert_eq!(implausible_times(&page(&[s - 60, 5]), now), None);
        assert_eq!(implausible_times(&page(&[s + 3600]), now), None);
        assert_eq!(implausible_times(&[], now), None);
    }

    #[test]
    fn parameters_are_replaced() {
        let u = Url::parse("https://x/e?since=1&offset=0&a=b").unwrap();
        assert_eq!(
            with_param(&u, "offset", "200").as_str(),
            "https://x/e?since=1&a=b&offset=200"
        );
    }
}
