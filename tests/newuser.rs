//! What a new user trips over (issue 10, section 4): each answer is one
//! clear line, and the things they try by hand do what they expect.

mod util;

use std::process::{Command, Stdio};
use util::agent::{Agent, Sim, bin};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_example_config_unchanged_is_named_as_such() {
    let a = Agent::new("https://unused.invalid/");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.json"))
            .unwrap();
    a.write_config(&example);
    let out = a.cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("still holds the example's placeholder values"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn an_unknown_config_key_is_warned_about_by_name() {
    let sim = Sim::start(&["--events", "3", "--detect-events", "0"]);
    let a = Agent::with_config(&serde_json::json!({
        "api_server": sim.url(), "key_id": util::agent::KEY_ID,
        "key_secret": util::agent::KEY_SECRET, "tenant": util::agent::TENANT,
        "tenat": "typo"
    }));
    let out = a.file_cmd().args(["--severity", "all"]).output().unwrap();
    assert!(out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("unknown key \"tenat\" (did you mean \"tenant\"?) ignored"),
        "{e}"
    );
    // check says it too, as a warning.
    let out = Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(a.config_path())
        .args(["-o", "STREAM"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARN config:") && l.contains("did you mean \"tenant\"?")),
        "{text}"
    );
}

#[test]
fn errors_are_short_lines_and_debug_keeps_the_detail() {
    let a = Agent::new("http://127.0.0.1:9/");
    let out = a
        .cmd()
        .args(["--retries", "0", "-o", "STREAM", "-d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    let line = e.lines().last().unwrap();
    assert!(line.len() < 160, "{} chars: {line}", line.len());
    assert!(!line.contains("created_timestamp="), "{line}");
    assert!(line.contains("Connection refused"), "{line}");
    // The whole chain, query included, is in the debug log.
    assert!(a.log().contains("created_timestamp="), "{}", a.log());
}

#[test]
fn global_options_before_a_subcommand() {
    let a = Agent::new("http://127.0.0.1:9/");
    let out = Command::new(bin())
        .arg("--config")
        .arg(a.config_path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state_dir"], a.dir.path().to_str().unwrap());
    let out = Command::new(bin())
        .arg("--config")
        .arg(a.config_path())
        .args(["check", "--demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL flags: --demo"));
}

/// `cmd | head -1` through a shell: the agent's exit code and stderr.
fn into_head(args: &str) -> (i32, String) {
    let script = format!(
        "{} {args} 2>err | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        bin().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap_or_default();
    (code, err)
}

#[test]
fn a_dry_run_or_demo_into_head_ends_quietly() {
    let (code, err) = into_head("--demo");
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("error"),
        "{err}"
    );
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let (code, err) = into_head(&format!(
        "--config {} --log-file {} --severity all --dry-run",
        a.config_path().display(),
        a.path("agent.log").display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn a_dry_run_says_what_it_printed_and_a_demo_what_it_exported() {
    let sim = Sim::start(&["--events", "40", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let out = a
        .cmd()
        .args(["--dry-run", "--settle", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(
        e.contains(&format!("dry run: {printed} logs printed")) && e.contains("filtered out"),
        "{e}"
    );
    let out = Command::new(bin())
        .arg("--demo")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(
        e.contains("demo: exported ") && e.contains("filtered out"),
        "{e}"
    );
    // A demo's dry run says it printed, not that it exported.
    let out = Command::new(bin())
        .args(["--demo", "--dry-run", "--max-events", "5"])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("demo: dry run, printed 5 logs"), "{e}");
    assert!(!e.contains("exported"), "{e}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
}

/// Run by hand, an export ends with one line saying what it did (the
/// progress line is cleared); under cron (no terminal), nothing.
#[test]
fn an_interactive_run_ends_with_a_summary_line() {
    let sim = Sim::start(&["--events", "30", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let cmd = format!(
        "{} --config {} --log-file {} --severity all -o FILE -f {}",
        bin().display(),
        a.config_path().display(),
        a.path("agent.log").display(),
        a.path("out.log").display()
    );
    let out = util::on_terminal(&cmd);
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stdout);
    // What follows the progress line's last clearing (ESC [2K).
    let last = tty.rsplit("\u{1b}[2K").next().unwrap_or_default();
    assert!(
        last.starts_with("siem-agent: exported 30 logs in "),
        "{tty:?}"
    );
    let quiet = a.file_cmd().assert().success();
    assert!(quiet.get_output().stderr.is_empty());
}

#[test]
fn option_mistakes_are_named() {
    let a = Agent::new("http://127.0.0.1:9/");
    let out = a
        .cmd()
        .args(["--start_date", "2999-01-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is in the future"),
        "{}",
        stderr(&out)
    );
    let out = a
        .cmd()
        .args(["-o", "FILE", "-f", "/no/such/dir/out.log"])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(
        e.contains("the directory /no/such/dir does not exist"),
        "{e}"
    );
    assert!(!e.contains("connect"), "{e}");
}

#[test]
fn max_bytes_without_backup_count_is_warned_about() {
    let sim = Sim::start(&["--events", "3", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let out = a
        .file_cmd()
        .args(["--severity", "all", "--max_bytes", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("never rolls the file over"),
        "{}",
        stderr(&out)
    );
}

/// Run by hand (stderr a terminal, made by util-linux `script`): debug
/// lines show there too, and the progress line's rate is a whole number.
#[test]
fn debug_lines_show_on_a_terminal() {
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let cmd = format!(
        "{} --config {} --log-file {} --severity all --rate 3000 -d -o FILE -f {}",
        bin().display(),
        a.config_path().display(),
        a.path("agent.log").display(),
        a.path("out.log").display()
    );
    let out = util::on_terminal(&cmd);
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("siem-agent: debug: "), "{tty:?}");
    // "(2999/s)", never "(2999.4563/s)".
    let rates: Vec<&str> = tty
        .split("logs exported (")
        .skip(1)
        .filter_map(|r| r.split("/s)").next())
        .collect();
    assert!(!rates.is_empty(), "{tty:?}");
    assert!(
        rates.iter().all(|r| r.chars().all(|c| c.is_ascii_digit())),
        "{rates:?}"
    );
}

#[test]
fn install_without_cargo_on_root_s_path_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--prefix")
        .arg(dir.path())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("cargo build --release") && e.contains("--bin target/release/siem-agent"),
        "{e}"
    );
}

/// `simulate` prints a config.json that reads it: saved as it is, it runs
/// (each vendor).
#[test]
fn simulate_prints_a_config_that_reads_it() {
    use std::io::{BufRead, BufReader};
    for vendor in ["cloudsoc", "mcas", "cirrus", "rest", "sls"] {
        let mut child = Command::new(bin())
            .args([
                "simulate", "--port", "0", "--events", "30", "--vendor", vendor,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(
            first.starts_with("listening on http://127.0.0.1:"),
            "{first}"
        );
        let said = lines.next().unwrap().unwrap();
        assert!(said.starts_with("A config.json for it"), "{said}");
        let mut json = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            json.push_str(&line);
            json.push('\n');
            if line == "}" {
                break;
            }
        }
        let a = Agent::with_config(&serde_json::from_str(&json).expect(&json));
        let out = a
            .cmd()
            .args(["--dry-run", "--severity", "all", "--settle", "0"])
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(out.status.success(), "{vendor}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).lines().count() >= 30,
            "{vendor}: {}",
            stderr(&out)
        );
    }
}

/// With `--config DIR` by hand: one progress line for all tenants (each
/// adding what it exports), then one summary line.
#[test]
fn tenants_share_one_progress_line_and_one_summary() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&["--events", "2000", "--detect-events", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tenants");
    std::fs::create_dir(&conf).unwrap();
    for name in ["acme", "globex"] {
        let p = conf.join(format!("{name}.json"));
        let mut c = serde_json::json!({"api_server": sim.url(), "key_id": util::agent::KEY_ID,
            "key_secret": util::agent::KEY_SECRET, "tenant": util::agent::TENANT});
        c["user_id"] = name.into();
        std::fs::write(&p, c.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cmd = format!(
        "{} --config {} --log-file {} --severity all --settle 0 --rate 4000 -o FILE -f {}",
        bin().display(),
        conf.display(),
        dir.path().join("agent.log").display(),
        dir.path().join("out.log").display()
    );
    let out = util::on_terminal(&cmd);
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stdout);
    // Each tenant's stream named on the shared line.
    assert!(tty.contains("logs exported ("), "{tty:?}");
    assert!(
        tty.contains("acme: Investigate") || tty.contains("globex: Investigate"),
        "{tty:?}"
    );
    let last = tty.rsplit("\u{1b}[2K").next().unwrap_or_default();
    assert!(
        last.starts_with("siem-agent: exported 4000 logs for 2 tenants in "),
        "{tty:?}"
    );
}
