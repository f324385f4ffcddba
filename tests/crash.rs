//! Crash safety: the agent is killed with SIGKILL at many random moments
//! of a run's first 0.4 s (during fetches, writes and state writes, and
//! before the first) and run again until caught up. Every log must arrive
//! at least once; duplicates are counted and must stay within what a kill
//! can repeat: what was in flight (the RELP window; for a TCP stream, one
//! flush batch of 64 KiB plus what the sink holds before it confirms, see
//! `sink::tcp::HOLD`; for a FILE, one batch of 256 KiB), plus the logs
//! confirmed while the cursor file's next write waited (its spacing, see
//! `state::writer::SPACING`, and the write itself). Over RELP and to a FILE
//! the average per kill is held to the in-flight window alone.
//!
//! The random moments come from a seed printed by each test
//! (`CRASH_SEED=n` replays one).

mod util;

use siem_agent::sink::tcp::{HOLD, HOLD_BYTES};
use siem_agent::state::writer::SPACING;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use util::agent::{Agent, Sim, cef_id};
use util::rsyslog::Rsyslog;

const EVENTS: usize = 50_000;
const DETECT: usize = 1_000;
const KILLS: usize = 12;
/// The `--rate` of the runs.
const RATE: usize = 8_000;
/// The window in which a kill may meet a run.
const KILL_WITHIN_MS: u64 = 400;

/// Logs confirmed while the cursor file waits for its next write: its
/// spacing and the write itself (a millisecond, allowed three).
fn write_lag() -> usize {
    RATE * (SPACING.as_millis() as usize + 3) / 1000 + 1
}
/// RELP messages that may await their answer.
const RELP_WINDOW: usize = 128;
/// Bytes of one flush batch (sink/mod.rs): TCP, and FILE (4 times).
const BATCH_BYTES: usize = 64 * 1024;

/// A small deterministic generator for the kill moments.
struct Lcg(u64);
impl Lcg {
    fn new() -> Lcg {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("CRASH_SEED={seed}");
        Lcg(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Runs the agent with `args`, killing it `KILLS` times at random moments,
/// then lets a last run finish. Returns the number of kills that hit a
/// running agent.
fn kill_and_rerun(a: &Agent, args: &[String]) -> usize {
    let mut rng = Lcg::new();
    let mut kills = 0;
    for _ in 0..KILLS {
        let mut child = a.process().args(args).spawn().unwrap();
        let at = Duration::from_millis(rng.below(KILL_WITHIN_MS));
        let started = Instant::now();
        // Kill at `at`, unless the run ends first.
        let mut ended = false;
        while started.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                ended = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2)); // the kill moment, not a synchronisation
        }
        if !ended {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    let out = a.process().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "the last run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kills
}

/// Counts of each id; checks every one is there, and at most `per_kill`
/// duplicates per kill.
fn check(ids: &[String], kills: usize, what: &str, per_kill: usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let duplicates = ids.len() - counts.len();
    println!(
        "{what}: {} logs, {} received, {} unique, {duplicates} duplicates after {kills} kills ({:.1} per kill, bound {per_kill})",
        EVENTS + DETECT,
        ids.len(),
        counts.len(),
        duplicates as f64 / kills.max(1) as f64
    );
    assert_eq!(
        counts.len(),
        EVENTS + DETECT,
        "{what}: every log at least once"
    );
    assert!(
        kills >= KILLS / 2,
        "{what}: only {kills} kills hit a running agent"
    );
    assert!(
        duplicates <= kills * per_kill,
        "{what}: {duplicates} duplicates > {kills} kills x {per_kill}"
    );
}

/// How many frames of `avg` bytes one flush batch of `bytes` holds.
fn batch_of(bytes: usize, avg: usize) -> usize {
    bytes / avg.max(1) + 1
}

fn sim() -> Sim {
    Sim::start(&[
        "--events",
        &EVENTS.to_string(),
        "--detect-events",
        &DETECT.to_string(),
        "--per-second",
        "40",
    ])
}

fn to_rsyslog(socket_type: &str) {
    let rs = Rsyslog::builder().tcp().relp().start();
    let sim = sim();
    let a = Agent::new(&sim.url());
    let target = match socket_type {
        "RELP" => rs.relp_addr(),
        _ => rs.tcp_addr(),
    };
    let args: Vec<String> = [
        "-o",
        "REMOTE",
        "--socket-type",
        socket_type,
        "--severity",
        "all",
        "-t",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([target.to_string(), "--rate".into(), RATE.to_string()])
    .collect();
    let kills = kill_and_rerun(&a, &args);
    // The last run has ended; with TCP the receiver may still be reading.
    let total = || {
        rs.received()
            .iter()
            .filter_map(|m| cef_id(&m.msg))
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    util::wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        total() >= EVENTS + DETECT
    });
    let received = rs.received();
    let ids: Vec<String> = received.iter().filter_map(|m| cef_id(&m.msg)).collect();
    let in_flight = match socket_type {
        "RELP" => RELP_WINDOW,
        _ => {
            let avg = received.iter().map(|m| m.msg.len()).sum::<usize>() / received.len().max(1);
            // A batch is held for HOLD after its flush (or until HOLD_BYTES
            // follow it), and what is flushed meanwhile waits for the next.
            let held = (RATE * 2 * HOLD.as_millis() as usize / 1000).min(2 * HOLD_BYTES / avg + 2);
            batch_of(BATCH_BYTES, avg) + held
        }
    };
    // RELP: on average no more than the window itself (issue 21); one
    // kill may add what was confirmed while the cursor's write waited.
    let per_kill = match socket_type {
        "RELP" => in_flight,
        _ => in_flight + write_lag(),
    };
    check(&ids, kills, socket_type, per_kill);
}

#[test]
fn killed_at_random_moments_over_relp_nothing_is_lost() {
    to_rsyslog("RELP");
}

#[test]
fn killed_at_random_moments_over_tcp_nothing_is_lost() {
    to_rsyslog("TCP");
}

#[test]
fn killed_at_random_moments_to_a_rotated_file_no_line_is_lost_or_cut() {
    let sim = sim();
    let a = Agent::new(&sim.url());
    let file = a.path("out.log");
    let args: Vec<String> = [
        "-o",
        "FILE",
        "--format",
        "json",
        "--severity",
        "all",
        "--rate",
        &RATE.to_string(),
        "--max_bytes",
        "2000000",
        "--backup_count",
        "100",
        "-f",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([file.to_str().unwrap().to_string()])
    .collect();
    let kills = kill_and_rerun(&a, &args);
    let mut ids = Vec::new();
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(a.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if !p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("out.log")
        {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        bytes += text.len();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends inside a line",
            p.display()
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a cut line in {} ({e}): {line:.80}", p.display()));
            ids.push(util::agent::id_of(&v));
        }
    }
    assert!(files > 5, "the file was rotated ({files} files)");
    let avg = bytes / ids.len().max(1);
    check(
        &ids,
        kills,
        "FILE",
        // On average no more than one batch (issue 21).
        batch_of(4 * BATCH_BYTES, avg),
    );
}
