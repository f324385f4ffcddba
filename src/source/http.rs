//! What every HTTP source shares, written once: the client (timeouts, the
//! proxy, TLS roots only when TLS can be spoken, no redirects, no system
//! proxy), plain http refused off this machine, retries with the server's
//! `Retry-After`, bodies read against a cap, error answers in one line
//! with secrets redacted, next URLs pinned to the API's origin, and HTTP
//! Basic credentials.

use super::{RetryPolicy, SourceError, error_chain, jitter};
use crate::secret::{Secret, redact};
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tracing::{debug, warn};

/// How much of an error answer is read (for its message).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The API proxy.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// The proxy URL without credentials.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// HTTP behaviour of a source.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub allow_insecure_http: bool,
    /// The largest page body, decoded, that is read (`--max-page-mib`).
    pub max_body: usize,
}

/// Where an API's URL and credentials come from, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The config file.
    pub config: &'a Path,
    /// The key that names the API's URL (`api_server`, `apiurl`, `url`).
    pub field: &'static str,
    /// What to check when the API rejects the credentials
    /// (`key_id, key_secret and tenant`).
    pub credentials: &'static str,
    /// What to check when the API answers 404 (`api_server and tenant`).
    pub location: &'static str,
}

/// An HTTP client bound to one API. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The API's base URL: next URLs must keep its scheme, host and port.
    base: Url,
    retry: RetryPolicy,
    max_body: usize,
    /// What to check when the API refuses the credentials, with where each
    /// came from (`key_id, key_secret and tenant in config.json`).
    credentials: std::sync::Arc<str>,
    location: &'static str,
    /// OAuth 2.0: the access token is sent with each request (renewed
    /// once on a 401).
    tokens: Option<std::sync::Arc<super::oauth::Tokens>>,
}

/// A successful answer, its body read.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Client {
    /// A client for the API at `base`, sending `headers` with every
    /// request (mark secret ones sensitive).
    pub fn new(
        base: Url,
        headers: HeaderMap,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
        origin: Origin<'_>,
    ) -> Result<Client, SourceError> {
        if base.scheme() == "http" && !http.allow_insecure_http && !crate::net::is_loopback(&base) {
            return Err(SourceError::Setup(format!(
                "{}: {} {} is plain http:// to a host that is not this machine; the credentials would \
                 cross the network unencrypted (use https://, or --allow-insecure-http)",
                origin.config.display(),
                origin.field,
                crate::secret::strip_userinfo(base.as_str())
            )));
        }
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SourceError::Setup(format!(
                "{}: {} {} is not an http:// or https:// URL",
                origin.config.display(),
                origin.field,
                crate::secret::strip_userinfo(base.as_str())
            )));
        }
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .user_agent(concat!("siem-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(http.timeout)
            .read_timeout(http.timeout)
            .timeout(http.timeout * 4)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(p) = proxy {
            let mut px = reqwest::Proxy::all(&p.url)
                .map_err(|e| SourceError::Setup(format!("--proxy: {e}")))?;
            if let Some(user) = &p.username {
                let pass = p.password.clone().unwrap_or_default();
                // The proxy may echo its `Proxy-Authorization` header: the
                // Basic credentials built from the password are a secret.
                crate::secret::register(&basic_credentials(user, &pass));
                px = px.basic_auth(user, pass.expose());
            }
            builder = builder.proxy(px);
        }
        if !speaks_tls(&base, proxy) {
            builder = builder.tls_certs_only(Vec::new());
        }
        let client = builder.build().map_err(|e| {
            SourceError::Setup(format!(
                "cannot set up the HTTP client: {}",
                error_chain(&e)
            ))
        })?;
        Ok(Client {
            http: client,
            base,
            retry: RetryPolicy {
                retries: http.retries,
                base: http.retry_delay,
            },
            max_body: http.max_body,
            credentials: crate::credentials::whence(origin.config, origin.credentials).into(),
            location: origin.location,
            tokens: None,
        })
    }

    /// The client sending an OAuth 2.0 access token of `tokens` with each
    /// request.
    pub fn with_tokens(mut self, tokens: super::oauth::Tokens) -> Client {
        self.tokens = Some(std::sync::Arc::new(tokens));
        self
    }

    /// The API's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A request to `url` (headers, timeouts and proxy applied).
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries
    /// are spent (each retry after the server's `Retry-After`, or a
    /// backoff with jitter).
    pub async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let mut n = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && n < self.retry.retries => {
                    let wait = self.retry.delay(n, &e, jitter());
                    warn!(
                        "{}; retry {}/{} in {:.1}s",
                        redact(&e.to_string()),
                        n + 1,
                        self.retry.retries,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
                Err(e) if n > 0 => {
                    return Err(SourceError::GaveUp {
                        attempts: n + 1,
                        last: Box::new(e),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `req` once and reads a successful answer's body (decoded, at
    /// most `--max-page-mib`); an error status is a [`SourceError`] with
    /// the start of its body.
    pub async fn send(&self, req: RequestBuilder) -> Result<Answer, SourceError> {
        // The request's URL, for an error that does not carry it (a
        // timeout reading the body).
        let (client, request) = req.build_split();
        let mut request = request.map_err(|e| transport_error(&e, &self.base))?;
        let url = request.url().clone();
        let resp = match &self.tokens {
            None => client
                .execute(request)
                .await
                .map_err(|e| transport_error(&e, &url))?,
            Some(tokens) => {
                // Boxed: the token endpoint is asked through a client too.
                let token = Box::pin(tokens.header()).await?;
                request.headers_mut().insert(AUTHORIZATION, token.clone());
                let again = request.try_clone();
                let resp = client
                    .execute(request)
                    .await
                    .map_err(|e| transport_error(&e, &url))?;
                match again {
                    // A token revoked or expired ahead of its time: once
                    // more with a new one.
                    Some(mut again) if resp.status() == StatusCode::UNAUTHORIZED => {
                        drop(resp);
                        let token = Box::pin(tokens.renew(&token)).await?;
                        again.headers_mut().insert(AUTHORIZATION, token);
                        client
                            .execute(again)
                            .await
                            .map_err(|e| transport_error(&e, &url))?
                    }
                    _ => resp,
                }
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_success() {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = read_start(resp, MAX_ERROR_BODY).await;
            return Err(status_error(
                status,
                &body,
                retry_after,
                (&self.credentials, self.location),
            ));
        }
        // Read (and decompressed) a chunk at a time against the cap: a
        // gzip bomb or an endless body stops at the limit.
        let body = match read_body(resp, self.max_body, false).await {
            Ok(b) => b,
            Err(ReadError::Transport(e)) => return Err(transport_error(&e, &url)),
            Err(ReadError::TooLarge) => {
                return Err(SourceError::TooLarge(format!(
                    "more than {} MiB once decompressed; --max-page-mib raises the limit",
                    self.max_body / (1024 * 1024)
                )));
            }
        };
        debug!("HTTP {} {} bytes", status.as_u16(), body.len());
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The server's clock, from the `Date` header of an answer to `url`.
    pub async fn server_now(&self, req: RequestBuilder) -> Option<DateTime<Utc>> {
        let resp = req.send().await.ok()?;
        let date = resp.headers().get(reqwest::header::DATE)?.to_str().ok()?;
        DateTime::parse_from_rfc2822(date)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// A next URL (`what` names where it came from) resolved against
    /// `current`. It must stay on the API's origin: the credentials go
    /// with it.
    pub fn pin(&self, current: &Url, raw: &str, what: &str) -> Result<Url, SourceError> {
        let next = current
            .join(raw)
            .map_err(|e| SourceError::BadPage(format!("{what} {raw:?} is not a URL ({e})")))?;
        if next.scheme() != self.base.scheme()
            || next.host_str() != self.base.host_str()
            || next.port_or_known_default() != self.base.port_or_known_default()
        {
            return Err(SourceError::ForeignNextUrl {
                what: what.to_string(),
                origin: next.origin().ascii_serialization(),
            });
        }
        Ok(next)
    }
}

/// A header value that holds a secret, marked sensitive (the HTTP library
/// never shows it); `what` names what holds it for the error.
pub fn secret_header(value: &str, what: &str) -> Result<HeaderValue, SourceError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| SourceError::Setup(format!("{what} holds characters that cannot be sent")))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The headers of a JSON API: `Authorization` (a secret), `Accept` and
/// `Content-Type` JSON.
pub fn json_api_headers(authorization: &str, what: &str) -> Result<HeaderMap, SourceError> {
    use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, secret_header(authorization, what)?);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(headers)
}

/// A request that failed before an answer, in a short line: the endpoint
/// (the error's URL, else `url`, the request's: a timeout reading the body
/// carries none) without its query (where a declared key may be) and the
/// root cause. The whole chain goes to the debug log.
pub fn transport_error(e: &reqwest::Error, url: &Url) -> SourceError {
    debug!("{}", redact(&error_chain(e)));
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = if e.is_timeout() {
        "timed out".to_string()
    } else {
        root.to_string()
    };
    let what = if e.is_body() || e.is_decode() {
        "reading the answer from "
    } else {
        ""
    };
    let mut u = e.url().unwrap_or(url).clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    let at = format!("{what}{}: ", redact(u.as_str()));
    SourceError::Transport(redact(&format!("{at}{cause}")))
}

enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

/// The start of an error answer (for its message), at most `cap` bytes.
async fn read_start(resp: reqwest::Response, cap: usize) -> Vec<u8> {
    read_body(resp, cap, true).await.unwrap_or_default()
}

/// Reads a body, decoded, up to `cap` bytes: beyond that, `TooLarge` (or,
/// with `keep_start`, the first `cap` bytes).
async fn read_body(
    mut resp: reqwest::Response,
    cap: usize,
    keep_start: bool,
) -> Result<Vec<u8>, ReadError> {
    let mut body = crate::event::pool::bytes(
        resp.content_length()
            .map_or(64 * 1024, |l| (l as usize).min(cap).min(16 * 1024 * 1024)),
    );
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            if keep_start {
                body.extend_from_slice(&chunk[..cap - body.len()]);
                return Ok(body);
            }
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a client for `base` (through `proxy`) may speak TLS. When it
/// cannot (a plain-http API and no proxy or a plain-http one; next URLs
/// are pinned to the API's origin, scheme included), the system's roots
/// are not loaded: about 4 ms a run, a file read per certificate. Should a
/// https URL ever reach such a client, it fails to verify, never goes
/// unverified.
pub(crate) fn speaks_tls(base: &Url, proxy: Option<&Proxy>) -> bool {
    base.scheme() != "http" || proxy.is_some_and(|p| !p.url.starts_with("http://"))
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&Utc) - Utc::now()).num_seconds().max(0);
    Some(Duration::from_secs(secs as u64))
}

fn status_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    (credentials, location): (&str, &'static str),
) -> SourceError {
    let snippet = snippet(body);
    let detail = if snippet.is_empty() {
        String::new()
    } else {
        format!(": {snippet}")
    };
    match status.as_u16() {
        401 | 403 => SourceError::Rejected {
            status: status.as_u16(),
            detail,
            check: credentials.to_string(),
        },
        404 => SourceError::Status {
            status: 404,
            detail: format!("{detail} (check {location} in the config file)"),
            retry_after: None,
        },
        s => SourceError::Status {
            status: s,
            detail,
            retry_after,
        },
    }
}

/// The start of a body, on one line, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    // Redacted whole before it is cut: a secret cut in two at the end of
    // the snippet would no longer be recognised, and its start would show.
    let text = redact(&String::from_utf8_lossy(body));
    let one_line: String = text
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_string()
}

/// The value of the `Authorization: Basic` header's credentials, base64.
pub fn basic_credentials(user: &str, password: &Secret) -> String {
    base64(format!("{user}:{}", password.expose()).as_bytes())
}

/// Standard base64 with padding (RFC 4648), for the Basic header.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(url: &str) -> Proxy {
        Proxy {
            url: url.into(),
            username: None,
            password: None,
        }
    }

    #[test]
    fn tls_roots_are_loaded_unless_nothing_can_speak_tls() {
        let http = Url::parse("http://127.0.0.1:8080/").unwrap();
        let https = Url::parse("https://api.example.com/").unwrap();
        assert!(!speaks_tls(&http, None));
        assert!(!speaks_tls(&http, Some(&proxy("http://proxy:3128/"))));
        assert!(speaks_tls(&http, Some(&proxy("https://proxy:3128/"))));
        assert!(speaks_tls(&http, Some(&proxy("socks5://proxy:1080"))));
        assert!(speaks_tls(&https, None));
        assert!(speaks_tls(&https, Some(&proxy("http://proxy:3128/"))));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    fn client(base: &str, insecure: bool) -> Result<Client, SourceError> {
        Client::new(
            Url::parse(base).unwrap(),
            HeaderMap::new(),
            &HttpOptions {
                timeout: Duration::from_secs(5),
                retries: 0,
                retry_delay: Duration::from_secs(1),
                allow_insecure_http: insecure,
                max_body: 1 << 20,
            },
            None,
            Origin {
                config: Path::new("config.json"),
                field: "url",
                credentials: "the token",
                location: "url",
            },
        )
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(client("http://127.0.0.1:1/", false).is_ok());
        assert!(client("http://[::1]:1/", false).is_ok());
        assert!(client("http://localhost:1/", false).is_ok());
        let e = client("http://api.example.com/", false).err().unwrap();
        assert!(
            e.to_string()
                .contains("config.json: url http://api.example.com/")
        );
        assert!(client("http://api.example.com/", true).is_ok());
        assert!(client("https://api.example.com/", false).is_ok());
        let e = client("ftp://api.example.com/", true).err().unwrap();
        assert!(e.to_string().contains("not an http:// or https:// URL"));
    }

    #[test]
    fn next_urls_stay_on_the_origin() {
        let c = client("https://api.example.com/t/", false).unwrap();
        let cur = Url::parse("https://api.example.com/t/logs?a=1").unwrap();
        assert_eq!(
            c.pin(&cur, "/t/logs?after=2", "next").unwrap().as_str(),
            "https://api.example.com/t/logs?after=2"
        );
        assert_eq!(
            c.pin(&cur, "https://api.example.com:443/x", "next")
                .unwrap()
                .as_str(),
            "https://api.example.com/x"
        );
        for bad in [
            "http://api.example.com/x",
            "https://evil.example.com/x",
            "https://api.example.com:8443/x",
            "//evil.example.com/x",
        ] {
            let e = c.pin(&cur, bad, "the Link header's next URL").unwrap_err();
            assert!(
                e.to_string()
                    .contains("the Link header's next URL points to"),
                "{e}"
            );
        }
    }

    #[test]
    fn rejected_names_what_to_check() {
        let e = status_error(
            StatusCode::UNAUTHORIZED,
            b"nope",
            None,
            ("the token in config.json", "url"),
        );
        assert_eq!(
            e.to_string(),
            "the API rejected the credentials (HTTP 401: nope): check the token in config.json"
        );
        assert!(!e.retryable());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(
            basic_credentials("Aladdin", &Secret::new("open sesame")),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
