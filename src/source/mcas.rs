//! Microsoft Defender for Cloud Apps (formerly Cloud App Security, seed
//! 002): alerts and activities through `POST /api/v1/alerts/` and
//! `/api/v1/activities/` with `Authorization: Token ...`, sorted by date
//! ascending, at most 100 a request.
//!
//! Paging. `skip` over a list that grows while it is read shifts, and many
//! alerts can share one millisecond. So a page is asked for from a time:
//! the next page starts at the last log's millisecond, skipping the logs of
//! that millisecond already read (counted across pages that hold nothing
//! else). Alerts added later than that millisecond cannot shift it, and the
//! run's cursor (the time and the ids at it) drops anything seen twice.
//!
//! A server that ignores `skip`, or caps it, answers the same page for the
//! next `skip` of one millisecond, and `hasNext` stays true: each request
//! carries a fingerprint of the page before it, and a page equal to it ends
//! the stream with a warning (the logs of that millisecond past the cap
//! cannot be reached by this API).

use super::http::{Client, HttpOptions, Origin, Proxy, json_api_headers};
use super::keys::{KeyError, Keys, normalize_server, type_name};
use super::{Page, Request, SourceError, body};
use crate::event::{App, Event, Vendor};
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use tracing::debug;

/// Logs per request: the API's maximum.
pub const PAGE_LIMIT: u64 = 100;

/// Where a first run starts: the last two days (the seed agent's).
pub const FIRST_RUN: chrono::Duration = chrono::Duration::days(2);

/// A request for one page: the logs from `gte_ms` (epoch milliseconds,
/// inclusive), after the first `skip` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub gte_ms: i64,
    pub skip: u64,
    /// A fingerprint of the keys of the page before this one (0: none),
    /// to notice a server that answers the same page whatever the skip.
    pub before: u64,
}

/// Defender for Cloud Apps' keys of config.json.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tenant's API URL, always ending in `/`.
    pub api_server: String,
    /// The legacy API token (or `--token`, which wins over `entra`).
    pub token: Option<Secret>,
    /// Application context through Microsoft Entra ID (Microsoft's
    /// recommended way; the legacy token is on a deprecation path).
    pub entra: Option<Entra>,
    /// `"data_types"`: the streams (default alerts, the seed agent's).
    pub data_types: Vec<App>,
}

/// An Entra ID application's credentials for Defender for Cloud Apps.
#[derive(Clone, Debug)]
pub struct Entra {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Entra's sign-in server (`login_server`; another for a sovereign
    /// cloud): the token endpoint is `<it><tenant_id>/oauth2/v2.0/token`.
    pub login: Url,
}

impl Config {
    pub const KEYS: [&'static str; 7] = [
        "api_server",
        "token",
        "data_types",
        "tenant_id",
        "client_id",
        "client_secret",
        "login_server",
    ];

    pub fn parse(keys: &Keys) -> Result<Config, KeyError> {
        let token = keys.optional_nonblank("token")?.map(Secret::new);
        let client_secret = keys.optional_nonblank("client_secret")?;
        if let Some(s) = &client_secret {
            crate::secret::register(s);
        }
        let entra = match client_secret {
            None => {
                for k in ["tenant_id", "client_id"] {
                    if keys.get(k).is_some() {
                        return Err(keys.invalid(
                            "client_secret",
                            format!("is missing: {k} is set, and an Entra ID application needs tenant_id, client_id and client_secret"),
                        ));
                    }
                }
                None
            }
            Some(_) if token.is_some() => {
                return Err(keys.invalid(
                    "token",
                    "and client_secret are both set: give the legacy API token or the Entra ID application (tenant_id, client_id, client_secret), not both",
                ));
            }
            Some(secret) => {
                let login = match keys.optional_nonblank("login_server")? {
                    None => Url::parse(super::oauth::ENTRA_LOGIN).expect("a URL"),
                    Some(raw) => Url::parse(&normalize_server(keys.path, "login_server", &raw)?)
                        .map_err(|e| keys.invalid("login_server", format!("is not a URL ({e})")))?,
                };
                let tenant_id = keys.required_str("tenant_id")?.trim().to_string();
                if !tenant_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                {
                    return Err(keys.invalid(
                        "tenant_id",
                        "must be the directory (tenant) ID, a GUID, or its domain name",
                    ));
                }
                Some(Entra {
                    tenant_id,
                    client_id: keys.required_str("client_id")?.trim().to_string(),
                    client_secret: Secret::new(secret),
                    login,
                })
            }
        };
        let data_types = data_types(keys)?;
        let api_server =
            normalize_server(keys.path, "api_server", &keys.required_str("api_server")?)?;
        Ok(Config {
            api_server,
            token,
            entra,
            data_types,
        })
    }
}

/// `"data_types"`: a list of `alerts` and `activities` (default: alerts,
/// the seed agent's).
fn data_types(keys: &Keys) -> Result<Vec<App>, KeyError> {
    let list = match keys.get("data_types") {
        None => return Ok(vec![App::Alerts]),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(keys.invalid(
                "data_types",
                format!(
                    "must be a list such as [\"alerts\", \"activities\"], not {}",
                    type_name(other)
                ),
            ));
        }
    };
    let mut out = Vec::new();
    for v in list {
        let app = v
            .as_str()
            .and_then(|s| App::parse_in(Vendor::Mcas, s.trim()))
            .ok_or_else(|| {
                keys.invalid(
                    "data_types",
                    format!("holds {v}: each must be \"alerts\" or \"activities\""),
                )
            })?;
        if !out.contains(&app) {
            out.push(app);
        }
    }
    if out.is_empty() {
        return Err(keys.invalid("data_types", "is empty: name alerts, activities or both"));
    }
    out.sort();
    Ok(out)
}

/// The Defender for Cloud Apps client. Cheap to clone.
#[derive(Clone)]
pub struct Mcas {
    http: Client,
    base: Url,
}

impl Mcas {
    /// The client for `config`, read from the file `path`.
    pub fn new(
        config: &Config,
        path: &std::path::Path,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
    ) -> Result<Mcas, SourceError> {
        let base = Url::parse(&config.api_server)
            .map_err(|e| SourceError::Setup(format!("api_server: {e}")))?;
        let (headers, tokens) = match (&config.token, &config.entra) {
            (Some(token), _) => (
                json_api_headers(&format!("Token {}", token.expose()), "the token")?,
                None,
            ),
            (None, Some(app)) => {
                let grant = super::oauth::OAuth2::entra(
                    &app.login,
                    &app.tenant_id,
                    &app.client_id,
                    app.client_secret.clone(),
                )
                .map_err(|e| SourceError::Setup(format!("{}: {e}", path.display())))?;
                let tokens = super::oauth::Tokens::new(
                    grant,
                    path,
                    "login_server",
                    format!(
                        "the Entra ID application's {}",
                        crate::credentials::whence(path, "tenant_id, client_id and client_secret")
                    ),
                    http,
                    proxy,
                )?;
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
                (headers, Some(tokens))
            }
            (None, None) => {
                return Err(SourceError::Setup(format!(
                    "{}: field \"token\" is missing (or give --token, or set SIEM_AGENT_MCAS_TOKEN; or an Entra ID application's tenant_id, client_id and client_secret)",
                    path.display()
                )));
            }
        };
        let http = Client::new(
            base.clone(),
            headers,
            http,
            proxy,
            Origin {
                config: path,
                field: "api_server",
                credentials: "token (the API token of the portal's Security extensions)",
                location: "api_server (the tenant's API URL)",
            },
        )?;
        let http = match tokens {
            Some(t) => http.with_tokens(t),
            None => http,
        };
        Ok(Mcas { http, base })
    }

    fn endpoint(&self, app: App) -> Url {
        let path = match app {
            App::Activities => "api/v1/activities/",
            _ => "api/v1/alerts/",
        };
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// The request for `app`'s logs from `since` (inclusive).
    pub fn first(since: DateTime<Utc>) -> Request {
        Request::Mcas(Query {
            gte_ms: since.timestamp_millis(),
            skip: 0,
            before: 0,
        })
    }

    /// One page, retried as the API allows.
    pub async fn fetch(&self, app: App, q: &Query) -> Result<Page, SourceError> {
        self.http
            .retrying(|| self.fetch_once(app, q, PAGE_LIMIT))
            .await
    }

    /// `check`: the alerts endpoint answers our token.
    pub async fn probe(&self, app: App) -> Result<usize, SourceError> {
        let since = Utc::now() - chrono::Duration::hours(1);
        let q = Query {
            gte_ms: since.timestamp_millis(),
            skip: 0,
            before: 0,
        };
        Ok(self.fetch_once(app, &q, 1).await?.events.len())
    }

    /// The server's clock (the `Date` of a one-log request).
    pub async fn server_now(&self) -> Option<DateTime<Utc>> {
        let req = self
            .http
            .request(Method::POST, self.endpoint(App::Alerts))
            .body(
                query_body(
                    &Query {
                        gte_ms: Utc::now().timestamp_millis(),
                        skip: 0,
                        before: 0,
                    },
                    1,
                )
                .to_string(),
            );
        self.http.server_now(req).await
    }

    async fn fetch_once(&self, app: App, q: &Query, limit: u64) -> Result<Page, SourceError> {
        let url = self.endpoint(app);
        debug!("POST {url} from {} skip {}", q.gte_ms, q.skip);
        let req = self
            .http
            .request(Method::POST, url)
            .body(query_body(q, limit).to_string());
        let answer = self.http.send(req).await?;
        let body = body::parse(answer.body)?;
        let Value::Object(mut top) = body.value else {
            return Err(SourceError::BadPage("not a JSON object".into()));
        };
        let items = match top.remove("data") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(SourceError::BadPage("\"data\" is not an array".into())),
        };
        let count = items.len() as u64;
        let has_next = match top.get("hasNext") {
            Some(Value::Bool(b)) => *b,
            // Not said: a full page may have more after it.
            _ => count >= limit,
        };
        let (events, malformed) = body::events(app, items)?;
        let print = fingerprint(&events);
        if q.before != 0 && print == q.before {
            return Err(SourceError::NoProgress(format!(
                "the API answered the same {count} {app} for skip {} from {} ms as for the skip before: it ignores or caps skip within one millisecond, and the logs of that millisecond past them cannot be reached",
                q.skip, q.gte_ms
            )));
        }
        let next = if has_next && count > 0 {
            Some(Request::Mcas(Query {
                before: print,
                ..next_query(q, &events, count)
            }))
        } else {
            None
        };
        Ok(Page {
            url: None,
            position: None,
            events,
            next,
            malformed,
            lossy: body.lossy,
            repaired: body.repaired,
        })
    }
}

/// A fingerprint of a page's logs (their keys, in order); never 0 for a
/// page that holds one.
fn fingerprint(events: &[Event]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    if events.is_empty() {
        return 0;
    }
    let mut h = DefaultHasher::new();
    for ev in events {
        ev.key().hash(&mut h);
    }
    h.finish().max(1)
}

/// The body of a request for `limit` logs from `q`.
fn query_body(q: &Query, limit: u64) -> Value {
    json!({
        "filters": {"date": {"gte": q.gte_ms}},
        "skip": q.skip,
        "limit": limit,
        "sortField": "date",
        "sortDirection": "asc",
    })
}

/// The request after a page of `count` entries (`events` the logs among
/// them) read with `q`: from the last log's millisecond, past the logs of
/// that millisecond already read. Without a usable time, by `skip`.
fn next_query(q: &Query, events: &[Event], count: u64) -> Query {
    let ms = |ev: &Event| ev.time.map(|t| t.timestamp_millis());
    match events.last().and_then(ms) {
        // Sorted ascending: a page that ends at the millisecond it started
        // from is all of that millisecond; the next skips it too.
        Some(last) if last == q.gte_ms => Query {
            gte_ms: last,
            skip: q.skip + count,
            before: 0,
        },
        Some(last) if last > q.gte_ms => Query {
            gte_ms: last,
            skip: events
                .iter()
                .rev()
                .take_while(|e| ms(e) == Some(last))
                .count() as u64,
            before: 0,
        },
        _ => Query {
            gte_ms: q.gte_ms,
            skip: q.skip + count,
            before: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evs(times: &[i64]) -> Vec<Event> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Event::from_log(
                    App::Alerts,
                    json!({"_id": format!("a{i}"), "timestamp": t})
                        .as_object()
                        .unwrap()
                        .clone(),
                )
            })
            .collect()
    }

    #[test]
    fn the_next_page_starts_at_the_last_millisecond() {
        let q = Query {
            gte_ms: 100,
            skip: 0,
            before: 0,
        };
        assert_eq!(
            next_query(&q, &evs(&[100, 101, 105, 105]), 4),
            Query {
                gte_ms: 105,
                skip: 2,
                before: 0
            }
        );
        // A page all at the millisecond it started from: skip grows.
        let q = Query {
            gte_ms: 105,
            skip: 2,
            before: 0,
        };
        assert_eq!(
            next_query(&q, &evs(&[105, 105, 105]), 3),
            Query {
                gte_ms: 105,
                skip: 5,
                before: 0
            }
        );
        // ... and once past it, counts from the new millisecond.
        assert_eq!(
            next_query(&q, &evs(&[105, 107]), 2),
            Query {
                gte_ms: 107,
                skip: 1,
                before: 0
            }
        );
        // No usable time: by skip.
        let q = Query {
            gte_ms: 100,
            skip: 0,
            before: 0,
        };
        let none = vec![Event::from_log(App::Alerts, Default::default())];
        assert_eq!(
            next_query(&q, &none, 1),
            Query {
                gte_ms: 100,
                skip: 1,
                before: 0
            }
        );
        // An entry that was not a log is counted too when the page is all
        // of one millisecond.
        assert_eq!(
            next_query(
                &Query {
                    gte_ms: 105,
                    skip: 0,
                    before: 0
                },
                &evs(&[105]),
                2
            ),
            Query {
                gte_ms: 105,
                skip: 2,
                before: 0
            }
        );
    }

    #[test]
    fn a_page_is_known_by_its_logs() {
        assert_eq!(fingerprint(&[]), 0);
        let a = fingerprint(&evs(&[105, 105]));
        assert_ne!(a, 0);
        assert_eq!(a, fingerprint(&evs(&[105, 105])));
        assert_ne!(a, fingerprint(&evs(&[105])));
    }

    #[test]
    fn the_query_asks_by_date_ascending() {
        let b = query_body(
            &Query {
                gte_ms: 5,
                skip: 7,
                before: 0,
            },
            100,
        );
        assert_eq!(
            b,
            json!({"filters": {"date": {"gte": 5}}, "skip": 7, "limit": 100, "sortField": "date", "sortDirection": "asc"})
        );
    }
}
