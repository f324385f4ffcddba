//! The equal-work Python agent that `bench/compare.sh` measures the agent
//! against (`bench/py_equal.py`) does the agent's work: for the same logs
//! it sends the same bytes as the agent's CEF in RFC 5424 (the PROCID
//! aside), so that the ratio compares equal work.

mod util;

use std::io::Read;
use util::agent::{Agent, Sim};

/// Every line, with the RFC 5424 PROCID (the writer's pid) made `P`.
fn normalized(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.splitn(6, ' ').collect();
            if f.len() == 6 {
                f[4] = "P";
            }
            f.join(" ")
        })
        .collect()
}

#[test]
fn the_equal_work_python_agent_sends_the_agents_bytes() {
    let sim = Sim::start(&["--plain", "--events", "400", "--detect-events", "40"]);
    let a = Agent::new(&sim.url());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        got
    });
    let since = (chrono::Utc::now() - chrono::Duration::days(179))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let status = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/py_equal.py"))
        .arg(a.config_path())
        .arg(addr.to_string())
        .arg(&since)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success());
    let python = reader.join().unwrap();
    let out = a
        .cmd()
        .args(["--severity", "all", "--settle", "0", "--dry-run"])
        .args(["--format", "cef", "--syslog-format", "rfc5424"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let agent = String::from_utf8(out.stdout).unwrap();
    let (p, g) = (normalized(&python), normalized(&agent));
    assert_eq!(p.len(), 440);
    for (i, (x, y)) in p.iter().zip(&g).enumerate() {
        assert_eq!(x, y, "line {i}");
    }
    assert_eq!(p.len(), g.len());
}
