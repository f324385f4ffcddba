//! Splunk HTTP Event Collector: events are POSTed in batches to
//! `/services/collector/event` with `Authorization: Splunk TOKEN`.
//!
//! Without indexer acknowledgement a batch is accepted when HEC answers
//! `200` with code 0. With `--hec-ack` every request carries a channel
//! (`X-Splunk-Request-Channel`), HEC answers with an `ackId`, and a flush
//! polls `/services/collector/ack` until every batch of the page is
//! acknowledged as indexed. Busy (503), rate-limited (429), failing (5xx)
//! or unreachable: retried with backoff (`--send-retries`); a refused token
//! or malformed data: the run stops.

use super::tls::TlsOptions;
use super::{SendRetry, SinkError};
use crate::secret::Secret;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::{Duration, Instant};
use tracing::debug;

/// How long a flush waits for acknowledgements.
const ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// How often, at most, acknowledgements are asked for while sending.
const ACK_POLL_EVERY: Duration = Duration::from_secs(1);

/// HEC options from the command line and config.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HecOptions {
    /// The HEC base URL (`https://splunk:8088`) or a full endpoint URL.
    pub url: Option<String>,
    pub token: Option<Secret>,
    pub ack: bool,
    /// Events per request.
    pub batch: usize,
    pub tls: TlsOptions,
    pub allow_insecure_http: bool,
}

pub struct HecSink {
    client: reqwest::Client,
    event_url: Url,
    ack_url: Url,
    token: Secret,
    /// The ack channel (a random UUID), with `--hec-ack`.
    channel: Option<String>,
    body: Vec<u8>,
    events: usize,
    batch: usize,
    /// Batches posted and not yet known indexed, in order: (ackId, events,
    /// acknowledged).
    pending: std::collections::VecDeque<(u64, u64, bool)>,
    /// Events of the batches acknowledged so far, in order (a batch
    /// acknowledged before an earlier one waits for it).
    pub acked: u64,
    /// When acknowledgements were last asked for.
    polled: Instant,
    retry: SendRetry,
    target: String,
    /// Events HEC has accepted since the sink was opened.
    pub posted: u64,
}

impl std::fmt::Debug for HecSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HecSink")
            .field("target", &self.target)
            .finish()
    }
}

fn refused(target: &str, reason: impl Into<String>) -> SinkError {
    SinkError::Refused {
        target: target.to_string(),
        reason: reason.into(),
    }
}

/// The event and ack endpoints for a configured URL.
pub fn endpoints(raw: &str, allow_insecure_http: bool) -> Result<(Url, Url), String> {
    // Messages show the URL without its user information (registered as
    // a secret first).
    let url = crate::secret::strip_userinfo(raw);
    let url = url.as_str();
    let base = Url::parse(raw).map_err(|e| format!("--hec-url '{url}': not a URL ({e})"))?;
    match base.scheme() {
        "https" => {}
        "http" => {
            if !crate::net::is_loopback(&base) && !allow_insecure_http {
                return Err(format!(
                    "--hec-url '{url}': http:// would send the token in clear; use https:// (or --allow-insecure-http)"
                ));
            }
        }
        other => {
            return Err(format!(
                "--hec-url '{url}': scheme {other}:// is not http(s)"
            ));
        }
    }
    let root = match base.path().find("/services/collector") {
        Some(i) => base.path()[..i].to_string(),
        None => base.path().trim_end_matches('/').to_string(),
    };
    let mut event = base.clone();
    event.set_path(&format!("{root}/services/collector/event"));
    event.set_query(None);
    let mut ack = base;
    ack.set_path(&format!("{root}/services/collector/ack"));
    ack.set_query(None);
    Ok((event, ack))
}

/// A random version 4 UUID, for the ack channel.
fn uuid4() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        b = seed.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl HecSink {
    pub fn new(opts: &HecOptions, retry: SendRetry) -> Result<HecSink, SinkError> {
        let url = opts
            .url
            .as_deref()
            .ok_or_else(|| refused("HEC", "-o HEC needs --hec-url (or hec_url in config.json)"))?;
        let token = opts
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("HEC", "-o HEC needs --hec-token (or hec_token in config.json, or SIEM_AGENT_HEC_TOKEN)"))?;
        let (event_url, ack_url) =
            endpoints(url, opts.allow_insecure_http).map_err(|e| refused("HEC", e))?;
        let target = event_url.origin().ascii_serialization();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(retry.timeout)
            .connect_timeout(super::CONNECT_TIMEOUT)
            .min_tls_version(reqwest::tls::Version::TLS_1_2);
        if let Some(ca) = &opts.tls.ca {
            let pem = std::fs::read(ca).map_err(|e| tls_file("--tls-ca", ca, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| tls_file("--tls-ca", ca, e))?;
            if certs.is_empty() {
                return Err(tls_file("--tls-ca", ca, "holds no PEM certificate"));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&opts.tls.cert, &opts.tls.key) {
            let mut pem = std::fs::read(cert).map_err(|e| tls_file("--tls-cert", cert, e))?;
            pem.extend(std::fs::read(key).map_err(|e| tls_file("--tls-key", key, e))?);
            let id =
                reqwest::Identity::from_pem(&pem).map_err(|e| tls_file("--tls-key", key, e))?;
            builder = builder.identity(id);
        }
        let client = builder
            .build()
            .map_err(|e| refused(&target, format!("cannot set up the HTTP client: {e}")))?;
        Ok(HecSink {
            client,
            event_url,
            ack_url,
            token,
            channel: opts.ack.then(uuid4),
            body: Vec::with_capacity(256 * 1024),
            events: 0,
            batch: opts.batch.max(1),
            pending: std::collections::VecDeque::new(),
            acked: 0,
            polled: Instant::now(),
            retry,
            target,
            posted: 0,
        })
    }

    /// `check`: HEC's health endpoint answers 200, and the token is
    /// accepted (an empty POST is answered `400 No data`, code 5, to a good
    /// token and 401/403 to a bad one).
    pub async fn probe(&self) -> Result<(), SinkError> {
        let mut health = self.event_url.clone();
        health.set_path(
            &self
                .event_url
                .path()
                .replace("/services/collector/event", "/services/collector/health"),
        );
        let resp = self
            .client
            .get(health)
            .send()
            .await
            .map_err(|e| refused(&self.target, crate::report::one_line(&e)))?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(refused(
                &self.target,
                format!(
                    "HEC is not healthy ({status}: {})",
                    text.chars().take(200).collect::<String>()
                ),
            ));
        }
        let resp = self
            .request(&self.event_url, Vec::new())
            .send()
            .await
            .map_err(|e| refused(&self.target, crate::report::one_line(&e)))?;
        let status = resp.status();
        let json: Value =
            serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null);
        match (status, json["code"].as_i64()) {
            (StatusCode::OK, _) | (StatusCode::BAD_REQUEST, Some(5)) => Ok(()),
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Err(refused(
                &self.target,
                format!(
                    "HEC refused the token ({status}: {})",
                    json["text"].as_str().unwrap_or("")
                ),
            )),
            _ => Err(refused(
                &self.target,
                format!("unexpected answer to the token check ({status}: {json})"),
            )),
        }
    }

    /// Events confirmed without a flush: those HEC accepted, or, with
    /// `--hec-ack`, those of the batches it has acknowledged as indexed.
    pub fn confirmed(&self) -> u64 {
        if self.channel.is_some() {
            self.acked
        } else {
            self.posted
        }
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.body.extend_from_slice(frame);
        self.events += 1;
        if self.events >= self.batch {
            self.post().await?;
            // With acknowledgement: ask, at most once a second, which
            // batches are indexed, so the cursor follows inside a page.
            if self.channel.is_some() && self.polled.elapsed() >= ACK_POLL_EVERY {
                self.poll_acks().await?;
            }
        }
        Ok(())
    }

    /// Posts what is batched; with acks, waits until every batch is
    /// acknowledged.
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.post().await?;
        if self.channel.is_some() {
            self.await_acks().await?;
        }
        Ok(())
    }

    fn request(&self, url: &Url, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(url.clone())
            .header("Authorization", format!("Splunk {}", self.token.expose()))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(c) = &self.channel {
            r = r.header("X-Splunk-Request-Channel", c);
        }
        r
    }

    /// POSTs `body` to `url` with retries; returns the answer's JSON.
    async fn call(&self, url: &Url, body: &[u8]) -> Result<Value, SinkError> {
        let mut attempt = 0;
        loop {
            let why: String = match self.request(url, body.to_vec()).send().await {
                Err(e) => {
                    // A certificate that cannot be trusted stays so: no retry.
                    if let Some(reason) = super::tls::explain_chain(&e) {
                        return Err(SinkError::Tls {
                            target: self.target.clone(),
                            reason,
                        });
                    }
                    crate::report::one_line(&e)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let what = json["text"]
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| text.chars().take(200).collect());
                    match status {
                        StatusCode::OK => return Ok(json),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(refused(
                                &self.target,
                                format!("HEC refused the token ({status}: {what})"),
                            ));
                        }
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                            format!("HEC is busy ({status}: {what})")
                        }
                        s if s.is_server_error() => format!("HEC failed ({status}: {what})"),
                        _ => {
                            return Err(refused(
                                &self.target,
                                format!("HEC rejected the request ({status}: {what})"),
                            ));
                        }
                    }
                }
            };
            self.retry
                .back_off(attempt, refused(&self.target, why), "retrying")
                .await?;
            attempt += 1;
        }
    }

    async fn post(&mut self) -> Result<(), SinkError> {
        if self.events == 0 {
            return Ok(());
        }
        let body = std::mem::take(&mut self.body);
        let answer = self.call(&self.event_url.clone(), &body).await;
        self.body = body;
        let answer = answer?;
        if answer["code"].as_i64().unwrap_or(0) != 0 {
            return Err(refused(
                &self.target,
                format!("HEC did not accept the batch: {answer}"),
            ));
        }
        if self.channel.is_some() {
            let id = answer["ackId"]
                .as_u64()
                .ok_or_else(|| refused(&self.target, "HEC gave no ackId: is indexer acknowledgement on for this token? (or drop --hec-ack)"))?;
            self.pending.push_back((id, self.events as u64, false));
        }
        debug!("HEC: posted {} events", self.events);
        self.posted += self.events as u64;
        self.body.clear();
        self.events = 0;
        Ok(())
    }

    /// Asks HEC once which pending batches are indexed.
    async fn poll_acks(&mut self) -> Result<(), SinkError> {
        self.polled = Instant::now();
        let ids: Vec<u64> = self.pending.iter().filter(|p| !p.2).map(|p| p.0).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let body = serde_json::json!({ "acks": ids }).to_string();
        let mut url = self.ack_url.clone();
        if let Some(c) = &self.channel {
            url.query_pairs_mut().append_pair("channel", c);
        }
        let answer = self.call(&url, body.as_bytes()).await?;
        let acks = &answer["acks"];
        for p in self.pending.iter_mut() {
            if acks[p.0.to_string()] == Value::Bool(true) {
                p.2 = true;
            }
        }
        while let Some(&(_, events, true)) = self.pending.front() {
            self.acked += events;
            self.pending.pop_front();
        }
        Ok(())
    }

    async fn await_acks(&mut self) -> Result<(), SinkError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            self.poll_acks().await?;
            if self.pending.is_empty() {
                return Ok(());
            }
            if started.elapsed() > ACK_TIMEOUT {
                return Err(refused(
                    &self.target,
                    format!(
                        "HEC did not acknowledge {} batches in {} s",
                        self.pending.len(),
                        ACK_TIMEOUT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(self.retry.delay(attempt.min(3))).await;
            attempt += 1;
        }
    }
}

fn tls_file(
    flag: &'static str,
    path: &std::path::Path,
    reason: impl std::fmt::Display,
) -> SinkError {
    SinkError::TlsSetup(super::tls::file_error(flag, path, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_a_base_or_a_full_url() {
        let (e, a) = endpoints("https://splunk.example:8088", false).unwrap();
        assert_eq!(
            e.as_str(),
            "https://splunk.example:8088/services/collector/event"
        );
        assert_eq!(
            a.as_str(),
            "https://splunk.example:8088/services/collector/ack"
        );
        let (e, _) = endpoints("https://h/splunk/services/collector/event?x=1", false).unwrap();
        assert_eq!(e.as_str(), "https://h/splunk/services/collector/event");
        assert!(
            endpoints("http://splunk.example:8088", false)
                .unwrap_err()
                .contains("https")
        );
        assert!(endpoints("http://127.0.0.1:8088", false).is_ok());
        assert!(endpoints("ftp://h", true).is_err());
    }

    #[test]
    fn channels_are_uuids() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid4());
    }
}
