//! Hostile input at scale, in a release build: 100 000 generated logs
//! (every seventh carries a hostile value: pipes, escapes, CR/LF, NUL, ANSI
//! codes, forged CEF and syslog lines, 10 000-character values, nested
//! values) go through the page parser, also with random bytes corrupted,
//! and then through every format with an RFC 5424 header and a 2048-byte
//! limit. No panic; exactly one frame per log, with no raw CR, LF or NUL
//! inside; none over the limit. Prints the time each format takes.
//!
//!     cargo bench --bench scale

mod common;

use serde_json::Value;
use siem_agent::encode::{Encoder, Stamp};
use siem_agent::event::App;
use siem_agent::simulate::data::{Schedule, investigate, mix};
use siem_agent::source::cloudsoc::parse_page;
use std::time::{Duration, Instant};

const PAGES: u64 = 100;

fn main() {
    let schedule = Schedule::new(3, PAGES * 1000, 40, None, 1_790_000_000);
    let encoders: Vec<(&str, Encoder)> = common::FORMATS
        .iter()
        .map(|&(name, format)| (name, common::encoder(format, Some(2048))))
        .collect();
    let stamp = Stamp::now();
    let mut spent = vec![Duration::ZERO; encoders.len()];
    let mut parse = Duration::ZERO;
    let (mut corrupt_ok, mut corrupt_err) = (0u64, 0u64);
    let mut logs_seen = 0u64;
    let mut out = Vec::with_capacity(4096);
    for p in 0..PAGES {
        let logs: Vec<Value> = (p * 1000..(p + 1) * 1000)
            .map(|i| Value::Object(investigate(3, &schedule, i)))
            .collect();
        let body =
            serde_json::to_vec(&serde_json::json!({"logs": logs, "next_url": null})).unwrap();
        for k in 0..4u64 {
            let mut bad = body.clone();
            for j in 0..(1 + k * 4) {
                let at = (mix(p * 1000 + k * 31 + j) % bad.len() as u64) as usize;
                bad[at] = (mix(p * 77 + k * 13 + j) & 0xff) as u8;
            }
            match parse_page(App::Investigate, bad.as_slice()) {
                Ok(_) => corrupt_ok += 1,
                Err(_) => corrupt_err += 1,
            }
        }
        let t = Instant::now();
        let page = parse_page(App::Investigate, body.as_slice()).expect("a generated page parses");
        parse += t.elapsed();
        assert_eq!(page.events.len(), 1000);
        logs_seen += page.events.len() as u64;
        for (k, (name, enc)) in encoders.iter().enumerate() {
            let t = Instant::now();
            for ev in &page.events {
                out.clear();
                enc.encode(ev, &stamp, &mut out);
                assert_eq!(out.last(), Some(&b'\n'), "{name}");
                let msg = &out[..out.len() - 1];
                assert!(
                    !msg.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0),
                    "{name}: a raw CR, LF or NUL"
                );
                assert!(msg.len() <= 2048, "{name}: {} bytes", msg.len());
            }
            spent[k] += t.elapsed();
        }
    }
    println!(
        "parsed {logs_seen} logs in {:.2}s ({:.0} logs/s); corrupted pages: {corrupt_ok} parsed, {corrupt_err} refused, none panicked",
        parse.as_secs_f64(),
        logs_seen as f64 / parse.as_secs_f64()
    );
    for ((name, _), d) in encoders.iter().zip(&spent) {
        println!(
            "{name:8} {logs_seen} logs, one frame each, in {:.2}s ({:.0} logs/s)",
            d.as_secs_f64(),
            logs_seen as f64 / d.as_secs_f64()
        );
    }
}
