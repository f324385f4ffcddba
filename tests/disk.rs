//! Disk faults: a state directory that cannot be written, and writes that
//! hit a file-size limit (`ulimit -f`, standing in for a full disk) in the
//! FILE output and in the state write. Clear error, exit 1, the previous
//! cursor intact.

mod util;

use util::agent::{Agent, Sim, bin};

/// The agent under `ulimit -f blocks` (1024-byte blocks, bash).
fn limited(a: &Agent, blocks: u32, args: &[&str]) -> std::process::Output {
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -f {blocks} && exec \"$0\" \"$@\""))
        .arg(bin())
        .arg("--config")
        .arg(a.config_path())
        .arg("--log-file")
        .arg("/dev/null")
        .args(["--retry-delay-ms", "20"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_state_directory_that_cannot_be_written_is_one_line_and_sends_nothing() {
    let sim = Sim::start(&["--events", "20"]);
    let a = Agent::new(&sim.url());
    // sysfs refuses new files even to root.
    let out = a
        .cmd()
        .args(["--state-dir", "/sys/kernel", "-o", "STREAM", "-s", "STDOUT"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/sys/kernel"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing may be sent before the state can be kept"
    );
}

#[test]
fn a_full_disk_under_the_file_output_keeps_the_cursor_of_what_was_written() {
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let file = a.path("out.log");
    // 2.2 MiB: room for two pages of JSON (about 0.9 MB each), not three.
    let out = limited(
        &a,
        2200,
        &[
            "--severity",
            "all",
            "-o",
            "FILE",
            "--format",
            "json",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("out.log"),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    // The cursor covers only whole pages that reached the file.
    let written = std::fs::read_to_string(&file).unwrap();
    let complete = written
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    let state = a
        .state()
        .expect("pages before the limit were committed")
        .to_string();
    assert!(complete >= 1000, "{complete}");
    // Room made, the next run completes from the cursor: nothing lost.
    a.cmd()
        .args(["--severity", "all", "-o", "FILE", "--format", "json", "-f"])
        .arg(&file)
        .assert()
        .success();
    let ids: std::collections::HashSet<String> =
        a.json_lines().iter().map(util::agent::id_of).collect();
    assert_eq!(ids.len(), 3000, "state was {state}");
}

#[test]
fn a_full_disk_during_the_state_write_leaves_the_previous_cursor() {
    // All logs in one second: the cursor holds all their ids, and the
    // write at the end of the export does not fit.
    let sim = Sim::start(&[
        "--events",
        "2000",
        "--detect-events",
        "0",
        "--per-second",
        "2000",
    ]);
    let a = Agent::new(&sim.url());
    a.cmd()
        .args([
            "--severity",
            "all",
            "-o",
            "STREAM",
            "-s",
            "STDOUT",
            "--max-events",
            "10",
        ])
        .assert()
        .success();
    let before = std::fs::read(a.path("export_log.state")).unwrap();
    // 4 KiB: the next cursor (up to 2000 ids of one second) does not fit.
    let out = limited(
        &a,
        4,
        &["--severity", "all", "-o", "STREAM", "-s", "STDOUT"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("export_log.state") && stderr.contains("File too large"),
        "{stderr}"
    );
    // The cursor moves as batches are confirmed: the file holds the last
    // write that fitted, whole, at or after the one before this run.
    let after = std::fs::read(a.path("export_log.state")).unwrap();
    let parse = |b: &[u8]| -> serde_json::Value { serde_json::from_slice(b).expect("whole JSON") };
    let (b, f) = (parse(&before), parse(&after));
    assert!(
        f["cursors"]["Investigate"]["timestamp"].as_str()
            >= b["cursors"]["Investigate"]["timestamp"].as_str(),
        "the previous cursor is intact: {f}"
    );
    assert!(after.len() <= 4096);
    // No temporary file is left behind.
    let strays: Vec<_> = std::fs::read_dir(a.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        // (The cursor file's twin, the version before it, is no stray.)
        .filter(|n| n != ".export_log.state.prev")
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

/// What a kill between the temporary write and the rename leaves: the old
/// cursor, and a stray temporary file with the new one, maybe half written.
#[test]
fn a_kill_between_the_state_write_and_its_rename_leaves_the_previous_cursor() {
    let sim = Sim::start(&["--events", "300", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "--max-events", "100"])
        .assert()
        .success();
    let before = std::fs::read_to_string(a.path("export_log.state")).unwrap();
    std::fs::write(
        a.path(".tmp-Ab12Cd"),
        &before.as_bytes()[..before.len() / 2],
    )
    .unwrap();
    // The next run reads the previous cursor: it continues, sending nothing twice.
    a.file_cmd().args(["--severity", "all"]).assert().success();
    let lines = a.json_lines();
    let ids: std::collections::HashSet<String> = lines.iter().map(util::agent::id_of).collect();
    assert_eq!((lines.len(), ids.len()), (300, 300));
    assert!(
        !a.path(".tmp-Ab12Cd").exists(),
        "the stray temporary file is removed"
    );
}
