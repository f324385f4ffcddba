//! The I/O floor of an export: what the agent cannot avoid, and nothing
//! else. It reads the same pages as the agent (CloudSOC's API, both apps,
//! HTTP keep-alive through the same HTTP client, bodies read whole and
//! decompressed as the agent's are) and writes the same number of bytes to
//! the same TCP sink in the agent's batches (64 KiB), with no parsing (the
//! number of logs and `next_url` are read from the page's last kilobyte,
//! its `meta`) and no formatting (each log is one ready frame of
//! FRAME_BYTES, LF at its end).
//!
//!   cargo run --release --example io_floor -- API_SERVER TENANT KEY_ID KEY_SECRET SINK FRAME_BYTES [START]
//!
//! `bench/compare.sh` runs it beside the agent; its CPU per log is the
//! floor the agent's is measured against.

use std::io::Write;

/// The agent's TCP batch (sink/tcp.rs).
const BATCH: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!(
            "usage: io_floor API_SERVER TENANT KEY_ID KEY_SECRET SINK_HOST:PORT FRAME_BYTES [START]"
        );
        std::process::exit(2);
    }
    let (api, tenant, key_id, key_secret, sink) =
        (&args[0], &args[1], &args[2], &args[3], &args[4]);
    let frame_bytes: usize = args[5].parse().expect("FRAME_BYTES");
    let start = args
        .get(6)
        .cloned()
        .unwrap_or_else(|| "2000-01-01T00:00:00".to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let logs = rt.block_on(run(
        api,
        tenant,
        key_id,
        key_secret,
        sink,
        frame_bytes,
        &start,
    ));
    eprintln!("io_floor: {logs} logs");
}

async fn run(
    api: &str,
    tenant: &str,
    key_id: &str,
    key_secret: &str,
    sink: &str,
    frame_bytes: usize,
    start: &str,
) -> u64 {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    let basic = siem_agent::source::http::basic_credentials(
        key_id,
        &siem_agent::secret::Secret::new(key_secret),
    );
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}")).expect("header"),
    );
    headers.insert(
        "X-Elastica-Dbname-Resolved",
        HeaderValue::from_static("True"),
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .tls_certs_only(Vec::new())
        .build()
        .expect("client");
    let mut out = std::net::TcpStream::connect(sink).expect("sink");
    let _ = out.set_nodelay(true);
    let mut frame = vec![b'x'; frame_bytes.max(1)];
    *frame.last_mut().expect("a byte") = b'\n';
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH + frame.len());
    let mut total = 0u64;
    for (app, subtype) in [("Investigate", "all"), ("Detect", "incidents")] {
        let mut url = format!(
            "{}{tenant}/api/admin/v1/logs/get/?app={app}&subtype={subtype}&limit=1000&created_timestamp={}",
            api.trim_end_matches('/').to_string() + "/",
            start.replace(':', "%3A")
        );
        loop {
            let body = client
                .get(&url)
                .send()
                .await
                .expect("page")
                .bytes()
                .await
                .expect("body");
            // The page's tail (its meta and next_url come after the logs)
            // says how many logs it holds: nothing else is looked at.
            let tail = &body[body.len().saturating_sub(TAIL)..];
            let logs = logs_in(tail);
            for _ in 0..logs {
                batch.extend_from_slice(&frame);
                if batch.len() >= BATCH {
                    out.write_all(&batch).expect("sink write");
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                out.write_all(&batch).expect("sink write");
                batch.clear();
            }
            total += logs;
            match next_url(tail) {
                Some(next) => url = next,
                None => break,
            }
        }
    }
    out.flush().expect("flush");
    let _ = out.shutdown(std::net::Shutdown::Write);
    total
}

/// How much of a page's end holds its `meta` and `next_url`.
const TAIL: usize = 1024;

/// The number of logs of a page, from its `meta` (`limit`, `total` and
/// `from`: at most `limit` from `from` of `total`).
fn logs_in(tail: &[u8]) -> u64 {
    let number = |key: &[u8]| -> Option<u64> {
        let at = find(tail, key)? + key.len();
        let digits: Vec<u8> = tail[at..]
            .iter()
            .skip_while(|b| !b.is_ascii_digit())
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        std::str::from_utf8(&digits).ok()?.parse().ok()
    };
    match (
        number(b"\"limit\""),
        number(b"\"total\""),
        number(b"\"from\""),
    ) {
        (Some(limit), Some(total), Some(from)) => limit.min(total.saturating_sub(from)),
        _ => 0,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let p = hay[i..].iter().position(|&b| b == first)?;
        i += p;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The body's `"next_url": "..."`, found by scanning (null: none).
fn next_url(body: &[u8]) -> Option<String> {
    let key = b"\"next_url\"";
    // The last occurrence: the logs come before it.
    let mut at = None;
    let mut i = 0;
    while let Some(p) = find(&body[i..], key) {
        at = Some(i + p);
        i += p + key.len();
    }
    let rest = &body[at? + key.len()..];
    let q = rest.iter().position(|&b| b == b'"' || b == b'n')?;
    if rest[q] != b'"' {
        return None; // null
    }
    let s = &rest[q + 1..];
    let end = s.iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&s[..end]).replace("\\/", "/"))
}
