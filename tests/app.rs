//! The orchestration as library code (`siem_agent::app`), called without
//! the binary's `main`: one config's run against the simulator (itself
//! the real binary, on 127.0.0.1), a run that finds the lock held, one a
//! signal stopped before it began, and a config that cannot be read, each
//! with the outcome, the report and the error kind the metrics show.

mod util;

use clap::Parser;
use siem_agent::app::{AppError, Outcome, export::export};
use siem_agent::cli::Cli;
use siem_agent::cli::settings::Settings;
use siem_agent::metrics::RunReport;
use siem_agent::state::{Lock, StateDir};
use tokio::sync::watch;
use util::agent::{Agent, Sim};

/// The settings of `siem-agent ARGS` for `a`'s config, writing JSON lines
/// to its `out.log`.
fn settings(a: &Agent, args: &[&str]) -> Settings {
    let config = a.config_path();
    let out = a.path("out.log");
    let mut argv = vec![
        "siem-agent",
        "--config",
        config.to_str().unwrap(),
        "--retry-delay-ms",
        "20",
        "-o",
        "FILE",
        "--format",
        "json",
        "-f",
        out.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("flags");
    Settings::from_args(cli.export).expect("settings")
}

/// One config's run on a current-thread runtime, as `main` runs it;
/// `signal`: a stop asked for before the run begins.
fn run(
    settings: &Settings,
    signal: Option<&'static str>,
) -> (Result<Outcome, AppError>, RunReport) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut report = RunReport::default();
    let (_tx, stop) = watch::channel(signal);
    let result = rt.block_on(export(settings, &mut report, stop));
    (result, report)
}

#[test]
fn a_configs_run_exports_every_stream_and_fills_the_report() {
    let sim = Sim::start(&["--events", "300", "--detect-events", "40"]);
    let a = Agent::new(&sim.url());
    let s = settings(&a, &["--severity", "all"]);

    let (result, report) = run(&s, None);
    assert!(matches!(result, Ok(Outcome::Done)), "{result:?}");
    assert_eq!(report.source, Some("cloudsoc"));
    assert_eq!(report.apps["Investigate"].exported, 300);
    assert_eq!(report.apps["Detect"].exported, 40);
    assert!(report.lag_seconds.contains_key("Investigate"));
    assert_eq!(a.json_lines().len(), 340);
    assert_eq!(a.status().unwrap()["state"], "succeeded");

    // Caught up: nothing more.
    let (result, report) = run(&s, None);
    assert!(matches!(result, Ok(Outcome::Done)), "{result:?}");
    assert_eq!(report.apps["Investigate"].exported, 0);
    assert_eq!(a.json_lines().len(), 340);
}

#[test]
fn a_run_that_finds_the_lock_held_does_nothing() {
    let sim = Sim::start(&["--events", "30"]);
    let a = Agent::new(&sim.url());
    let s = settings(&a, &[]);
    let state = StateDir::open(a.dir.path()).unwrap();
    let held = Lock::acquire(&state).unwrap().expect("the lock is free");

    let (result, report) = run(&s, None);
    assert!(matches!(result, Ok(Outcome::Locked)), "{result:?}");
    assert!(report.apps.is_empty());
    assert!(a.json_lines().is_empty());
    assert!(a.state().is_none(), "no cursor written");
    drop(held);

    let (result, _) = run(&s, None);
    assert!(matches!(result, Ok(Outcome::Done)), "{result:?}");
}

#[test]
fn a_signal_before_the_first_request_ends_the_run_with_nothing_moved() {
    let sim = Sim::start(&["--events", "30"]);
    let a = Agent::new(&sim.url());
    let (result, _) = run(&settings(&a, &[]), Some("SIGTERM"));
    let e = result.expect_err("stopped");
    assert_eq!(e.kind(), "signal", "{e}");
    assert!(!e.reader_gone());
    assert!(e.to_string().contains("stopped by SIGTERM"), "{e}");
    assert!(a.json_lines().is_empty());
    assert!(a.state().is_none(), "no cursor written");
}

#[test]
fn a_config_that_cannot_be_read_is_a_config_error_naming_the_file() {
    let a = Agent::new("http://127.0.0.1:9/");
    a.write_config("{ not json");
    let (result, _) = run(&settings(&a, &[]), None);
    let e = result.expect_err("refused");
    assert_eq!(e.kind(), "config", "{e}");
    assert!(
        siem_agent::report::one_line(&e).contains("config.json"),
        "{e}"
    );
}

#[test]
fn an_api_that_refuses_the_key_is_a_source_error_of_the_stream() {
    let sim = Sim::start(&["--events", "30", "--key-secret", "another"]);
    let a = Agent::new(&sim.url());
    let (result, report) = run(&settings(&a, &["--retries", "0"]), None);
    let e = result.expect_err("refused");
    assert_eq!(e.kind(), "source", "{e}");
    assert_eq!(a.status().unwrap()["state"], "failed");
    assert_eq!(report.source, Some("cloudsoc"));
    let line = siem_agent::report::one_line(&e);
    assert!(!line.contains(util::agent::KEY_SECRET), "{line}");
}
