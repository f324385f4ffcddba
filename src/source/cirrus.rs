//! Cirrus Identity's Log API (the "SIEM API", seed 003): `POST
//! <apiurl>?orgUrl=..&limit=..&since=..` with HTTP Basic (the API key and
//! secret) and the body `{}`, answered with a JSON array of entries. Paging
//! is by position: the `Link` header's `rel="next"` URL (with or without
//! RFC 8288's angle brackets, as the vendor's example client reads it) is
//! the position after the last entry. The run follows it while answers are
//! full, and saves it, once the page is delivered, to resume from.

use super::http::{Client, HttpOptions, Origin, Proxy, json_api_headers};
use super::{Page, Request, SourceError, body};
use crate::config::{Config, basic_credentials};
use crate::event::App;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::LINK;
use reqwest::{Method, Url};
use serde_json::Value;
use tracing::debug;

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
    orgurl: String,
    opts: Options,
}

impl Cirrus {
    pub fn new(
        config: &Config,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
        opts: &Options,
    ) -> Result<Cirrus, SourceError> {
        let missing = |what: &str, flag: &str| {
            SourceError::Setup(format!(
                "{}: field \"{what}\" is missing (or give {flag})",
                config.path.display()
            ))
        };
        let key = config
            .apikey
            .as_deref()
            .ok_or_else(|| missing("apikey", "--apikey, or set API_KEY"))?;
        let secret = config
            .apisecret
            .as_ref()
            .ok_or_else(|| missing("apisecret", "--apisecret, or set API_SECRET"))?;
        let orgurl = config
            .orgurl
            .clone()
            .ok_or_else(|| missing("orgurl", "--orgurl"))?;
        let endpoint = Url::parse(&config.api_server).map_err(|e| {
            SourceError::Setup(format!(
                "{}: field \"apiurl\" is not a URL ({e})",
                config.path.display()
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
                config: &config.path,
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
    /// carries those of the run that saved it.
    pub fn first(
        &self,
        since: DateTime<Utc>,
        resume: Option<&str>,
    ) -> Result<Request, SourceError> {
        if let Some(position) = resume {
            let saved = self
                .http
                .pin(&self.endpoint, position, "the saved position")?;
            if saved.path().trim_end_matches('/') != self.endpoint.path().trim_end_matches('/') {
                return Err(SourceError::Setup(format!(
                    "the saved position is for the endpoint {}, not apiurl's {}: give this apiurl its own --state-dir, or -r to start over",
                    saved.path(),
                    self.endpoint.path()
                )));
            }
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
            q.append_pair("orgUrl", &self.orgurl);
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
            q.append_pair("orgUrl", &self.orgurl);
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
        let link = answer
            .headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link);
        let position = match link {
            Some(raw) => Some(self.http.pin(url, &raw, "the Link header's next URL")?),
            None => None,
        };
        let body = body::parse(answer.body)?;
        let items = match body.value {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => return Err(SourceError::BadPage("not a JSON array of entries".into())),
        };
        let limit = limit_of(url).unwrap_or(self.opts.limit);
        let full = items.len() as u64 >= u64::from(limit);
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

/// The next URL of a `Link` header value: the link whose parameters say
/// `rel="next"` (or `rel=next`), its URL with or without angle brackets.
pub fn next_link(header: &str) -> Option<String> {
    // Links are separated by commas, but a bare URL may hold commas: a
    // link is taken up to its `;` parameters.
    let mut rest = header;
    while !rest.trim().is_empty() {
        let (target, after) = match rest.trim_start().strip_prefix('<') {
            Some(inner) => {
                let end = inner.find('>')?;
                (&inner[..end], &inner[end + 1..])
            }
            None => {
                let end = rest.find(';').unwrap_or(rest.len());
                (rest[..end].trim(), &rest[end..])
            }
        };
        // The parameters, up to the next link (a `,` followed by `<`).
        let (params, next) = match after.find(",") {
            Some(i) if after[i + 1..].trim_start().starts_with('<') => {
                (&after[..i], &after[i + 1..])
            }
            _ => (after, ""),
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").is_some_and(|v| {
                v.trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next && !target.trim().is_empty() {
            return Some(target.trim().to_string());
        }
        rest = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_in_both_forms() {
        let url = "https://api.example/logs/v1?orgUrl=o&limit=2&after=abc";
        assert_eq!(
            next_link(&format!("<{url}>; rel=\"next\"")).as_deref(),
            Some(url)
        );
        assert_eq!(
            next_link(&format!("{url}; rel=\"next\"")).as_deref(),
            Some(url)
        );
        assert_eq!(next_link(&format!("{url};rel=next")).as_deref(), Some(url));
        assert_eq!(
            next_link(&format!(
                "<https://x/prev>; rel=\"prev\", <{url}>; rel=\"next\""
            ))
            .as_deref(),
            Some(url)
        );
        assert_eq!(next_link("<https://x/prev>; rel=\"prev\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<unclosed; rel=\"next\""), None);
    }

    #[test]
    fn times_are_sent_in_utc_with_z() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2026-01-02T02:04:05Z");
    }
}
