//! The CloudSOC log export API (see `cloudsoc-api.md`): its keys in
//! config.json (as the console downloads them), Basic auth, the
//! `X-Elastica-Dbname-Resolved` header, pages of up to 1000 logs followed
//! through `next_url`.

use super::http::{Client, HttpOptions, Origin, Proxy, basic_credentials, secret_header};
use super::keys::{KeyError, Keys, normalize_server};
use super::{Page, SourceError};
use crate::event::json::{Bail, Reader};
use crate::event::{App, Event, api_timestamp};
use crate::secret::{Secret, redact};
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;
use tracing::debug;

/// Logs per page: the API's maximum.
pub const PAGE_LIMIT: usize = 1000;

/// The most logs one page may hold (the API sends at most
/// [`PAGE_LIMIT`]): more is an attack or a broken API, and each log costs
/// memory.
pub const MAX_PAGE_LOGS: usize = 10 * PAGE_LIMIT;

/// How far back Investigate can be queried.
pub const MAX_LOOKBACK: chrono::Duration = chrono::Duration::days(180);

/// CloudSOC's keys of config.json.
#[derive(Clone, Debug)]
pub struct Config {
    /// The API's base URL, always ending in `/`.
    pub api_server: String,
    pub key_id: String,
    pub key_secret: Secret,
    pub tenant: String,
}

impl Config {
    pub const KEYS: [&'static str; 4] = ["api_server", "key_id", "key_secret", "tenant"];

    /// Reads and checks CloudSOC's keys; registers the Basic credentials
    /// built from them as a secret (an answer may echo the header).
    pub fn parse(keys: &Keys) -> Result<Config, KeyError> {
        let key_secret = Secret::new(keys.required_str("key_secret")?);
        let key_id = keys.required_str("key_id")?;
        let tenant = keys.required_str("tenant")?;
        if tenant.contains(['/', '?', '#']) || tenant.trim() != tenant {
            return Err(keys.invalid(
                "tenant",
                "must be a bare name (no '/', '?', '#' or surrounding spaces)",
            ));
        }
        let api_server =
            normalize_server(keys.path, "api_server", &keys.required_str("api_server")?)?;
        crate::secret::register(&basic_credentials(&key_id, &key_secret));
        Ok(Config {
            api_server,
            key_id,
            key_secret,
            tenant,
        })
    }
}

/// The CloudSOC client. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct CloudSoc {
    http: Client,
    /// `{api_server}{tenant}/`.
    base: Url,
}

impl CloudSoc {
    /// The client for `config`, read from the file `path`.
    pub fn new(
        config: &Config,
        path: &std::path::Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
    ) -> Result<CloudSoc, SourceError> {
        let api = Url::parse(&config.api_server)
            .map_err(|e| SourceError::Setup(format!("api_server: {e}")))?;
        let base = api
            .join(&format!("{}/", config.tenant))
            .map_err(|e| SourceError::Setup(format!("tenant: {e}")))?;

        let auth = secret_header(
            &format!(
                "Basic {}",
                basic_credentials(&config.key_id, &config.key_secret)
            ),
            "key_id or key_secret",
        )?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            "X-Elastica-Dbname-Resolved",
            HeaderValue::from_static("True"),
        );
        let http = Client::new(
            base.clone(),
            headers,
            http,
            proxy,
            Origin {
                config: path,
                field: "api_server",
                credentials: "key_id, key_secret and tenant",
                location: "api_server and tenant",
            },
        )?;
        Ok(CloudSoc { http, base })
    }

    /// The first page's URL for `app`, from `since` (inclusive).
    pub fn first_url(
        &self,
        app: App,
        since: DateTime<Utc>,
        filters: &[(&'static str, String)],
    ) -> Url {
        let mut url = self
            .base
            .join("api/admin/v1/logs/get/")
            .unwrap_or_else(|_| self.base.clone());
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("app", app.as_str());
            q.append_pair(
                "subtype",
                match app {
                    App::Detect => "incidents",
                    _ => "all",
                },
            );
            q.append_pair("limit", &PAGE_LIMIT.to_string());
            q.append_pair("created_timestamp", &api_timestamp(since));
            for (k, v) in filters {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// The connectivity check endpoint.
    pub fn datasources_url(&self) -> Url {
        self.base
            .join("audit/v2/datasources/")
            .unwrap_or_else(|_| self.base.clone())
    }

    /// Fetches one page, retrying what may succeed on a retry.
    pub async fn fetch(&self, app: App, url: &Url) -> Result<Page, SourceError> {
        self.http.retrying(|| self.fetch_once(app, url)).await
    }

    /// `check`: the data sources endpoint answers 2xx to our credentials.
    pub async fn probe_datasources(&self) -> Result<(), SourceError> {
        let req = self.http.request(Method::GET, self.datasources_url());
        self.http.send(req).await.map(|_| ())
    }

    /// `check`: one logs request with `limit=1` for `app` (the last hour);
    /// returns how many logs came back (0 or 1).
    pub async fn probe_logs(&self, app: App) -> Result<usize, SourceError> {
        let mut url = self.first_url(app, Utc::now() - chrono::Duration::hours(1), &[]);
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "limit" {
                    "1".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        Ok(self.fetch_once(app, &url).await?.events.len())
    }

    /// The API server's clock, from the `Date` header of a small request
    /// (the data sources list); `None` when the server cannot say. Times
    /// that decide what to export are taken from it, so that a local clock
    /// that is far off changes nothing.
    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        let req = self.http.request(Method::GET, self.datasources_url());
        self.http.server_now(req).await
    }

    async fn fetch_once(&self, app: App, url: &Url) -> Result<Page, SourceError> {
        debug!("GET {url}");
        let answer = self
            .http
            .send(self.http.request(Method::GET, url.clone()))
            .await?;
        let page = parse_page(app, answer.body)?;
        let next = match page.next_raw {
            None => None,
            Some(raw) => Some(super::Request::Get(self.http.pin(
                url,
                &raw,
                "the API's next_url",
            )?)),
        };
        Ok(Page {
            url: None,
            position: None,
            events: page.events,
            next,
            malformed: page.malformed,
            lossy: page.lossy,
            repaired: page.repaired,
        })
    }
}

/// A page body as parsed, before its `next_url` is checked.
pub struct RawPage {
    pub events: Vec<Event>,
    pub next_raw: Option<String>,
    /// Entries of `logs` that were not objects (skipped).
    pub malformed: u64,
    /// Whether bytes that are not UTF-8 were replaced.
    pub lossy: bool,
    /// Values JSON cannot carry that were replaced.
    pub repaired: u64,
}

/// Parses a page body. `app` is the one the request asked for. (Public
/// for the scale benchmark, `benches/scale.rs`.)
///
/// The page is read by the lean reader ([`crate::event::json`]); whatever
/// it leaves (a syntax error, a value JSON cannot carry, a page over the
/// cap) is read again by serde_json, for its error or the repair.
pub fn parse_page(app: App, body: impl Into<Vec<u8>>) -> Result<RawPage, SourceError> {
    let (text, lossy) = match String::from_utf8(body.into()) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    let text = match fast_page(app, text) {
        Ok(fields) => return finish_page(fields, lossy, 0),
        Err(text) => text,
    };
    let (fields, repaired) = match read_fields(app, &text) {
        Ok(f) => (f, 0),
        Err(e) if e.is_syntax() || e.is_data() => {
            // One value JSON cannot carry must not block the export for
            // ever: it is replaced (and counted), the rest of the page is
            // read.
            match super::lenient::repair(text.as_bytes()) {
                Some(r) => match read_fields(app, &String::from_utf8_lossy(&r.bytes)) {
                    Ok(f) => (f, r.strings + r.numbers),
                    Err(_) => return Err(page_error(&e)),
                },
                None => return Err(page_error(&e)),
            }
        }
        Err(e) => return Err(page_error(&e)),
    };
    finish_page(fields, lossy, repaired)
}

/// The page's members checked: its status, its next URL, its logs.
fn finish_page(fields: PageFields, lossy: bool, repaired: u64) -> Result<RawPage, SourceError> {
    if let Some(over) = fields.over_cap {
        return Err(SourceError::TooLarge(over));
    }
    match &fields.status {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.eq_ignore_ascii_case("success") => {}
        Some(other) => {
            let msg = fields
                .message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(SourceError::BadPage(format!(
                "status {other} {}",
                redact(&msg)
            )));
        }
    }
    let next_raw = match fields.next_url {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(SourceError::BadPage("next_url is not a string".into())),
    };
    if fields.logs_not_array {
        return Err(SourceError::BadPage("\"logs\" is not an array".into()));
    }
    Ok(RawPage {
        events: fields.events,
        next_raw,
        malformed: fields.malformed,
        lossy,
        repaired,
    })
}

/// The page read by the lean reader, or its text back for serde_json.
fn fast_page(app: App, text: String) -> Result<PageFields, String> {
    let mut r = Reader::new(text)?;
    let mut out = PageFields::default();
    match read_top(app, &mut r, &mut out) {
        Ok(()) => {
            out.events = r.finish();
            Ok(out)
        }
        Err(Bail) => Err(r.into_text()),
    }
}

fn read_top(app: App, r: &mut Reader, out: &mut PageFields) -> Result<(), Bail> {
    r.eat(b'{')?;
    let mut seen = 0u8;
    let mut first = true;
    while let Some(key) = r.next_key(first)? {
        first = false;
        let slot = match key {
            "status" => 0,
            "message" => 1,
            "next_url" => 2,
            "logs" => 3,
            _ => {
                r.raw_value()?;
                continue;
            }
        };
        // A repeated member is serde_json's to read.
        if seen & (1 << slot) != 0 {
            return Err(Bail);
        }
        seen |= 1 << slot;
        if slot < 3 {
            let v: Value = serde_json::from_str(r.raw_value()?).map_err(|_| Bail)?;
            *[&mut out.status, &mut out.message, &mut out.next_url][slot] = Some(v);
            continue;
        }
        match r.peek() {
            Some(b'[') => {
                r.eat(b'[')?;
                let mut elements = 0usize;
                let mut first = true;
                while r.next_element(first)? {
                    first = false;
                    elements += 1;
                    if elements > MAX_PAGE_LOGS {
                        return Err(Bail); // serde_json's path says why
                    }
                    if r.peek() == Some(b'{') {
                        r.log(app)?;
                    } else {
                        r.raw_value()?;
                        out.malformed += 1;
                    }
                }
            }
            Some(b'n') => {
                if r.raw_value()? != "null" {
                    return Err(Bail);
                }
            }
            _ => {
                r.raw_value()?;
                out.logs_not_array = true;
            }
        }
    }
    if r.at_end() { Ok(()) } else { Err(Bail) }
}

fn page_error(e: &serde_json::Error) -> SourceError {
    if e.is_data() && e.to_string().contains("expected a JSON object") {
        return SourceError::BadPage("not a JSON object".into());
    }
    SourceError::BadPage(format!("not valid JSON ({e})"))
}

/// The parts of a page the agent reads. Logs are turned into events as
/// they are read, counted against [`MAX_PAGE_LOGS`]; other keys are
/// skipped without being kept.
#[derive(Default)]
struct PageFields {
    status: Option<Value>,
    message: Option<Value>,
    next_url: Option<Value>,
    events: Vec<Event>,
    malformed: u64,
    logs_not_array: bool,
    /// Why the page is over a limit.
    over_cap: Option<String>,
}

/// Reads from text already known to be UTF-8 (so strings are not checked
/// again).
fn read_fields(app: App, text: &str) -> Result<PageFields, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = PageSeed(app).deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

struct PageSeed(App);

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed {
    type Value = PageFields;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<PageFields, D::Error> {
        // Anything but an object is an "invalid type" error.
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed {
    type Value = PageFields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageFields, A::Error> {
        let mut out = PageFields::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "status" => out.status = Some(map.next_value()?),
                "message" => out.message = Some(map.next_value()?),
                "next_url" => out.next_url = Some(map.next_value()?),
                "logs" => map.next_value_seed(LogsSeed {
                    app: self.0,
                    out: &mut out,
                })?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// Visitor methods for values that are not an array of logs.
macro_rules! not_an_array {
    ($($method:ident: $t:ty),*) => {
        $(fn $method<E: serde::de::Error>(self, _: $t) -> Result<(), E> {
            self.out.logs_not_array = true;
            Ok(())
        })*
    };
}

struct LogsSeed<'a> {
    app: App,
    out: &'a mut PageFields,
}

impl<'de> serde::de::DeserializeSeed<'de> for LogsSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LogsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of logs")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        let mut seen = 0usize;
        while let Some(v) = seq.next_element::<Value>()? {
            seen += 1;
            if seen > MAX_PAGE_LOGS {
                out.over_cap = Some(format!("more than {MAX_PAGE_LOGS} logs in one page"));
                out.events = Vec::new();
                // The rest is skipped, not kept.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            match v {
                Value::Object(fields) => out.events.push(Event::from_log(self.app, fields)),
                _ => out.malformed += 1,
            }
        }
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        self.out.logs_not_array = true;
        Ok(())
    }
    // Any other value is not an array: noted, and reported after `status`.
    not_an_array!(visit_str: &str, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_bool: bool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_parsing() {
        let p = parse_page(
            App::Investigate,
            br#"{"status":"success","logs":[{"_id":"a"},7,{"_id":"b"}],"next_url":null}"#,
        )
        .unwrap();
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.malformed, 1);
        assert!(p.next_raw.is_none());
        let p = parse_page(
            App::Detect,
            b"{\"logs\":[{\"m\":\"caf\xe9\"}],\"next_url\":\"x?from=1\"}",
        )
        .unwrap();
        assert!(p.lossy);
        assert_eq!(p.next_raw.as_deref(), Some("x?from=1"));
        for (body, msg) in [
            (&b"{\"logs\":"[..], "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (
                b"{\"status\":\"error\",\"message\":\"boom\"}",
                "status \"error\"",
            ),
            (b"{\"logs\":{}}", "\"logs\" is not an array"),
            (b"{\"logs\":[],\"next_url\":5}", "next_url is not a string"),
        ] {
            let e = parse_page(App::Investigate, body)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn a_value_json_cannot_carry_does_not_block_the_page() {
        let p = parse_page(
            App::Investigate,
            br#"{"logs":[{"_id":"a","m":"\ud800"},{"_id":"b","n":1e400},{"_id":"c"}]}"#,
        )
        .unwrap();
        assert_eq!(p.events.len(), 3);
        assert_eq!(p.repaired, 2);
        use crate::event::Val;
        assert_eq!(p.events[0].get("m"), Some(Val::Str("\u{fffd}")));
        assert_eq!(p.events[1].get("n"), Some(Val::Str("1e400")));
    }

    #[test]
    fn a_page_of_too_many_logs_is_refused_without_keeping_them() {
        let mut body = b"{\"logs\":[".to_vec();
        for i in 0..MAX_PAGE_LOGS + 1 {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(b"{}");
        }
        body.extend_from_slice(b"]}");
        let e = parse_page(App::Investigate, body).err().unwrap();
        assert!(matches!(e, SourceError::TooLarge(_)), "{e}");
        assert!(!e.retryable());
    }

    fn client(server: &str, insecure: bool) -> Result<CloudSoc, SourceError> {
        let path = std::path::Path::new("config.json");
        let obj: serde_json::Map<String, Value> = serde_json::from_str(&format!(
            r#"{{"api_server":"{server}","key_id":"k","key_secret":"abc123","tenant":"acme"}}"#
        ))
        .unwrap();
        let cfg = Config::parse(&Keys::new(path, &obj)).unwrap();
        CloudSoc::new(
            &cfg,
            path,
            &HttpOptions {
                timeout: std::time::Duration::from_secs(5),
                retries: 0,
                retry_delay: std::time::Duration::from_millis(1),
                allow_insecure_http: insecure,
                max_body: 1 << 20,
            },
            None,
        )
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(client("http://127.0.0.1:9/", false).is_ok());
        assert!(client("http://localhost:9/", false).is_ok());
        assert!(client("http://[::1]:9/", false).is_ok());
        let e = client("http://api.example.com/", false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--allow-insecure-http"), "{e}");
        assert!(client("http://api.example.com/", true).is_ok());
    }

    #[test]
    fn urls_and_next_url_origin() {
        let c = client("https://api.example.com/base/", false).unwrap();
        let t = crate::event::parse_timestamp("2024-01-02T03:04:05").unwrap();
        let u = c.first_url(App::Detect, t, &[("service", "Yahoo Mail".into())]);
        assert_eq!(
            u.as_str(),
            "https://api.example.com/base/acme/api/admin/v1/logs/get/?app=Detect&subtype=incidents&limit=1000&created_timestamp=2024-01-02T03%3A04%3A05&service=Yahoo+Mail"
        );
        let pin = |raw| c.http.pin(&u, raw, "the API's next_url");
        assert!(pin("https://api.example.com/base/acme/api/admin/v1/logs/get/?from=1000").is_ok());
        assert!(pin("?from=1000").is_ok());
        let e = pin("https://evil.example.net/steal").unwrap_err();
        assert!(matches!(e, SourceError::ForeignNextUrl { .. }));
        assert!(pin("http://api.example.com/base/x").is_err());
        assert_eq!(
            c.datasources_url().as_str(),
            "https://api.example.com/base/acme/audit/v2/datasources/"
        );
    }

    /// The scale check of `benches/scale.rs` (100 000 logs, release
    /// build) on 5 pages, so that `cargo test` runs it too.
    #[test]
    fn generated_logs_parse_and_encode_one_frame_each() {
        use crate::encode::{Encoder, Format, Stamp};
        use crate::simulate::data::{Schedule, investigate, mix};
        const PAGES: u64 = 5;
        let schedule = Schedule::new(3, PAGES * 1000, 40, None, 1_790_000_000);
        let encoders: Vec<Encoder> = Format::ALL
            .into_iter()
            .map(|(_, format)| Encoder::for_tests(format, Some(2048)))
            .collect();
        let stamp = Stamp::now();
        let mut frames = 0u64;
        let mut out = Vec::with_capacity(4096);
        for p in 0..PAGES {
            let logs: Vec<Value> = (p * 1000..(p + 1) * 1000)
                .map(|i| Value::Object(investigate(3, &schedule, i)))
                .collect();
            let body =
                serde_json::to_vec(&serde_json::json!({"logs": logs, "next_url": null})).unwrap();
            // Corrupted copies: an error or a page, never a panic.
            let mut bad = body.clone();
            for k in 0..8 {
                let at = (mix(p * 31 + k) % bad.len() as u64) as usize;
                bad[at] = (mix(p * 77 + k) & 0xff) as u8;
            }
            let _ = parse_page(App::Investigate, bad);
            let _ = parse_page(App::Investigate, &body[..body.len() / 2]);

            let page = parse_page(App::Investigate, body.clone()).unwrap();
            assert_eq!(page.events.len(), 1000);
            for ev in &page.events {
                for enc in &encoders {
                    out.clear();
                    enc.encode(ev, &stamp, &mut out);
                    assert_eq!(out.last(), Some(&b'\n'));
                    let body = &out[..out.len() - 1];
                    assert!(
                        !body.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0),
                        "{:?}",
                        enc.format
                    );
                    assert!(body.len() <= 2048);
                    frames += 1;
                }
            }
        }
        assert_eq!(frames, PAGES * 6000);
    }
}
