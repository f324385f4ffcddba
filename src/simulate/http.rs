//! The simulator's HTTP/1.1 server: GET (and POST with a Content-Length
//! body), keep-alive, Content-Length answers.

use super::data::{self, Rng};
use super::{Fault, World};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 16 * 1024;
const PAGE_MAX: u64 = 1000;

pub async fn serve(listener: TcpListener, world: Arc<World>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let world = world.clone();
        tokio::spawn(async move {
            let _ = connection(stream, world).await;
        });
    }
}

pub(crate) struct Request {
    /// Sent in proxy form (absolute URI).
    pub proxied: bool,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub method: String,
    /// The request body (POST).
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub(crate) fn json_response(status: u16, body: Value) -> Response {
    Response {
        status,
        body: body.to_string().into_bytes(),
        headers: Vec::new(),
    }
}

async fn connection(mut stream: TcpStream, world: Arc<World>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p;
            }
            if buf.len() > MAX_HEAD {
                write(
                    &mut stream,
                    &json_response(431, json!({"status": "error"})),
                    false,
                )
                .await?;
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end + 4);
        let Some(mut req) = parse_head(&head) else {
            write(
                &mut stream,
                &json_response(400, json!({"status": "error", "message": "bad request"})),
                false,
            )
            .await?;
            return Ok(());
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let length: usize = req
            .header("content-length")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if length > MAX_HEAD * 4 {
            write(
                &mut stream,
                &json_response(413, json!({"status": "error"})),
                false,
            )
            .await?;
            return Ok(());
        }
        while buf.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        req.body = buf.drain(..length).collect();
        world.stats.requests.fetch_add(1, Ordering::Relaxed);
        if world.args.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(world.args.latency_ms)).await;
        }
        let outcome = match world.args.vendor {
            _ if super::oauth::is_token_path(&req, &world) => {
                Some(Outcome::Answer(super::oauth::token(&req, &world)))
            }
            super::SimVendor::Mcas => Some(super::mcas::handle(&req, &world)),
            super::SimVendor::Cirrus => Some(super::cirrus::handle(&req, &world)),
            super::SimVendor::Rest => Some(super::rest::handle(&req, &world)),
            super::SimVendor::Sls => Some(super::sls::handle(&req, &world)),
            super::SimVendor::Cloudsoc if req.method == "GET" => Some(handle(&req, &world)),
            super::SimVendor::Cloudsoc => None,
        };
        if let Some(outcome) = outcome {
            match outcome {
                Outcome::Answer(resp) => write(&mut stream, &resp, close).await?,
                Outcome::Slow(resp) => {
                    tokio::time::sleep(Duration::from_millis(world.args.slow_ms)).await;
                    write(&mut stream, &resp, close).await?;
                }
                Outcome::Truncate(resp) => {
                    let mut head = head_bytes(&resp, true);
                    head.extend_from_slice(&resp.body[..resp.body.len() / 2]);
                    stream.write_all(&head).await?;
                    stream.flush().await?;
                    return Ok(());
                }
                Outcome::Reset => return Ok(()),
            }
        } else {
            write(
                &mut stream,
                &json_response(405, json!({"status": "error"})),
                close,
            )
            .await?;
        }
        if close {
            return Ok(());
        }
    }
}

pub(crate) enum Outcome {
    Answer(Response),
    Slow(Response),
    Truncate(Response),
    Reset,
}

fn handle(req: &Request, world: &World) -> Outcome {
    let a = &world.args;
    if req.proxied {
        world.stats.proxied.fetch_add(1, Ordering::Relaxed);
        if let Some(creds) = &a.proxy_auth {
            let want = format!("Basic {}", crate::source::http::base64(creds.as_bytes()));
            if req.header("proxy-authorization") != Some(want.as_str()) {
                let mut r = json_response(
                    407,
                    json!({"status": "error", "message": "Proxy Authentication Required"}),
                );
                r.headers
                    .push(("Proxy-Authenticate", "Basic realm=\"sim\"".into()));
                return Outcome::Answer(r);
            }
        }
    }
    let logs_path = format!("/{}/api/admin/v1/logs/get/", a.tenant);
    let ds_path = format!("/{}/audit/v2/datasources/", a.tenant);
    let is_logs = req.path == logs_path;
    if !is_logs && req.path != ds_path {
        return Outcome::Answer(json_response(
            404,
            json!({"status": "error", "message": "Not Found"}),
        ));
    }
    if req.header("authorization") != Some(world.auth.as_str()) {
        return Outcome::Answer(json_response(
            403,
            json!({"status": "error", "message": "Forbidden"}),
        ));
    }
    if req.header("x-elastica-dbname-resolved") != Some("True") {
        return Outcome::Answer(json_response(
            400,
            json!({"status": "error", "message": "X-Elastica-Dbname-Resolved header missing"}),
        ));
    }
    if !is_logs {
        return Outcome::Answer(json_response(
            200,
            json!({"status": "success", "datasources": [{"name": "Investigate"}, {"name": "Detect"}]}),
        ));
    }
    let fault = match injected(world, b"{\"status\": \"success\", \"logs\": [{\"_id\": ") {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let page = match cached_logs_page(req, world) {
        Ok(p) => p,
        Err(msg) => {
            return Outcome::Answer(json_response(
                400,
                json!({"status": "error", "message": msg}),
            ));
        }
    };
    shaped(fault, page)
}

/// The answer a page gets under `fault`: slow, cut in the middle, or as
/// it is.
pub(crate) fn shaped(fault: Fault, page: Response) -> Outcome {
    match fault {
        Fault::Slow => Outcome::Slow(page),
        Fault::Truncate => Outcome::Truncate(page),
        _ => Outcome::Answer(page),
    }
}

/// The fault for this log request (`--faults`, then `--fault-rate`): the
/// answer itself for those that replace it (`malformed` is the body of a
/// malformed one), else the fault that shapes the page's answer (slow,
/// truncate) or none.
pub(crate) fn injected(world: &World, malformed: &[u8]) -> Result<Fault, Outcome> {
    match next_fault(world) {
        Fault::TooMany(secs) => {
            let mut r = json_response(
                429,
                json!({"status": "error", "message": "Too Many Requests"}),
            );
            r.headers.push(("Retry-After", secs.to_string()));
            Err(Outcome::Answer(r))
        }
        Fault::Status(s) => {
            let msg = if s == 403 {
                "Forbidden"
            } else {
                "Server Error"
            };
            Err(Outcome::Answer(json_response(
                s,
                json!({"status": "error", "message": msg}),
            )))
        }
        Fault::Reset => Err(Outcome::Reset),
        Fault::Malformed | Fault::Corrupt | Fault::InvalidCursor => {
            Err(Outcome::Answer(Response {
                status: 200,
                body: malformed.to_vec(),
                headers: Vec::new(),
            }))
        }
        f => Ok(f),
    }
}

/// The fault for this log request: the next of `--faults`, then one at
/// `--fault-rate`, else none.
pub(crate) fn next_fault(world: &World) -> Fault {
    let a = &world.args;
    let n = world.stats.log_requests.fetch_add(1, Ordering::Relaxed);
    let fault = match world.faults.get(n as usize) {
        Some(f) => *f,
        None if world.args.fault_rate > 0.0 => {
            let mut r = Rng::new(a.seed, 99, n);
            if (r.below(10_000) as f64) < world.args.fault_rate * 100.0 {
                let kinds = if world.faults.is_empty() {
                    &[
                        Fault::TooMany(1),
                        Fault::Status(500),
                        Fault::Status(503),
                        Fault::Truncate,
                        Fault::Reset,
                    ][..]
                } else {
                    &world.faults[..]
                };
                *r.pick(kinds)
            } else {
                Fault::Ok
            }
        }
        None => Fault::Ok,
    };
    if fault != Fault::Ok {
        world.stats.faults.fetch_add(1, Ordering::Relaxed);
    }
    fault
}

/// [`logs_page`], from the cache with `--cache`.
fn cached_logs_page(req: &Request, world: &World) -> Result<Response, String> {
    if !world.args.cache {
        return logs_page(req, world);
    }
    let mut key = req.path.clone();
    for (k, v) in &req.query {
        key.push_str(&format!("&{k}={v}"));
    }
    if let Some(body) = world.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(Response {
            status: 200,
            body,
            headers: Vec::new(),
        });
    }
    let page = logs_page(req, world)?;
    if page.status == 200
        && let Ok(mut c) = world.cache.lock()
    {
        c.insert(key, page.body.clone());
    }
    Ok(page)
}

fn logs_page(req: &Request, world: &World) -> Result<Response, String> {
    let a = &world.args;
    let app = req.param("app").ok_or("app is required")?;
    let detect = match app {
        "Investigate" => false,
        "Detect" => true,
        _ => return Err(format!("unknown app {app}")),
    };
    let since = req
        .param("created_timestamp")
        .and_then(crate::event::parse_timestamp)
        .ok_or("created_timestamp is required (YYYY-MM-DDTHH:MM:SS)")?
        .timestamp();
    let limit = req
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(PAGE_MAX)
        .clamp(1, PAGE_MAX);
    let from: u64 = req.param("from").and_then(|f| f.parse().ok()).unwrap_or(0);
    let filters: Vec<(&str, &str)> = if a.ignore_filters {
        Vec::new()
    } else {
        ["severity", "service", "object_type", "activity_type"]
            .into_iter()
            .filter_map(|k| req.param(k).map(|v| (k, v)))
            .collect()
    };

    let sched = &world.schedule;
    let (first, count) = if detect {
        // The first Detect log at or after `since` (their seconds ascend).
        let (mut lo, mut hi) = (0u64, world.detect_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if data::detect_second(sched, world.detect_count, mid) < since {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let first = lo;
        (first, world.detect_count)
    } else {
        (sched.first_at_or_after(since), sched.total())
    };
    let make = |i: u64| {
        if detect {
            data::detect_with(a.seed, sched, world.detect_count, i, !a.plain)
        } else {
            data::investigate_with(a.seed, sched, i, !a.plain)
        }
    };
    let now = super::sim_now().timestamp();
    let matches = |log: &serde_json::Map<String, Value>| {
        let visible = !a.late
            || log
                .get("inserted_timestamp")
                .and_then(Value::as_str)
                .and_then(crate::event::parse_timestamp)
                .is_none_or(|t| t.timestamp() <= now);
        visible
            && filters
                .iter()
                .all(|(k, v)| log.get(*k).and_then(Value::as_str) == Some(*v))
    };
    let mut logs = Vec::new();
    let total;
    if filters.is_empty() && !a.late {
        total = count - first;
        let start = first + from;
        for i in start..(start + limit).min(count) {
            logs.push(Value::Object(make(i)));
        }
    } else {
        let mut seen = 0u64;
        for i in first..count {
            let log = make(i);
            if !matches(&log) {
                continue;
            }
            if seen >= from && (logs.len() as u64) < limit {
                logs.push(Value::Object(log));
            }
            seen += 1;
        }
        total = seen;
    }
    let next = (from + limit < total).then(|| next_url(req, from + limit));
    Ok(json_response(
        200,
        json!({"status": "success", "logs": logs, "meta": {"limit": limit, "total": total, "from": from}, "next_url": next}),
    ))
}

fn next_url(req: &Request, from: u64) -> String {
    let host = req.header("host").unwrap_or("127.0.0.1");
    let mut q: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k != "from")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    q.push(format!("from={from}"));
    format!("http://{host}{}?{}", req.path, q.join("&"))
}

fn head_bytes(resp: &Response, close: bool) -> Vec<u8> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let typed = resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let mut h = format!(
        "HTTP/1.1 {} {reason}\r\n{}Content-Length: {}\r\nDate: {}\r\n",
        resp.status,
        if typed {
            ""
        } else {
            "Content-Type: application/json\r\n"
        },
        resp.body.len(),
        super::sim_date().format("%a, %d %b %Y %H:%M:%S GMT")
    );
    for (k, v) in &resp.headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    h.into_bytes()
}

async fn write(stream: &mut TcpStream, resp: &Response, close: bool) -> std::io::Result<()> {
    let mut out = head_bytes(resp, close);
    out.extend_from_slice(&resp.body);
    stream.write_all(&out).await?;
    stream.flush().await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let mut target = first.next()?;
    let proxied = target.starts_with("http://");
    if proxied {
        let rest = &target["http://".len()..];
        target = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Request {
        proxied,
        path: decode(path),
        query,
        headers,
        method,
        body: Vec::new(),
    })
}

/// Percent-decoding, with `+` as a space (a query's, a form body's).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(decode("Yahoo+Mail"), "Yahoo Mail");
        assert_eq!(decode("2024-01-02T03%3A04%3A05"), "2024-01-02T03:04:05");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%é"), "%é");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode(&encode("a b&c=d/é")), "a b&c=d/é");
    }
}
