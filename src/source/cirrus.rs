//! Cirrus Identity's Log API (the "SIEM API", seed 003): `POST
//! <apiurl>?orgUrl=..&limit=..&since=..` with HTTP Basic (the API key and
//! secret) and the body `{}`, answered with a JSON array of entries.
//! `orgUrl` is sent only when configured: a key that serves one
//! organization needs none (the vendor's client sends it only when given).
//! Paging is by position: the `Link` header's `rel="next"` URL (with or
//! without RFC 8288's angle brackets, as the vendor's example client reads
//! it; see [`super::link`]) is the position after the last entry, on any
//! path of the API's origin (a gateway may name its own). The run follows
//! it while answers are full, and saves it, once the page is delivered, to
//! resume from.
//!
//! Two answers name no position past the page: a next URL that is the
//! page's own, and none at all. The stream ends there, and the cursor stays
//! inside the page (its URL and the entries delivered of it), so that the
//! next run asks that page again and delivers only what was added to it.

use super::http::{Client, HttpOptions, Origin, Proxy, basic_credentials, json_api_headers};
use super::keys::{KeyError, Keys, normalize_url};
use super::{Page, Request, SourceError, body};
use crate::event::App;
use crate::secret::Secret;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, Url};
use serde_json::Value;
use tracing::{debug, warn};

/// Cirrus Identity's production endpoint (its example client's default).
pub const CIRRUS_API: &str = "https://apigw.cirrusidentity.com/logs/v1";

/// Cirrus Identity's keys of config.json: the API key and secret (or
/// `--apikey`, `--apisecret`, `API_KEY`, `API_SECRET`), the endpoint
/// (`"apiurl"`, default [`CIRRUS_API`]) and the organisation's URL
/// (`orgurl`, `--orgurl`; optional: a key that serves one organization
/// needs none).
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub apiurl: String,
    pub apikey: Option<String>,
    pub apisecret: Option<Secret>,
    pub orgurl: Option<String>,
}

impl Config {
    pub const KEYS: [&'static str; 4] = ["apikey", "apisecret", "apiurl", "orgurl"];

    pub fn parse(keys: &Keys) -> Result<Config, KeyError> {
        let apiurl = match keys.get("apiurl") {
            None => CIRRUS_API.to_string(),
            Some(_) => normalize_url(keys.path, "apiurl", &keys.required_str("apiurl")?)?,
        };
        Ok(Config {
            apiurl,
            apikey: keys.optional_nonblank("apikey")?,
            apisecret: keys.optional_nonblank("apisecret")?.map(Secret::new),
            orgurl: keys.optional_nonblank("orgurl")?,
        })
    }
}

/// Entries per request: the API's maximum and the client's default.
pub const LIMIT_MAX: u32 = 1000;

/// Where a first run starts: the last seven days (the client's).
pub const FIRST_RUN: chrono::Duration = chrono::Duration::days(7);

/// How long the API keeps entries.
pub const KEPT: chrono::Duration = chrono::Duration::days(90);

/// The query keys the API and the example client know (`--query`).
pub const QUERY_KEYS: [&str; 7] = [
    "tenant",
    "service",
    "metrictype",
    "metricsubtype",
    "clientip",
    "correlationid",
    "user",
];

/// The run's Cirrus options (`--limit`, `--until`, `--query`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub limit: u32,
    pub until: Option<DateTime<Utc>>,
    /// `key=value` terms, sent to the server (and applied again locally by
    /// the filter).
    pub query: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            limit: LIMIT_MAX,
            until: None,
            query: Vec::new(),
        }
    }
}

/// The Cirrus Identity client. Cheap to clone.
#[derive(Clone)]
pub struct Cirrus {
    http: Client,
    endpoint: Url,
    /// `orgUrl`, when configured.
    orgurl: Option<String>,
    opts: Options,
}

impl Cirrus {
    /// The client for `config`, read from the file `path` (which may not
    /// exist: a run on flags alone).
    pub fn new(
        config: &Config,
        path: &std::path::Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
        opts: &Options,
    ) -> Result<Cirrus, SourceError> {
        let missing = |what: &str, flag: &str| {
            SourceError::Setup(if path.exists() {
                format!(
                    "{}: field \"{what}\" is missing (or give {flag})",
                    path.display()
                )
            } else {
                // A run on flags alone (see config::Config::load_as).
                format!(
                    "no {what}: give {flag} (there is no config file {})",
                    path.display()
                )
            })
        };
        let key = config
            .apikey
            .as_deref()
            .ok_or_else(|| missing("apikey", "--apikey, or set API_KEY"))?;
        let secret = config
            .apisecret
            .as_ref()
            .ok_or_else(|| missing("apisecret", "--apisecret, or set API_SECRET"))?;
        let orgurl = config.orgurl.clone().filter(|o| !o.trim().is_empty());
        let endpoint = Url::parse(&config.apiurl).map_err(|e| {
            SourceError::Setup(format!(
                "{}: field \"apiurl\" is not a URL ({e})",
                path.display()
            ))
        })?;
        let credentials = basic_credentials(key, secret);
        crate::secret::register(&credentials);
        let headers = json_api_headers(&format!("Basic {credentials}"), "apikey or apisecret")?;
        let http = Client::new(
            endpoint.clone(),
            headers,
            http,
            proxy,
            Origin {
                config: path,
                field: "apiurl",
                credentials: "apikey and apisecret",
                location: "apiurl and orgurl",
            },
        )?;
        Ok(Cirrus {
            http,
            endpoint,
            orgurl,
            opts: opts.clone(),
        })
    }

    /// The first request: the saved position, else from `since`. The
    /// saved position keeps its place (`after`, ...) but takes this run's
    /// `orgurl`, `--limit`, `--until` and `--query`: the URL the API gave
    /// carries those of the run that saved it. Its path may be another
    /// than apiurl's (the API names its next pages where it likes, a
    /// gateway's `/gw/logs/v1` for one): only its origin must be apiurl's,
    /// since the credentials go with it.
    pub fn first(
        &self,
        since: DateTime<Utc>,
        resume: Option<&str>,
    ) -> Result<Request, SourceError> {
        if let Some(position) = resume {
            let saved = self
                .http
                .pin(&self.endpoint, position, "the saved position")?;
            return Ok(Request::Get(self.with_run_params(&saved)));
        }
        Ok(Request::Get(self.url(since, self.opts.limit)))
    }

    /// `url` with this run's parameters in place of those it holds.
    fn with_run_params(&self, url: &Url) -> Url {
        let own = |k: &str| matches!(k, "orgUrl" | "limit" | "until") || QUERY_KEYS.contains(&k);
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !own(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut out = url.clone();
        {
            let mut q = out.query_pairs_mut();
            q.clear();
            if let Some(org) = &self.orgurl {
                q.append_pair("orgUrl", org);
            }
            q.append_pair("limit", &self.opts.limit.to_string());
            if let Some(until) = self.opts.until {
                q.append_pair("until", &rfc3339(until));
            }
            for (k, v) in &self.opts.query {
                q.append_pair(k, v);
            }
            q.extend_pairs(kept);
        }
        out
    }

    fn url(&self, since: DateTime<Utc>, limit: u32) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(org) = &self.orgurl {
                q.append_pair("orgUrl", org);
            }
            q.append_pair("limit", &limit.to_string());
            q.append_pair("since", &rfc3339(since));
            if let Some(until) = self.opts.until {
                q.append_pair("until", &rfc3339(until));
            }
            for (k, v) in &self.opts.query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// One page, retried as the API allows.
    pub async fn fetch(&self, url: &Url) -> Result<Page, SourceError> {
        self.http.retrying(|| self.fetch_once(url)).await
    }

    /// `check`: one request for one entry of the last hour.
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let url = self.url(Utc::now() - chrono::Duration::hours(1), 1);
        Ok(self.fetch_once(&url).await?.events.len())
    }

    /// The server's clock (the `Date` of a one-entry request).
    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        let url = self.url(Utc::now(), 1);
        self.http
            .server_now(self.http.request(Method::POST, url).body("{}"))
            .await
    }

    async fn fetch_once(&self, url: &Url) -> Result<Page, SourceError> {
        debug!("POST {}", crate::secret::redact(url.as_str()));
        let answer = self
            .http
            .send(self.http.request(Method::POST, url.clone()).body("{}"))
            .await?;
        let link = super::link::next_of(&answer.headers);
        let position = match link.as_deref() {
            Some(raw) => Some(self.http.pin(url, raw, "the Link header's next URL")?),
            None => None,
        };
        // The page's own URL as the next: no position past it. Saved, every
        // later run would ask this page again from its start. (Compared
        // with this run's parameters on both: a next URL may leave out
        // those the request carried.)
        let position = position.filter(|next| {
            let own = same_request(&self.with_run_params(next), &self.with_run_params(url));
            if own {
                debug!("the Link header's next URL is this page's own: the stream ends here");
            }
            !own
        });
        let body = body::parse(answer.body)?;
        let items = match body.value {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => return Err(SourceError::BadPage("not a JSON array of entries".into())),
        };
        let limit = limit_of(url).unwrap_or(self.opts.limit);
        let full = items.len() as u64 >= u64::from(limit);
        if full && position.is_none() {
            warn!(
                "cirrus: a full page ({} entries, the limit asked) named no next page ({}): logs after it may be missing; the next run asks this page again",
                items.len(),
                if link.is_none() {
                    "no Link header's next URL"
                } else {
                    "its Link header's next URL is its own"
                }
            );
        }
        let (events, malformed) = body::events(App::CirrusLogs, items)?;
        Ok(Page {
            // The run ends at an answer with fewer entries than asked for.
            next: position.clone().filter(|_| full).map(Request::Get),
            position: position.map(String::from),
            url: Some(url.as_str().into()),
            events,
            malformed,
            lossy: body.lossy,
            repaired: body.repaired,
        })
    }
}

/// Whether two URLs ask for the same page: the same path and the same
/// query parameters, in any order.
fn same_request(a: &Url, b: &Url) -> bool {
    let pairs = |u: &Url| {
        let mut p: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        p.sort();
        p
    };
    a.path().trim_end_matches('/') == b.path().trim_end_matches('/') && pairs(a) == pairs(b)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as the API takes it.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `limit` a URL asks for.
fn limit_of(url: &Url) -> Option<u32> {
    url.query_pairs()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_in_any_order_of_parameters() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_request(
            &u("https://a/logs/v1?orgUrl=o&limit=2&after=x"),
            &u("https://a/logs/v1/?after=x&limit=2&orgUrl=o")
        ));
        assert!(!same_request(
            &u("https://a/logs/v1?limit=2&after=x"),
            &u("https://a/logs/v1?limit=2&after=y")
        ));
        assert!(!same_request(
            &u("https://a/logs/v1?after=x"),
            &u("https://a/gw/logs/v1?after=x")
        ));
    }

    #[test]
    fn times_are_sent_in_utc_with_z() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2026-01-02T02:04:05Z");
    }
}
