//! Alibaba Cloud Log Service (`"source": "sls"`) through the binary,
//! against the simulator as that service (`simulate --vendor sls`, every
//! request's signature checked): shards as streams, every log once over
//! runs with logs arriving between them, runs cut inside a log group, a
//! shard split during a run, a cursor the service no longer knows, the
//! environment variables of the seed's program, a wrong secret, faults,
//! and hostile values in every format.

mod util;

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use util::agent::{Agent, Sim};

const SECRET: &str = "sls-secret-7Hq2";

fn sim(args: &[&str]) -> Sim {
    let mut all = vec![
        "--vendor",
        "sls",
        "--tenant",
        "proj-1",
        "--key-id",
        "AK-demo",
        "--key-secret",
        SECRET,
    ];
    all.extend_from_slice(args);
    Sim::start(&all)
}

fn config(sim: &Sim, extra: Value) -> Value {
    let mut config = json!({
        "source": "sls",
        "endpoint": format!("http://127.0.0.1:{}", sim.port),
        "project": "proj-1",
        "logstore": "demo-logs",
        "access_key_id": "AK-demo",
        "access_key_secret": SECRET,
        "start": "begin",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            config.as_object_mut().unwrap().remove(k);
        } else {
            config[k] = v.clone();
        }
    }
    config
}

fn agent(sim: &Sim, extra: Value) -> Agent {
    Agent::with_config(&config(sim, extra))
}

fn ids(a: &Agent) -> Vec<String> {
    a.json_lines()
        .iter()
        .map(|v| v["_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every id of `0..n` exactly once.
fn assert_each_once(got: &[String], n: usize) {
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "repeats among {} logs", got.len());
    assert_eq!(got.len(), n, "logs delivered");
    for i in 0..n {
        assert!(set.contains(&format!("sls-{i:08}")), "sls-{i:08} missing");
    }
}

/// Within each shard, the logs in the order they were written.
fn assert_shard_order(a: &Agent) {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for v in a.json_lines() {
        let shard = v["app"].as_str().unwrap().to_string();
        let id = v["_id"].as_str().unwrap().to_string();
        if let Some(prev) = last.get(&shard) {
            assert!(*prev < id, "{shard}: {id} after {prev}");
        }
        last.insert(shard, id);
    }
}

#[test]
fn shards_are_streams_read_to_their_end_each_log_once_over_runs_with_logs_arriving() {
    // 40 logs arrive with each pull: a run stops at the end each shard had
    // when it began; the next run takes what came meanwhile.
    let sim = sim(&[
        "--events", "1500", "--shards", "3", "--plain", "--arrive", "40",
    ]);
    let a = agent(&sim, json!({}));
    for _ in 0..4 {
        a.file_cmd().assert().success();
    }
    let got = ids(&a);
    assert!(got.len() > 1500, "{}", got.len());
    // What arrived after the last run began is for the next one.
    let n = got.len();
    assert_each_once(&got, n);
    assert_shard_order(&a);
    let state = a.state().unwrap();
    assert_eq!(state["source"], "sls");
    let cursors = state["cursors"].as_object().unwrap();
    assert_eq!(
        cursors.keys().collect::<Vec<_>>(),
        ["shard-0", "shard-1", "shard-2"]
    );
    for c in cursors.values() {
        assert!(c["position"].as_str().is_some_and(|p| !p.is_empty()), "{c}");
    }
    let status = a.status().unwrap();
    assert_eq!(status["state"], "succeeded", "{status}");
    assert!(status["apps"]["shard-2"]["exported"].as_u64().is_some());
}

#[test]
fn a_run_cut_inside_a_log_group_resumes_at_the_first_unconfirmed_log() {
    // Groups hold 1 to 8 logs; 7 logs a run cut groups again and again.
    let sim = sim(&["--events", "300", "--shards", "2", "--plain"]);
    let a = agent(&sim, json!({}));
    for _ in 0..50 {
        a.file_cmd().args(["--max-events", "7"]).assert().success();
    }
    a.file_cmd().assert().success();
    assert_each_once(&ids(&a), 300);
    assert_shard_order(&a);
    let state = a.state().unwrap();
    assert!(
        state["cursors"]
            .as_object()
            .unwrap()
            .values()
            .all(|c| c["skip"].as_u64().unwrap_or(0) == 0)
    );
}

#[test]
fn a_shard_split_during_a_run_loses_nothing_and_the_finished_parent_is_read_no_more() {
    // The first readwrite shard splits at the third pull (in the second
    // run, after it listed the shards); logs then go to its two children,
    // which the third run finds; the parent is read to its end there.
    let sim = sim(&[
        "--events",
        "600",
        "--shards",
        "2",
        "--plain",
        "--arrive",
        "25",
        "--split-after",
        "3",
    ]);
    let a = agent(&sim, json!({}));
    a.file_cmd()
        .args(["--parallel-streams", "1"])
        .assert()
        .success();
    for _ in 0..3 {
        a.file_cmd().assert().success();
    }
    let got = ids(&a);
    let n = got.len();
    assert!(n >= 600 + 3 * 25, "{n}");
    // Every log written before the last run began is there, once.
    assert_each_once(&got, n);
    let apps: HashSet<String> = a
        .json_lines()
        .iter()
        .map(|v| v["app"].as_str().unwrap().to_string())
        .collect();
    assert!(
        apps.contains("shard-2") && apps.contains("shard-3"),
        "{apps:?}"
    );
    // The parent, read to its end, is read no more (its position stays,
    // so that it is not taken for a new shard).
    let state = a.state().unwrap();
    assert!(
        state["cursors"]["shard-0"]["position"].is_string(),
        "{state}"
    );
    let lines = a.json_lines().len();
    a.file_cmd().assert().success();
    let last: Vec<String> = a.json_lines()[lines..]
        .iter()
        .map(|v| v["app"].as_str().unwrap().to_string())
        .collect();
    assert!(!last.contains(&"shard-0".to_string()), "{last:?}");
    assert_each_once(&ids(&a), a.json_lines().len());
}

#[test]
fn a_new_shard_starts_at_its_beginning_even_when_the_first_run_started_at_the_end() {
    // "start": "end": the first run skips the 400 logs there; 20 arrive
    // with each pull after; the first readwrite shard splits at the
    // second pull, and its children (new shards) are read from their
    // beginning.
    let sim = sim(&[
        "--events",
        "400",
        "--shards",
        "2",
        "--plain",
        "--arrive",
        "20",
        "--split-after",
        "2",
    ]);
    let a = agent(&sim, json!({"start": "end"}));
    for _ in 0..4 {
        a.file_cmd().assert().success();
    }
    let got = ids(&a);
    assert!(
        got.iter().all(|id| id.as_str() >= "sls-00000400"),
        "{got:?}"
    );
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "repeats");
    // Every log that arrived before the last run began, none skipped.
    let last = got.iter().max().unwrap()[4..].parse::<usize>().unwrap();
    for i in 400..=last {
        let id = format!("sls-{i:08}");
        assert!(set.contains(&id), "{id} skipped");
    }
    assert!(
        a.log()
            .contains("a new shard; exporting it from its beginning"),
        "{}",
        a.log()
    );
}

#[test]
fn reset_and_start_date_work_as_for_every_source() {
    let sim = sim(&["--events", "300", "--shards", "2", "--plain"]);
    let a = agent(&sim, json!({}));
    a.file_cmd().assert().success();
    assert_each_once(&ids(&a), 300);
    // -r: from "start" again (here the beginning).
    a.file_cmd().arg("-r").assert().success();
    assert_eq!(ids(&a).len(), 600);
    // --start_date long ago: everything again.
    a.file_cmd()
        .args(["--start_date", "2020-01-01"])
        .assert()
        .success();
    assert_eq!(ids(&a).len(), 900);
}

#[test]
fn a_cursor_the_service_no_longer_knows_is_said_and_the_shard_read_from_its_oldest_log() {
    let sim = sim(&["--events", "200", "--shards", "1", "--plain"]);
    let a = agent(&sim, json!({}));
    std::fs::write(
        a.path("export_log.state"),
        r#"{"version":1,"source":"sls","cursors":{"shard-0":{"position":"OTk5OTk5OTk5OQ=="}}}"#,
    )
    .unwrap();
    a.file_cmd().assert().success();
    assert_each_once(&ids(&a), 200);
    assert!(
        a.log().contains("no longer knows the saved cursor"),
        "{}",
        a.log()
    );
}

#[test]
fn the_seed_programs_environment_runs_without_a_config_file() {
    let sim = sim(&["--events", "50", "--plain"]);
    let a = agent(&sim, json!({}));
    std::fs::remove_file(a.config_path()).unwrap();
    a.file_cmd()
        .args(["--source", "sls"])
        .env("SLS_ENDPOINT", format!("http://127.0.0.1:{}", sim.port))
        .env("SLS_PROJECT", "proj-1")
        .env("SLS_LOGSTORE", "demo-logs")
        .env("SLS_AK_ID", "AK-demo")
        .env("SLS_AK_KEY", SECRET)
        .assert()
        .success();
    // The default first run is the last 7 days: all 50 are newer.
    assert_each_once(&ids(&a), 50);
    // A missing key names the key, the flag and the variable.
    let out = a
        .file_cmd()
        .args(["--source", "sls"])
        .env("SLS_ENDPOINT", format!("http://127.0.0.1:{}", sim.port))
        .env_remove("SLS_PROJECT")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no project: give --sls-project or set SLS_PROJECT"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_secret_is_one_line_exit_1_and_the_secret_is_nowhere() {
    let sim = sim(&["--events", "30", "--plain"]);
    let wrong = "wrong-secret-Zx81";
    let a = agent(&sim, json!({"access_key_secret": wrong}));
    let out = a.file_cmd().arg("-d").assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("SignatureNotMatch"), "{stderr}");
    assert!(
        stderr.contains("check access_key_id and access_key_secret"),
        "{stderr}"
    );
    for text in [stderr.to_string(), a.log()] {
        assert!(!text.contains(wrong), "{text}");
    }
    assert!(a.state().is_none());
    // A wrong project or Logstore names the key.
    let b = agent(&sim, json!({"logstore": "no-such-store"}));
    let out = b.file_cmd().assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("field \"logstore\""), "{stderr}");
    assert!(stderr.contains("LogStoreNotExist"), "{stderr}");
}

#[test]
fn quotas_server_errors_and_broken_bodies_are_retried_never_taken_as_data() {
    let sim = sim(&[
        "--events",
        "400",
        "--shards",
        "1",
        "--plain",
        "--faults",
        "429,403,500,503,truncate,reset,malformed,corrupt,ok,corrupt,slow",
        "--slow-ms",
        "3000",
    ]);
    let a = agent(&sim, json!({}));
    a.file_cmd()
        .args(["--retries", "12", "--http-timeout", "1"])
        .assert()
        .success();
    assert_each_once(&ids(&a), 400);
    let log = a.log();
    for said in [
        "ReadQuotaExceed",
        "ShardReadQuotaExceed",
        "ServerBusy",
        "corrupt lz4",
    ] {
        assert!(log.contains(said), "{said} not in {log}");
    }
}

#[test]
fn hostile_values_make_one_well_formed_line_each_in_every_format() {
    let sim = sim(&["--events", "140", "--shards", "1"]);
    for format in util::agent::LINE_FORMATS {
        let lines = util::agent::lines_in(&agent(&sim, json!({})), format);
        assert_eq!(lines.len(), 140, "{format}");
        for line in &lines {
            util::agent::assert_well_formed(
                format,
                line,
                "Alibaba Cloud|Log Service",
                "sls@32473 ",
            );
        }
    }
}

/// Runs `agents` at once, each with `args`, and waits for them all.
fn run_together(agents: &[&Agent], args: &[&str]) {
    let children: Vec<_> = agents
        .iter()
        .map(|a| {
            a.process()
                .args(["--retry-delay-ms", "20", "--http-timeout", "10"])
                .args(["-o", "FILE", "--format", "json", "-f"])
                .arg(a.path("out.log"))
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// When an agent read each shard, from its log: (start, end) of each
/// reading, by shard.
fn readings(log: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in log.lines() {
        let mut words = line.split_whitespace();
        let (Some(t), Some(_level), Some(shard), Some(what)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let Some(shard) = shard.strip_suffix(':').filter(|s| s.starts_with("shard-")) else {
            continue;
        };
        match what {
            "exporting" => {
                open.insert(shard.to_string(), t.to_string());
            }
            "exported" => {
                if let Some(start) = open.remove(shard) {
                    out.entry(shard.to_string())
                        .or_default()
                        .push((start, t.to_string()));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn two_agents_in_one_consumer_group_share_the_shards_and_deliver_every_log_once_in_all() {
    // 300 logs arrive while the agents read, 30 with each pull.
    let sim = sim(&[
        "--events",
        "2000",
        "--shards",
        "4",
        "--plain",
        "--arrive",
        "30",
        "--arrive-max",
        "300",
    ]);
    let group = json!({"consumer_group": "siem-export"});
    let a = agent(&sim, group.clone());
    let b = agent(&sim, group);
    let mut quiet = 0;
    for _ in 0..30 {
        let (na, nb) = (a.json_lines().len(), b.json_lines().len());
        run_together(&[&a, &b], &[]);
        quiet = if a.json_lines().len() == na && b.json_lines().len() == nb {
            quiet + 1
        } else {
            0
        };
        if quiet == 2 {
            break;
        }
    }
    assert_eq!(quiet, 2, "the agents kept finding logs");
    // No shard was read by both at a time: each agent's reading of a shard
    // (from "exporting" to "exported" in its log) never overlaps the
    // other's.
    let (ra, rb) = (readings(&a.log()), readings(&b.log()));
    assert!(!ra.is_empty() || !rb.is_empty());
    for (shard, xs) in &ra {
        for (x, y) in xs
            .iter()
            .flat_map(|x| rb.get(shard).into_iter().flatten().map(move |y| (x, y)))
        {
            assert!(
                x.1 <= y.0 || y.1 <= x.0,
                "{shard} read by both at once: {x:?} and {y:?}"
            );
        }
    }
    let mut all = ids(&a);
    all.extend(ids(&b));
    assert_each_once(&all, 2300);
    // Both took part (which one reads what is the group's choice: the
    // first to heartbeat may take every shard for its run).
    for x in [&a, &b] {
        assert!(
            x.log()
                .contains("consumer group siem-export as siem-agent-"),
            "{}",
            x.log()
        );
    }
}

#[test]
fn a_consumer_groups_checkpoints_carry_a_backfill_to_another_host() {
    let sim = sim(&["--events", "900", "--shards", "3", "--plain"]);
    let group = json!({"consumer_group": "siem-export"});
    let a = agent(&sim, group.clone());
    let b = agent(&sim, group);
    // Cron on two hosts, one after the other, each run cut short: each
    // host starts a shard at the group's checkpoint (at the start of the
    // page the other stopped in: what it delivered of that page comes
    // again, and nothing is lost).
    let mut turns = 0;
    loop {
        let before = ids(&a).len() + ids(&b).len();
        a.file_cmd()
            .args(["--max-events", "250"])
            .assert()
            .success();
        b.file_cmd()
            .args(["--max-events", "250"])
            .assert()
            .success();
        turns += 1;
        if ids(&a).len() + ids(&b).len() == before || turns == 20 {
            break;
        }
    }
    let mut all = ids(&a);
    all.extend(ids(&b));
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), 900, "every log, in all");
    assert!(
        all.len() - 900 <= turns * 3 * 200,
        "repeats bounded by a page per shard and turn: {}",
        all.len()
    );
    assert!(!ids(&b).is_empty());
    // Without the group, a third host reads everything from the start.
    let c = agent(&sim, json!({}));
    c.file_cmd().assert().success();
    assert_each_once(&ids(&c), 900);
}

#[test]
fn the_seed_programs_kv_form_check_and_status() {
    let sim = sim(&["--events", "140", "--shards", "2"]);
    let a = agent(&sim, json!({"consumer_group": "siem-export"}));
    // check: the credentials, the Logstore, the group (absent yet).
    let out = a
        .cmd()
        .args(["check", "-o", "FILE", "-f"])
        .arg(a.path("check.out"))
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PASS Logstore demo-logs: 2 shards (0 readonly)"),
        "{text}"
    );
    assert!(
        text.contains("PASS consumer group siem-export: absent: the first run creates it"),
        "{text}"
    );
    // The seed's `||key=value`, one line per log, hostile values kept in
    // their pair.
    let path = a.path("out.kv");
    a.cmd()
        .args(["-o", "FILE", "--format", "kv", "--kv-separator", "||", "-f"])
        .arg(&path)
        .assert()
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 140);
    for line in &lines {
        assert!(line.starts_with("||"), "{line}");
        assert!(!line.contains("||__time__="), "{line}");
        // Every unescaped separator starts a pair `key=`.
        let pairs = line.split("||").skip(1);
        for p in pairs {
            assert!(p.contains('='), "{p:?} in {line}");
        }
    }
    assert!(text.contains("||_id=sls-00000000||"));
    // status: each shard's cursor.
    let out = assert_cmd::Command::new(util::agent::bin())
        .arg("status")
        .arg("--config")
        .arg(a.config_path())
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("shard-0: cursor") && text.contains("shard-1: cursor"),
        "{text}"
    );
}

/// SIGKILL at random moments of a run's first 0.4 s, twelve times, then a
/// run to the end: every log at least once, and the repeats per kill
/// within what a kill can repeat to a FILE (one flush batch of 256 KiB,
/// and the logs confirmed while the cursor file's next write waited).
#[test]
fn sigkill_storms_repeat_no_more_than_was_in_flight() {
    use siem_agent::state::writer::SPACING;
    use std::time::{Duration, Instant};
    const EVENTS: usize = 20_000;
    const RATE: usize = 8_000;
    let sim = sim(&[
        "--events",
        &EVENTS.to_string(),
        "--per-second",
        "300",
        "--shards",
        "4",
        "--plain",
    ]);
    let a = agent(&sim, json!({}));
    let args: Vec<String> = [
        "-o",
        "FILE",
        "--format",
        "json",
        "--rate",
        &RATE.to_string(),
        "-f",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([a.path("out.log").to_str().unwrap().to_string()])
    .collect();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut kills = 0;
    for _ in 0..12 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = Duration::from_millis((seed >> 33) % 400);
        let mut child = a.process().args(&args).spawn().unwrap();
        let started = Instant::now();
        let mut ended = false;
        while started.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                ended = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2)); // the kill moment, not a synchronisation
        }
        if !ended {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    let out = a.process().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ids(&a);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), EVENTS, "every log at least once");
    assert!(kills >= 6, "only {kills} kills hit a running agent");
    let bytes = std::fs::metadata(a.path("out.log")).unwrap().len() as usize;
    let avg = bytes / got.len().max(1);
    let per_kill = 4 * 64 * 1024 / avg + 1 + RATE * (SPACING.as_millis() as usize + 3) / 1000 + 1;
    let repeats = got.len() - unique.len();
    println!("{repeats} repeats after {kills} kills (bound {per_kill} per kill)");
    assert!(
        repeats <= kills * per_kill,
        "{repeats} repeats > {kills} kills x {per_kill}"
    );
}
