//! A local clock far off from the API's changes nothing: what is exported
//! is decided on the server's time (its `Date` header) and the logs' own
//! times. The agent runs under faketime; the simulator keeps real time.

mod util;

use util::agent::{Agent, Sim, bin};

fn run_at(a: &Agent, offset: &str) -> std::process::Output {
    std::process::Command::new("faketime")
        .args(["-f", offset])
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .arg(bin())
        .arg("--config")
        .arg(a.config_path())
        .arg("--log-file")
        .arg(a.path("agent.log"))
        .args([
            "--retry-delay-ms",
            "20",
            "--severity",
            "all",
            "-o",
            "FILE",
            "--format",
            "json",
            "-f",
        ])
        .arg(a.path("out.log"))
        .output()
        .expect("faketime: run ./install.sh --test-deps")
}

#[test]
fn a_clock_far_ahead_or_behind_exports_the_same() {
    let sim = Sim::start(&["--events", "500", "--detect-events", "50"]);
    for (offset, words) in [("+400d", "ahead of"), ("-400d", "behind"), ("+0", "")] {
        let a = Agent::new(&sim.url());
        let out = run_at(&a, offset);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{offset}: {stderr}");
        assert_eq!(a.json_lines().len(), 550, "{offset}");
        if words.is_empty() {
            assert!(!stderr.contains("local clock"), "{stderr}");
        } else {
            // About 400 days (a second or so less, the request's time).
            let warned = stderr.contains("the local clock is 400 days 0 h")
                || stderr.contains("the local clock is 399 days 23 h");
            assert!(
                warned && stderr.contains(&format!("{words} the API server's")),
                "{offset}: {stderr}"
            );
        }
        // A second run continues from the cursor: nothing new, nothing again.
        let out = run_at(&a, offset);
        assert!(out.status.success());
        assert_eq!(a.json_lines().len(), 550, "{offset}: second run");
    }
}
