//! The Log Service's official Python SDK (`aliyun-log-python-sdk`, pinned
//! in `tests/sdk/requirements.txt`, installed in `target/sdk-venv` by
//! `./install.sh --test-deps`) against the agent's simulator: list the
//! shards, pull every shard to its end (every log once), a wrong secret
//! refused with `SignatureNotMatch`, and a consumer-group worker of the
//! SDK's that consumes the whole Logstore with checkpoints, then a second
//! worker that resumes from them with nothing repeated
//! (`tests/sdk/sls_sdk.py`). A simulator the vendor's own client accepts
//! is the proof that the agent's source, built on the same wire code,
//! speaks the real protocol.

mod util;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::agent::Sim;

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run ./install.sh --test-deps",
        venv.display()
    );
    venv
}

#[test]
fn the_vendors_python_sdk_reads_the_simulator_and_shares_it_in_a_consumer_group() {
    let python = python();
    let sim = Sim::start(&[
        "--vendor",
        "sls",
        "--tenant",
        "sdk-project",
        "--key-id",
        "AK-sdk",
        "--key-secret",
        "sdk-secret-31",
        "--events",
        "700",
        "--shards",
        "3",
    ]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/sls_sdk.py");
    // The SDK connects to <project>.127.0.0.1:PORT: through the simulator
    // as its HTTP proxy (see the script).
    let proxy = format!("http://127.0.0.1:{}", sim.port);
    let mut child = Command::new(python)
        .arg(script)
        .args(["--port", &sim.port.to_string()])
        .args(["--project", "sdk-project", "--logstore", "demo-logs"])
        .args(["--key-id", "AK-sdk", "--key-secret", "sdk-secret-31"])
        .args(["--events", "700"])
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a worker that never stops is a failure, not a hang.
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            child.kill().unwrap();
            panic!("sls_sdk.py did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100)); // polling the child's exit, not a synchronisation
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "list_shards: 3 shards; pull_logs: 700 logs, each once",
        "a wrong secret: SignatureNotMatch",
        "ConsumerWorker: 700 logs, each once, checkpoints saved",
        "a second ConsumerWorker resumed from the checkpoints: nothing repeated",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}\n{stderr}");
    }
}
