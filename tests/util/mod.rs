//! Helpers shared by the integration tests (each tests/*.rs includes
//! `mod util;`): the agent and its simulator, and a real rsyslog.
#![allow(dead_code)]

pub mod agent;
pub mod certs;
pub mod fleet;
pub mod rsyslog;

use std::time::{Duration, Instant};

/// Polls `check` every `every` until it returns true or `timeout` passes;
/// returns whether it did. For readiness conditions, never as a sleep.
pub fn wait_until(timeout: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}
pub mod stub;

/// Runs a shell command line with its stdin, stdout and stderr on a
/// pseudo-terminal (util-linux `script`), as a user at a terminal would;
/// returns what the terminal showed (stdout of `script`).
pub fn on_terminal(cmd: &str) -> std::process::Output {
    std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .output()
        .expect("script (util-linux)")
}
