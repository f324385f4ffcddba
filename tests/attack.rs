//! What an attacker, a broken API and a stalled receiver could do to a run
//! (issue 10): each test fails on the agent before the fix.

mod util;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::agent::{Agent, Sim, id_of};
use util::stub::{Stub, page};
use wiremock::ResponseTemplate;

/// A TCP server on 127.0.0.1 that runs `serve` on each connection, in a
/// thread of its own; returns its port. It ends with the test process.
fn serve_each(serve: fn(std::net::TcpStream)) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || serve(c));
        }
    });
    port
}

fn ids(lines: &[Value]) -> Vec<String> {
    lines.iter().map(id_of).collect()
}

/// A Detect-only stub serving `incidents` as the API does: those created
/// at or after `created_timestamp`, in creation order.
fn detect_api(incidents: Arc<Mutex<Vec<Value>>>) -> Stub {
    Stub::start(move |ask| {
        if ask.app != "Detect" {
            return page(&[]);
        }
        let mut v: Vec<Value> = incidents
            .lock()
            .unwrap()
            .iter()
            .filter(|i| i["created_timestamp"].as_str().unwrap_or("") >= ask.since.as_str())
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a["created_timestamp"]
                .as_str()
                .cmp(&b["created_timestamp"].as_str())
        });
        page(&v)
    })
}

fn incident(id: &str, created: &str, started: &str) -> Value {
    json!({"_id": id, "created_timestamp": created, "incident_start_time": started,
           "severity": "high", "ioi_code": "X", "message": "m"})
}

#[test]
fn a_detect_incident_created_late_with_an_early_start_is_delivered() {
    let incidents = Arc::new(Mutex::new(vec![
        incident("A", "2026-11-20T10:00:00", "2026-11-20T09:59:00"),
        incident("C", "2026-11-20T10:00:05", "2026-11-20T09:59:30"),
    ]));
    let api = detect_api(incidents.clone());
    let a = api.agent();
    let run = || {
        a.file_cmd()
            .args(["--severity", "all", "--elastica-app", "detect"])
            .assert()
            .success();
    };
    run();
    assert_eq!(ids(&a.json_lines()), ["A", "C"]);
    // Detected after that run, though it started before both.
    incidents
        .lock()
        .unwrap()
        .push(incident("B", "2026-11-20T10:00:10", "2026-11-20T09:00:00"));
    run();
    assert_eq!(ids(&a.json_lines()), ["A", "C", "B"]);
    let state = a.state().unwrap();
    assert_eq!(
        state["cursors"]["Detect"]["timestamp"],
        "2026-11-20T10:00:10"
    );
    run();
    assert_eq!(a.json_lines().len(), 3, "nothing again");
}

fn log(id: &str, t: &str) -> Value {
    json!({"_id": id, "created_timestamp": t, "severity": "error", "message": "m"})
}

/// An Investigate-only stub answering every request with `logs` (those at
/// or after the request's `created_timestamp`, in the given order).
fn investigate_api(logs: Vec<Value>) -> Stub {
    Stub::start(move |ask| {
        if ask.app != "Investigate" {
            return page(&[]);
        }
        let v: Vec<Value> = logs
            .iter()
            .filter(|l| {
                l["created_timestamp"]
                    .as_str()
                    .is_none_or(|t| t >= ask.since.as_str())
            })
            .cloned()
            .collect();
        page(&v)
    })
}

fn investigate_cmd(a: &Agent) -> assert_cmd::Command {
    let mut c = a.file_cmd();
    c.args(["--severity", "all", "--elastica-app", "investigate"]);
    c
}

#[test]
fn a_future_dated_log_is_delivered_once_and_does_not_move_the_cursor() {
    let api = investigate_api(vec![
        log("a", "2026-11-20T10:00:00"),
        log("b", "2026-11-20T10:00:01"),
        log("future", "9999-12-31T23:59:59"),
    ]);
    let a = api.agent();
    let out = investigate_cmd(&a).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(stderr.contains("later than now"), "{stderr}");
    assert_eq!(ids(&a.json_lines()), ["a", "b", "future"]);
    let state = a.state().unwrap();
    assert_eq!(
        state["cursors"]["Investigate"]["timestamp"],
        "2026-11-20T10:00:01"
    );
    // Remembered by key: not sent again.
    investigate_cmd(&a).assert().success();
    assert_eq!(a.json_lines().len(), 3);
    // A cursor already in the future (written by an older agent) is shown
    // as it is, not as "0 s behind".
    std::fs::write(
        a.path("export_log.state"),
        r#"{"version":1,"cursors":{"Investigate":{"timestamp":"9999-12-31T23:59:59","ids":["x"]}}}"#,
    )
    .unwrap();
    let status = |json: bool| {
        let mut c = Command::new(util::agent::bin());
        c.arg("--config").arg(a.config_path()).arg("status");
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let out = status(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ahead of now"), "{text}");
    let out = status(true);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["apps"]["Investigate"]["lag_seconds"].as_i64().unwrap() < 0);
}

#[test]
fn max_events_with_a_log_out_of_order_still_makes_progress() {
    let api = investigate_api(vec![
        log("a", "2026-11-20T10:00:10"),
        log("b", "2026-11-20T10:00:11"),
        log("old", "2026-11-20T10:00:09"),
        log("c", "2026-11-20T10:00:12"),
        log("d", "2026-11-20T10:00:13"),
        log("e", "2026-11-20T10:00:14"),
    ]);
    let a = api.agent();
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 6, "no progress: {:?}", ids(&a.json_lines()));
        let before = a.json_lines().len();
        investigate_cmd(&a)
            .args(["--max-events", "3"])
            .assert()
            .success();
        if a.json_lines().len() == before {
            break;
        }
    }
    let mut got = ids(&a.json_lines());
    got.sort();
    got.dedup();
    assert_eq!(got, ["a", "b", "c", "d", "e", "old"]);
}

#[test]
fn one_value_json_cannot_carry_does_not_block_the_page() {
    let body = r#"{"status":"success","logs":[
        {"_id":"s","created_timestamp":"2026-11-20T10:00:00","message":"lone \ud800 surrogate"},
        {"_id":"n","created_timestamp":"2026-11-20T10:00:01","score":1e400},
        {"_id":"ok","created_timestamp":"2026-11-20T10:00:02"}]}"#;
    let api = Stub::start(move |ask| {
        if ask.app == "Investigate" {
            ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")
        } else {
            page(&[])
        }
    });
    let a = api.agent();
    let out = investigate_cmd(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = a.json_lines();
    assert_eq!(ids(&lines), ["s", "n", "ok"]);
    assert_eq!(lines[0]["message"], "lone \u{fffd} surrogate");
    assert_eq!(lines[1]["score"], "1e400");
    assert!(String::from_utf8_lossy(&out.stderr).contains("replaced"));
}

#[test]
fn files_are_not_opened_through_symbolic_links() {
    let sim = Sim::start(&["--events", "20", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    // The FILE output through a dangling link: nothing created there.
    let elsewhere = a.path("elsewhere.log");
    std::os::unix::fs::symlink(&elsewhere, a.path("out.log")).unwrap();
    let out = a.file_cmd().args(["--severity", "all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(!elsewhere.exists());
    assert!(a.state().is_none(), "the cursor did not move");
    // The lock file through a link: refused, its target untouched.
    std::fs::remove_file(a.path("out.log")).unwrap();
    std::fs::remove_file(a.path("export_log.lock")).unwrap();
    let victim = a.path("victim");
    std::fs::write(&victim, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&victim, a.path("export_log.lock")).unwrap();
    let out = a.file_cmd().args(["--severity", "all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    std::fs::remove_file(a.path("export_log.lock")).unwrap();
    // The log file through a link: not written there.
    std::fs::remove_file(a.path("agent.log")).unwrap();
    std::os::unix::fs::symlink(&victim, a.path("agent.log")).unwrap();
    a.file_cmd()
        .args(["--severity", "all", "-d"])
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert_eq!(a.json_lines().len(), 20);
}

#[test]
fn a_key_with_line_breaks_cannot_forge_a_debug_line() {
    let api = investigate_api(vec![
        json!({"_id": "x\nFORGED ERROR line\u{1b}[2J", "message": "no time"}),
    ]);
    let a = api.agent();
    investigate_cmd(&a).arg("-d").assert().success();
    let log = a.log();
    assert!(log.contains("x\\nFORGED ERROR line\\x1b[2J"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "{log}");
    assert!(!log.contains('\u{1b}'));
}

#[test]
fn the_metrics_file_is_readable_by_the_exporter_s_user() {
    let sim = Sim::start(&["--events", "5", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    a.file_cmd()
        .args(["--severity", "all", "--metrics-file"])
        .arg(a.path("siem.prom"))
        .assert()
        .success();
    let mode = std::fs::metadata(a.path("siem.prom"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn file_output_to_dev_null_and_to_a_fifo() {
    let sim = Sim::start(&["--events", "300", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    a.cmd()
        .args(["--severity", "all", "-o", "FILE", "-f", "/dev/null"])
        .assert()
        .success();
    // /dev/stdout is a link (to /proc/self/fd/1, here a pipe): followed.
    let c = Agent::new(&sim.url());
    let out = c
        .cmd()
        .args([
            "--severity",
            "all",
            "--format",
            "json",
            "-o",
            "FILE",
            "-f",
            "/dev/stdout",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 300);
    // A FIFO with a reader gets every line.
    let b = Agent::new(&sim.url());
    let fifo = b.path("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = reader.stdout.take().unwrap();
    let text = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    // Readiness: cat holds the FIFO open for reading once the agent's
    // open succeeds; a FIFO nobody reads is refused, so retry until then.
    let mut ok = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok && Instant::now() < deadline {
        let r = b
            .cmd()
            .args(["--severity", "all", "--format", "json", "-o", "FILE", "-f"])
            .arg(&fifo)
            .output()
            .unwrap();
        ok = r.status.success();
        if !ok {
            let e = String::from_utf8_lossy(&r.stderr);
            assert!(e.contains("nobody reads"), "{:?} {e}", r.status);
            std::thread::sleep(Duration::from_millis(20)); // retry pace
        }
    }
    assert!(ok);
    // The agent closed the FIFO: cat has read everything and ends.
    let text = text.join().unwrap();
    let _ = reader.wait();
    assert_eq!(text.lines().count(), 300);
}

/// A TCP receiver that never reads, with a small receive buffer (so that
/// the agent's writes stop being taken soon).
/// Runs the agent against a receiver on `port` that takes nothing, with a
/// 1 s `--send-timeout` and one retry; checks it exits 1 and returns its
/// stderr.
fn run_to_stuck_receiver(a: &Agent, socket_type: &str, port: u16) -> String {
    let out = a
        .cmd()
        // Investigate alone: an empty Detect, read at the same time, would
        // end (its cursor saved) before the receiver is found stuck.
        .args(["--elastica_app", "investigate"])
        .args([
            "--severity",
            "all",
            "-o",
            "REMOTE",
            "--socket-type",
            socket_type,
        ])
        .args(["--send-timeout", "1", "--send-retries", "1", "-t"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

fn stalled_receiver() -> (std::net::TcpListener, u16) {
    use std::os::fd::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0
        );
        assert_eq!(libc::listen(fd, 8), 0);
        let l = std::net::TcpListener::from_raw_fd(fd);
        let port = l.local_addr().unwrap().port();
        (l, port)
    }
}

#[test]
fn a_receiver_that_stops_reading_ends_the_run_with_an_error() {
    let sim = Sim::start(&["--events", "20000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let (listener, port) = stalled_receiver();
    // It takes one connection, never reads it, and takes no other (a
    // receiver that is stuck).
    let held = std::thread::spawn(move || listener.accept().map(|(c, _)| c));
    let started = Instant::now();
    let stderr = run_to_stuck_receiver(&a, "TCP", port);
    assert!(stderr.contains("--send-timeout"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(a.status().unwrap()["state"], "failed");
    drop(held.join().unwrap());
}

#[test]
fn a_lock_held_longer_than_stale_after_is_reported() {
    let sim = Sim::start(&["--events", "5", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let lock = a.path("export_log.lock");
    std::fs::write(&lock, "4242\n").unwrap();
    // flock(1) holds the lock as another run would, and says when.
    let mut holder = Command::new("flock")
        .arg("-n")
        .arg(&lock)
        .args(["-c", "echo held; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock (util-linux)");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    // Fresh: the usual quiet exit 0.
    let out = a.file_cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Taken two hours ago: a hung run, exit 1.
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let out = a.file_cmd().output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pid 4242") && stderr.contains("may be hung"),
        "{stderr}"
    );
    let out = a.file_cmd().args(["--stale-after", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn sigterm_stops_gracefully_and_keeps_what_was_confirmed() {
    let sim = Sim::start(&["--events", "2000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let mut child = a
        .process()
        .args(["--severity", "all", "--format", "json", "--rate", "200"])
        .args(["--metrics-file"])
        .arg(a.path("m.prom"))
        .args(["-o", "FILE", "-f"])
        .arg(a.path("out.log"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: some lines are out.
    assert!(util::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || a.json_lines().len() >= 100
    ));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let st = a.status().unwrap();
    assert_eq!(st["state"], "failed");
    assert!(st["error"].as_str().unwrap().contains("stopped by SIGTERM"));
    let written = a.json_lines().len();
    assert_eq!(
        st["apps"]["Investigate"]["exported"].as_u64().unwrap() as usize,
        written,
        "confirmed = written"
    );
    assert!(
        std::fs::read_to_string(a.path("m.prom"))
            .unwrap()
            .contains("siem_agent_last_run_success 0")
    );
    // The next run continues: every log once.
    a.file_cmd().args(["--severity", "all"]).assert().success();
    let mut got = ids(&a.json_lines());
    let n = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 2000);
    assert_eq!(n, 2000, "no duplicate");
}

#[test]
fn a_reader_that_goes_away_leaves_what_it_did_not_read() {
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    // The reader takes exactly one line (the shell's read takes a byte at
    // a time) and exits.
    let mut reader = Command::new("sh")
        .args(["-c", "read line; echo \"$line\""])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = a
        .process()
        .args([
            "--severity",
            "all",
            "--format",
            "json",
            "-o",
            "STREAM",
            "-s",
            "STDOUT",
        ])
        .stdout(reader.stdin.take().unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let took = reader.wait_with_output().unwrap().stdout;
    assert_eq!(String::from_utf8_lossy(&took).lines().count(), 1);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("closed it"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    let confirmed = util::agent::exported(&a);
    assert!(confirmed <= 1, "{confirmed} confirmed, the reader took 1");
    // Nothing lost: the next run delivers the rest.
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert!(a.json_lines().len() + confirmed >= 3000);
}

#[test]
fn secrets_in_malformed_urls_are_not_echoed() {
    let a = Agent::new("http://127.0.0.1:9/");
    let out = a
        .cmd()
        .args(["--proxy", "http://bob:s3cr3t-pw@[::1:bad", "-o", "STREAM"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
    assert!(!a.log().contains("s3cr3t-pw"));
    // Credentials in a HEC URL stay out of metrics labels.
    let out = a
        .cmd()
        .args(["-o", "HEC", "--hec-token", "t", "--hec-url"])
        .arg("http://user:hec-pw@127.0.0.1:9/")
        .arg("--metrics-file")
        .arg(a.path("m.prom"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(a.path("m.prom")).unwrap_or_default(),
        a.log()
    );
    assert!(!all.contains("hec-pw"), "{all}");
}

#[test]
fn an_absurd_backup_count_is_refused() {
    let a = Agent::new("http://127.0.0.1:9/");
    let out = a
        .cmd()
        .args([
            "-o",
            "FILE",
            "-f",
            "x",
            "--max_bytes",
            "10",
            "--backup_count",
            "4294967295",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--backup-count") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A run ended by an oversized answer: one line, exit 1, no cursor, status
/// failed.
fn assert_refused_page(a: &Agent, out: &std::process::Output, why: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(a.state().is_none(), "the cursor did not move");
    assert_eq!(a.status().unwrap()["state"], "failed");
}

#[test]
fn a_gzip_bomb_stops_at_the_page_limit() {
    // 200 MiB of zeros, about 200 KiB gzipped.
    let out = Command::new("sh")
        .args(["-c", "head -c 209715200 /dev/zero | gzip -9"])
        .output()
        .unwrap();
    let bomb = out.stdout;
    assert!(bomb.len() < 1 << 20);
    let api = Stub::start(move |_| {
        ResponseTemplate::new(200)
            .insert_header("Content-Encoding", "gzip")
            .set_body_raw(bomb.clone(), "application/json")
    });
    let a = api.agent();
    let out = investigate_cmd(&a)
        .args(["--max-page-mib", "8"])
        .output()
        .unwrap();
    assert_refused_page(&a, &out, "more than 8 MiB once decompressed");
}

#[test]
fn an_endless_body_stops_at_the_page_limit() {
    // A server that answers every request with a chunked body that never
    // ends (until the client goes).
    let port = serve_each(|mut c| {
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        let _ = c.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let _ = c.write_all(b"e\r\n{\"logs\":[\"xxx\"\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 65536, ",\"x\"".repeat(16384));
        while c.write_all(chunk.as_bytes()).is_ok() {}
    });
    let a = Agent::new(&format!("http://127.0.0.1:{port}/"));
    let out = investigate_cmd(&a)
        .args(["--max-page-mib", "4"])
        .output()
        .unwrap();
    assert_refused_page(&a, &out, "more than 4 MiB once decompressed");
}

#[test]
fn a_page_of_countless_empty_logs_is_refused() {
    let mut body = String::from("{\"logs\":[");
    for i in 0..20_001 {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{}");
    }
    body.push_str("]}");
    let api = Stub::start(move |_| {
        ResponseTemplate::new(200).set_body_raw(body.clone().into_bytes(), "application/json")
    });
    let a = api.agent();
    let out = investigate_cmd(&a).output().unwrap();
    assert_refused_page(&a, &out, "more than 10000 logs in one page");
}

#[test]
fn terminal_escapes_from_a_server_never_reach_the_terminal() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};
    let sim = Sim::start(&["--events", "5", "--detect-events", "0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hec = rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/services/collector/event"))
            .respond_with(ResponseTemplate::new(503).set_body_json(
                json!({"text": "bad\u{1b}]0;pwned\u{7}\u{1b}[2J\nFORGED line", "code": 6}),
            ))
            .mount(&s)
            .await;
        s
    });
    let a = Agent::new(&sim.url());
    let out = a
        .cmd()
        .args(["--severity", "all", "--send-retries", "1", "-o", "HEC"])
        .args(["--hec-token", "tok-123", "--hec-url"])
        .arg(hec.uri())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
    assert!(stderr.contains("\\x1b]0;pwned\\x07"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("FORGED")), "{stderr}");
    // The retry warning carries the server's words too.
    assert!(
        stderr.contains("warning: ") && stderr.contains("retrying"),
        "{stderr}"
    );
    assert!(!a.log().contains('\u{1b}'));
}

#[test]
fn a_fifo_whose_reader_stops_reading_ends_the_run_with_an_error() {
    let sim = Sim::start(&["--events", "3000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let fifo = a.path("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // This test holds the FIFO open (so it has a reader) and reads nothing.
    let _held = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let out = a
        .cmd()
        // Investigate alone: the empty Detect, read at the same time,
        // would end (its cursor saved) before the pipe is full.
        .args([
            "--elastica_app",
            "investigate",
            "--severity",
            "all",
            "--send-timeout",
            "1",
            "-o",
            "FILE",
            "-f",
        ])
        .arg(&fifo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--send-timeout"), "{stderr}");
    assert!(a.state().is_none(), "nothing confirmed");
}

#[test]
fn a_relp_receiver_that_stops_answering_ends_the_run_with_an_error() {
    // Opens the session, then reads what comes and answers nothing.
    let port = serve_each(|mut c| {
        let mut buf = [0u8; 65536];
        let Ok(n) = c.read(&mut buf) else { return };
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("1 open "));
        let data = "200 OK\nrelp_version=0\nrelp_software=stuck\ncommands=syslog";
        let _ = c.write_all(format!("1 rsp {} {data}\n", data.len()).as_bytes());
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    });
    let sim = Sim::start(&["--events", "50", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let stderr = run_to_stuck_receiver(&a, "RELP", port);
    assert!(stderr.contains("no RELP answer in 1 s"), "{stderr}");
    assert!(a.state().is_none(), "nothing confirmed");
}

#[test]
fn an_unreadable_state_file_asks_for_the_permission_not_a_reset() {
    let a = Agent::new("http://127.0.0.1:9/");
    // As root, a directory in its place is what cannot be read.
    std::fs::create_dir(a.path("export_log.state")).unwrap();
    let out = a.file_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fix its owner or permissions"), "{stderr}");
    assert!(!stderr.contains(" -r "), "{stderr}");
}
