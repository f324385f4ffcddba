//! The state through the binary: the lock, a corrupt cursor, -c, -r,
//! --start_date, and the config file's errors.

mod util;

use predicates::prelude::*;
use std::fs::File;
use util::agent::{Agent, Sim, id_of};

#[test]
fn a_second_instance_exits_0_and_does_nothing() {
    let sim = Sim::start(&["--events", "50"]);
    let a = Agent::new(&sim.url());
    let lock = File::create(a.path("export_log.lock")).unwrap();
    lock.try_lock().expect("test takes the lock");
    // Under cron (no terminal): nothing on stderr for cron to mail, the
    // log says it.
    a.file_cmd().assert().success().stderr("");
    assert!(
        a.log()
            .contains("another instance is already running (it holds export_log.lock)"),
        "{}",
        a.log()
    );
    // With -d, said on stderr too, prefixed.
    a.file_cmd()
        .arg("-d")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "siem-agent: another instance is already running",
        ));
    assert!(a.json_lines().is_empty());
    assert!(a.state().is_none());
    drop(lock);
    // Released (as by a crash: the kernel drops the lock): the next run works.
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert_eq!(a.json_lines().len(), 55);
}

#[test]
fn a_corrupt_state_file_stops_the_run_before_anything_is_sent() {
    let sim = Sim::start(&["--events", "50"]);
    let a = Agent::new(&sim.url());
    std::fs::write(
        a.path("export_log.state"),
        "{\"version\":1,\"cursors\":{\"Investigate\":{\"timestamp\":12}}}",
    )
    .unwrap();
    let out = a.file_cmd().assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("export_log.state"), "{stderr}");
    assert!(
        stderr.contains("-r") && stderr.contains("--start_date"),
        "{stderr}"
    );
    assert!(a.json_lines().is_empty());

    // -r recovers: everything from the start.
    a.file_cmd()
        .args(["-r", "--severity", "all"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 55);
}

#[test]
fn the_state_file_records_its_source_and_another_source_is_refused() {
    let sim = Sim::start(&["--events", "20"]);
    let a = Agent::new(&sim.url());
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert_eq!(a.state().unwrap()["source"], "cloudsoc");
    let sent = a.json_lines().len();
    // The same directory, a state file of another source: one line naming
    // the file and both sources, exit 1, nothing sent, the file intact.
    let path = a.path("export_log.state");
    let theirs = r#"{"version":1,"source":"cirrus","cursors":{}}"#;
    std::fs::write(&path, theirs).unwrap();
    let out = a.file_cmd().assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("export_log.state: holds the cursor of source cirrus, not of cloudsoc"),
        "{stderr}"
    );
    assert_eq!(a.json_lines().len(), sent);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
    // --source names the config's source, or is refused.
    let out = a
        .file_cmd()
        .args(["--source", "okta"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'okta' is not a source (one of cloudsoc, mcas, cirrus, rest, sls)"),
        "{stderr}"
    );
}

#[test]
fn reset_exports_again_and_clear_status_keeps_the_cursor() {
    let sim = Sim::start(&["--events", "80"]);
    let a = Agent::new(&sim.url());
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert_eq!(a.json_lines().len(), 88);
    let state = std::fs::read(a.path("export_log.state")).unwrap();

    // -c: clears the status (even an unreadable one); the cursor stays.
    std::fs::write(a.path("last_job.status"), "garbage").unwrap();
    a.file_cmd()
        .args(["-c", "--severity", "all"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 88);
    assert_eq!(std::fs::read(a.path("export_log.state")).unwrap(), state);
    assert_eq!(a.status().unwrap()["state"], "succeeded");

    // A plain rerun: nothing new.
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert_eq!(a.json_lines().len(), 88);

    // -r: from the beginning again.
    a.file_cmd()
        .args(["-r", "--severity", "all"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 176);
}

#[test]
fn start_date_overrides_the_cursor() {
    // 2 logs a second from yesterday 23:50 UTC: they cross midnight.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let start = format!("{yesterday}T23:50:00");
    let sim = Sim::start(&[
        "--events",
        "2400",
        "--detect-events",
        "0",
        "--per-second",
        "2",
        "--start-time",
        &start,
    ]);
    let a = Agent::new(&sim.url());
    // --settle 0: run just after midnight, the last logs are recent.
    a.file_cmd()
        .args(["--severity", "all", "--settle", "0"])
        .assert()
        .success();
    let all = a.json_lines();
    assert_eq!(all.len(), 2400);
    let today = chrono::Utc::now().date_naive().to_string();
    let from_today: Vec<String> = all
        .iter()
        .filter(|l| l["created_timestamp"].as_str().unwrap() >= today.as_str())
        .map(id_of)
        .collect();
    assert!(!from_today.is_empty() && from_today.len() < all.len());

    let b = Agent::new(&sim.url());
    b.file_cmd()
        .args(["--severity", "all", "--settle", "0", "--start_date", &today])
        .assert()
        .success();
    let got: Vec<String> = b.json_lines().iter().map(id_of).collect();
    assert_eq!(got, from_today);
}

#[test]
fn config_errors_name_the_file_and_the_field() {
    let a = Agent::new("https://unused.invalid/");
    let cases = [
        ("{", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        (
            r#"{"api_server":"https://x/","key_id":"k","tenant":"t"}"#,
            "field \"key_secret\" is missing",
        ),
        (
            r#"{"api_server":"https://x/","key_id":["k"],"key_secret":"s3cr3t","tenant":"t"}"#,
            "field \"key_id\" must be a string, not an array",
        ),
        (
            r#"{"api_server":"not a url","key_id":"k","key_secret":"s3cr3t","tenant":"t"}"#,
            "field \"api_server\"",
        ),
        (
            r#"{"api_server":"http://api.example.com/","key_id":"k","key_secret":"s3cr3t","tenant":"t"}"#,
            "--allow-insecure-http",
        ),
        (
            r#"{"source":"okta","api_server":"https://x/","key_id":"k","key_secret":"s3cr3t","tenant":"t"}"#,
            "field \"source\" is \"okta\", not one of cloudsoc, mcas, cirrus, rest, sls",
        ),
    ];
    for (text, msg) in cases {
        a.write_config(text);
        let out = a.file_cmd().assert().code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{text}: {stderr}");
        assert!(stderr.contains("config.json"), "{text}: {stderr}");
        assert!(stderr.contains(msg), "{text}: {stderr}");
    }
    let missing = Agent::new("https://unused.invalid/");
    std::fs::remove_file(missing.config_path()).unwrap();
    missing
        .file_cmd()
        .assert()
        .code(1)
        .stderr(predicate::str::contains("config.json: cannot read"));
}

#[test]
fn a_config_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&["--events", "10"]);
    let a = Agent::new(&sim.url());
    std::fs::set_permissions(a.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    a.file_cmd()
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "can be read by group or others (mode 644)",
        ));
}

#[test]
fn a_run_killed_while_holding_the_lock_does_not_block_the_next() {
    // The API answers the first request only after 30 s: the run waits
    // with the lock held until it is killed (one stream only: another,
    // read meanwhile, would write before the kill).
    let sim = Sim::start(&["--events", "50", "--faults", "slow", "--slow-ms", "30000"]);
    let a = Agent::new(&sim.url());
    let mut child = a
        .process()
        .args(["-d", "--elastica_app", "investigate", "-o", "FILE", "-f"])
        .arg(a.path("out.log"))
        .spawn()
        .unwrap();
    let held = util::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || {
            File::open(a.path("export_log.lock")).is_ok_and(|f| f.try_lock().is_err())
                && a.status().is_some_and(|s| s["state"] == "running")
                && a.log().contains("GET http://")
        },
    );
    assert!(
        held,
        "the agent never took the lock and said it was running"
    );
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    // Should the killed run's request not have reached the simulator yet,
    // this run gets the slow answer: a short timeout, then a retry.
    a.file_cmd()
        .args(["--severity", "all", "--http-timeout", "1"])
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 55);
    assert_eq!(a.status().unwrap()["state"], "succeeded");
}
