//! The hot path alone, in a release build: plain simulator pages (as
//! `bench/compare.sh` serves them) read by the page reader, then written as
//! CEF (and the other formats) in RFC 5424 with LF framing. Prints the
//! time per log of each stage on one thread (the best of several rounds,
//! so that a noisy machine shows its quiet moments), to compare changes
//! side by side; `bench/compare.sh` measures the whole agent.
//!
//!     cargo bench --bench hotpath [-- FORMAT...]

mod common;

use siem_agent::encode::{Format, Stamp};
use siem_agent::event::App;
use siem_agent::simulate::data::{Schedule, investigate_with};
use siem_agent::source::cloudsoc::parse_page;
use std::time::Instant;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PAGES: u64 = 20;
const ROUNDS: usize = 9;

/// Nanoseconds since the first call.
fn cpu_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn main() {
    let schedule = Schedule::new(3, PAGES * 1000, 200, None, 1_790_000_000);
    let bodies: Vec<Vec<u8>> = (0..PAGES)
        .map(|p| {
            let logs: Vec<serde_json::Value> = (p * 1000..(p + 1) * 1000)
                .map(|i| serde_json::Value::Object(investigate_with(3, &schedule, i, false)))
                .collect();
            serde_json::to_vec(&serde_json::json!({"logs": logs, "next_url": null})).unwrap()
        })
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let formats: Vec<(&str, Format)> = common::FORMATS
        .into_iter()
        .filter(|(name, _)| name != &"leef1") // the same code as leef
        .filter(|(name, _)| wanted.is_empty() || wanted.iter().any(|w| w == name))
        .collect();
    let stamp = Stamp::now();
    let logs = (PAGES * 1000) as f64;
    let mut best_parse = u64::MAX;
    let mut best = vec![u64::MAX; formats.len()];
    let mut out_bytes = 0usize;
    for _ in 0..ROUNDS {
        let t = cpu_ns();
        let pages: Vec<_> = bodies
            .iter()
            .map(|b| parse_page(App::Investigate, b.as_slice()).expect("a plain page parses"))
            .collect();
        best_parse = best_parse.min(cpu_ns() - t);
        for (k, &(_, format)) in formats.iter().enumerate() {
            // The default limit for REMOTE over TCP.
            let enc = common::encoder(format, Some(8096));
            let mut out = Vec::with_capacity(4096);
            let mut total = 0;
            let t = cpu_ns();
            for page in &pages {
                for ev in &page.events {
                    out.clear();
                    enc.encode(ev, &stamp, &mut out);
                    total += out.len();
                }
            }
            best[k] = best[k].min(cpu_ns() - t);
            if k == 0 {
                out_bytes = total;
            }
        }
    }
    println!(
        "read   {:6.3} µs/log ({} bytes of JSON per log)",
        best_parse as f64 / logs / 1000.0,
        bytes / (PAGES as usize * 1000)
    );
    for ((name, _), ns) in formats.iter().zip(&best) {
        println!("{name:7}{:6.3} µs/log", *ns as f64 / logs / 1000.0);
    }
    println!(
        "({}: {} bytes per frame)",
        formats.first().map_or("", |f| f.0),
        out_bytes / (PAGES as usize * 1000)
    );
}
