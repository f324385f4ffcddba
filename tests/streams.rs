//! A run's streams side by side (`--parallel-streams`): CloudSOC's two
//! apps read at once from a simulator that delays every answer, as a
//! distant API does, so that both streams have pages in flight together.
//! Whatever the interleaving, every log is written once, each stream's
//! logs keep their order, each stream keeps its own cursor, and a run
//! stopped or capped midway is finished by the next one without a loss or
//! a repeat.

mod util;

use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use util::agent::{Agent, Sim, exported, id_of};

/// Six pages of Investigate logs and three of Detect (CloudSOC's pages
/// hold 1000 logs).
const INVESTIGATE: usize = 6000;
const DETECT: usize = 3000;

/// A simulator serving `INVESTIGATE` + `DETECT` logs, each answer 40 ms
/// late.
fn slow_sim() -> Sim {
    Sim::start(&[
        "--events",
        &INVESTIGATE.to_string(),
        "--detect-events",
        &DETECT.to_string(),
        "--latency-ms",
        "40",
    ])
}

const ARGS: [&str; 2] = ["--severity", "all"];

/// The (app, id) of each line, in the order written.
fn written(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|v| (v["app"].as_str().unwrap().to_string(), id_of(v)))
        .collect()
}

/// The ids of `app`'s lines, in the order written.
fn of_app(lines: &[(String, String)], app: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|(a, _)| a == app)
        .map(|(_, id)| id.clone())
        .collect()
}

/// Whether the lines of each app form one block (one stream after the
/// other).
fn one_block_per_app(lines: &[(String, String)]) -> bool {
    let changes = lines.windows(2).filter(|w| w[0].0 != w[1].0).count();
    changes <= 1
}

/// Every log of the simulator, each once.
fn assert_each_once(lines: &[(String, String)]) {
    let mut ids: Vec<&String> = lines.iter().map(|(_, id)| id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a log was written twice");
    assert_eq!(n, INVESTIGATE + DETECT, "every log once");
}

#[test]
fn streams_in_flight_together_write_each_log_once_in_its_streams_order() {
    let sim = slow_sim();

    // One stream after the other: the order each stream's logs come in.
    let one = Agent::new(&sim.url());
    one.file_cmd()
        .args(ARGS)
        .args(["--parallel-streams", "1"])
        .assert()
        .success();
    let one_lines = written(&one.json_lines());
    assert_each_once(&one_lines);
    assert!(one_block_per_app(&one_lines), "one stream at a time");
    // (The simulator numbers each stream's logs in its order, which the
    // tests below rely on.)
    for app in ["Investigate", "Detect"] {
        let mut sorted = of_app(&one_lines, app);
        sorted.sort();
        assert_eq!(of_app(&one_lines, app), sorted, "{app}");
    }

    // Both at once.
    let both = Agent::new(&sim.url());
    both.file_cmd().args(ARGS).assert().success();
    let lines = written(&both.json_lines());
    assert_each_once(&lines);
    assert!(
        !one_block_per_app(&lines),
        "the two streams were read one after the other: {:?}",
        lines.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>()
    );
    for app in ["Investigate", "Detect"] {
        assert_eq!(
            of_app(&lines, app),
            of_app(&one_lines, app),
            "{app}'s logs in their order"
        );
    }

    // Each stream's cursor, at its own last log.
    let state = both.state().expect("state file");
    for (app, last) in [
        ("Investigate", format!("inv-{:010}", INVESTIGATE - 1)),
        ("Detect", format!("det-{:08}", DETECT - 1)),
    ] {
        let ids = state["cursors"][app]["ids"].as_array().expect(app);
        assert!(ids.iter().any(|i| i == &last), "{app}: {state}");
    }
    assert_ne!(
        state["cursors"]["Investigate"]["ids"], state["cursors"]["Detect"]["ids"],
        "cursors apart"
    );
    let status = both.status().unwrap();
    assert_eq!(status["apps"]["Investigate"]["exported"], INVESTIGATE);
    assert_eq!(status["apps"]["Detect"]["exported"], DETECT);

    // Caught up: the next run writes nothing.
    both.file_cmd().args(ARGS).assert().success();
    assert_eq!(both.json_lines().len(), INVESTIGATE + DETECT);
    assert_eq!(exported(&both), 0);
}

#[test]
fn a_run_stopped_with_streams_in_flight_is_finished_by_the_next_without_loss_or_repeat() {
    let sim = slow_sim();
    let a = Agent::new(&sim.url());
    let mut child = a
        .process()
        .args(ARGS)
        .args(["--format", "json", "--rate", "500", "-o", "FILE", "-f"])
        .arg(a.path("out.log"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: both streams have written some lines.
    let both_begun = util::wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        let text = std::fs::read_to_string(a.path("out.log")).unwrap_or_default();
        text.contains(r#""app":"Investigate""#) && text.matches(r#""app":"Detect""#).count() >= 10
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(both_begun, "both streams write before the stop");
    assert_eq!(status.code(), Some(1));
    let before = written(&a.json_lines());
    assert!(before.len() < INVESTIGATE + DETECT, "stopped midway");
    // What was written was confirmed and committed, stream by stream.
    let st = a.status().unwrap();
    for app in ["Investigate", "Detect"] {
        assert_eq!(
            st["apps"][app]["exported"].as_u64().unwrap() as usize,
            of_app(&before, app).len(),
            "{app}: confirmed = written"
        );
    }

    a.file_cmd().args(ARGS).assert().success();
    let lines = written(&a.json_lines());
    assert_each_once(&lines);
    let mut sorted = lines.clone();
    sorted.sort();
    for app in ["Investigate", "Detect"] {
        assert_eq!(
            of_app(&lines, app),
            of_app(&sorted, app),
            "{app}'s logs in their order across the two runs"
        );
    }
}

#[test]
fn max_events_caps_the_run_across_its_streams_and_the_next_runs_go_on() {
    let sim = slow_sim();
    let a = Agent::new(&sim.url());
    let cap = 2500;
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 10, "caught up within 10 runs");
        let before = a.json_lines().len();
        a.file_cmd()
            .args(ARGS)
            .args(["--max-events", &cap.to_string()])
            .assert()
            .success();
        let n = a.json_lines().len() - before;
        assert_eq!(exported(&a), n, "status counts what was written");
        assert!(n <= cap, "run {runs} wrote {n} logs, over the cap");
        if n < cap {
            break;
        }
    }
    assert_eq!(runs, (INVESTIGATE + DETECT) / cap + 1);
    let lines = written(&a.json_lines());
    assert_each_once(&lines);
    let mut sorted = lines.clone();
    sorted.sort();
    for app in ["Investigate", "Detect"] {
        assert_eq!(of_app(&lines, app), of_app(&sorted, app), "{app} in order");
    }
}
