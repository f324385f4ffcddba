//! The agent under test and the simulator it talks to, both the real
//! binary: `Sim` runs `siem-agent simulate` (stopped by pid on drop);
//! `Agent` holds a config file and a state directory in a temp dir.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The siem-agent binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_siem-agent"))
}

/// `siem-agent simulate` on an ephemeral port of 127.0.0.1.
pub struct Sim {
    child: Child,
    pub port: u16,
}

impl Sim {
    /// Starts the simulator with `args` and waits for its readiness line.
    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(bin())
            .arg("simulate")
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start siem-agent simulate");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("simulator did not report its port within 20 s");
            }
        };
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected simulator line {line:?}"));
        Sim { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const KEY_ID: &str = "demo-key";
pub const KEY_SECRET: &str = "demo-secret";
pub const TENANT: &str = "demo";

/// A config file and a state directory for one agent.
pub struct Agent {
    pub dir: tempfile::TempDir,
}

impl Agent {
    /// An agent whose config points at `api_server` with the simulator's
    /// default credentials.
    pub fn new(api_server: &str) -> Agent {
        Agent::with_config(&serde_json::json!({
            "user_id": "u-1",
            "api_server": api_server,
            "key_id": KEY_ID,
            "key_secret": KEY_SECRET,
            "tenant": TENANT,
        }))
    }

    pub fn with_config(config: &Value) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let a = Agent { dir };
        a.write_config(&config.to_string());
        a
    }

    pub fn write_config(&self, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.config_path();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.json")
    }

    /// The agent with its config, its own log file and fast retries.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin());
        c.arg("--config")
            .arg(self.config_path())
            .arg("--log-file")
            .arg(self.path("agent.log"))
            .args(["--retry-delay-ms", "20", "--http-timeout", "10"])
            .env_remove("SIEM_AGENT_PROXY_PASSWORD")
            .timeout(Duration::from_secs(120));
        c
    }

    /// The agent as a plain process (to kill it, or close its pipes), with
    /// its config and log file.
    pub fn process(&self) -> std::process::Command {
        let mut c = Command::new(bin());
        c.arg("--config")
            .arg(self.config_path())
            .arg("--log-file")
            .arg(self.path("agent.log"));
        c
    }

    /// The agent writing JSON lines to `out.log` in its directory.
    pub fn file_cmd(&self) -> assert_cmd::Command {
        let mut c = self.cmd();
        c.args(["-o", "FILE", "--format", "json", "-f"])
            .arg(self.path("out.log"));
        c
    }

    pub fn state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path("export_log.state")).ok()?;
        Some(serde_json::from_str(&text).expect("state file is JSON"))
    }

    pub fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path("last_job.status")).ok()?;
        Some(serde_json::from_str(&text).expect("status file is JSON"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
    }

    /// The JSON lines written to `out.log`.
    pub fn json_lines(&self) -> Vec<Value> {
        read_json_lines(&self.path("out.log"))
    }
}

/// Every line of a file, parsed as JSON (panics on a line that is not).
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l:?}"))
        })
        .collect()
}

/// The `_id` of a JSON line.
pub fn id_of(v: &Value) -> String {
    match &v["_id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// This machine's host name, as the agent writes it in RFC 5424 headers.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// How many logs a run exported, all apps, from its status file.
pub fn exported(a: &Agent) -> usize {
    let s = a.status().expect("status");
    s["apps"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["exported"].as_u64().unwrap() as usize)
        .sum()
}

/// The `externalId=...` of a CEF message.
pub fn cef_id(msg: &str) -> Option<String> {
    let start = msg.find("externalId=")? + "externalId=".len();
    Some(msg[start..].split(' ').next()?.to_string())
}

/// What `a` writes in `format` to a file, line by line (the run must
/// succeed).
pub fn lines_in(a: &Agent, format: &str) -> Vec<String> {
    let path = a.path(&format!("out.{format}"));
    let _ = std::fs::remove_file(&path);
    a.cmd()
        .args(["-o", "FILE", "--format", format, "-f"])
        .arg(&path)
        .assert()
        .success();
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// A line of `format` from a source whose CEF and LEEF headers name
/// `vendor_product` (`MCAS|SIEM_Agent`) and whose RFC 5424 structured data
/// is `[sd_id first_param="`: no CR or NUL, and no forged event (a
/// hostile value's) at its start.
pub fn assert_well_formed(format: &str, line: &str, vendor_product: &str, sd_start: &str) {
    assert!(
        !line.contains('\r') && !line.contains('\0'),
        "{format}: {line:?}"
    );
    assert!(
        !line.starts_with("CEF:0|Evil") && !line.starts_with("<13>1 2023-01-01T00:00:00Z"),
        "{line}"
    );
    match format {
        "cef" => assert!(
            line.starts_with(&format!("CEF:0|{vendor_product}|")),
            "{line}"
        ),
        "leef" => assert!(
            line.starts_with(&format!("LEEF:2.0|{vendor_product}|")),
            "{line}"
        ),
        "leef1" => assert!(
            line.starts_with(&format!("LEEF:1.0|{vendor_product}|")),
            "{line}"
        ),
        "json" => {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v.is_object(), "{line}");
        }
        "rfc5424" => assert!(line.contains(&format!(" [{sd_start}")), "{line}"),
        _ => {}
    }
}

/// Every line format the agent writes.
pub const LINE_FORMATS: [&str; 6] = ["cef", "leef", "leef1", "kv", "json", "rfc5424"];
