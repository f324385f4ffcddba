//! Tenants and state files that must not be taken as they come: a tenant
//! file whose name cannot name a tenant is named on stderr, in `status`
//! and in the metrics (even when every tenant is such); a tenant's state
//! directory or a state file that is a symbolic link is refused, its
//! target untouched, as the lock already is.

mod util;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use util::agent::{Agent, KEY_ID, KEY_SECRET, Sim, bin};
use util::fleet::Fleet;

impl Fleet {
    /// A run over the directory, its metrics to `m.prom`.
    fn run(&self) -> Output {
        Command::new(bin())
            .arg("--config")
            .arg(self.tenants())
            .arg("--log-file")
            .arg(self.path("agent.log"))
            .args(["--retry-delay-ms", "20", "--http-timeout", "10"])
            .args(["--severity", "all", "-o", "FILE", "--format", "json", "-f"])
            .arg(self.path("out.log"))
            .arg("--metrics-file")
            .arg(self.path("m.prom"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn status(&self) -> Value {
        let out = Command::new(bin())
            .arg("status")
            .arg("--config")
            .arg(self.tenants())
            .arg("--json")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        })
    }

    fn metrics(&self) -> String {
        std::fs::read_to_string(self.path("m.prom")).unwrap_or_default()
    }
}

fn cloudsoc(sim: &Sim) -> Value {
    json!({"user_id": "u-1", "api_server": sim.url(), "key_id": KEY_ID,
           "key_secret": KEY_SECRET, "tenant": "demo"})
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tenants_with_bad_names_have_metrics_samples_even_when_all_are_bad() {
    let sim = Sim::start(&["--events", "10"]);
    for with_good in [true, false] {
        let fleet = Fleet::new();
        fleet.add_file("bad name.json", &cloudsoc(&sim));
        fleet.add_file("-dash.json", &cloudsoc(&sim));
        if with_good {
            fleet.add_file("acme.json", &cloudsoc(&sim));
        }
        let out = fleet.run();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        for name in ["bad name", "-dash"] {
            assert!(
                err.contains(&format!("'{name}' cannot name a tenant")),
                "{err}"
            );
            assert!(
                fleet.status()["tenants"][name]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("cannot name a tenant")),
                "{}",
                fleet.status()
            );
        }
        let m = fleet.metrics();
        for name in ["bad name", "-dash"] {
            let line = format!("siem_agent_last_run_success{{tenant=\"{name}\"}} 0\n");
            assert!(m.contains(&line), "{with_good}: {line:?} in:\n{m}");
            let line =
                format!("siem_agent_last_run_errors{{tenant=\"{name}\",kind=\"config\"}} 1\n");
            assert!(m.contains(&line), "{with_good}: {line:?} in:\n{m}");
        }
        if with_good {
            assert!(
                m.contains("siem_agent_last_run_success{tenant=\"acme\"} 1\n"),
                "{m}"
            );
        }
    }
}

#[test]
fn a_tenant_state_directory_that_is_a_link_is_refused_and_the_others_run() {
    let sim = Sim::start(&["--events", "10"]);
    let fleet = Fleet::new();
    fleet.add_file("acme.json", &cloudsoc(&sim));
    fleet.add_file("globex.json", &cloudsoc(&sim));
    // globex's state directory leads to acme's: it would share its cursor.
    let state_root = fleet.tenants();
    std::fs::create_dir(state_root.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(state_root.join("elsewhere"), state_root.join("globex")).unwrap();
    let out = fleet.run();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("tenant globex: ")
            && err.contains("globex: the tenant's state directory is a symbolic link"),
        "{err}"
    );
    assert!(
        fleet.status()["tenants"]["globex"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("symbolic link")),
        "{}",
        fleet.status()
    );
    assert_eq!(
        std::fs::read_dir(state_root.join("elsewhere"))
            .unwrap()
            .count(),
        0,
        "nothing written through the link"
    );
    assert!(state_root.join("acme").join("export_log.state").is_file());
    assert!(
        fleet
            .metrics()
            .contains("siem_agent_last_run_success{tenant=\"globex\"} 0\n")
    );
}

/// A single config's state files, each in turn a link to a file that
/// must stay as it is.
#[test]
fn a_state_file_that_is_a_link_is_refused_and_its_target_untouched() {
    let sim = Sim::start(&["--events", "10"]);
    for file in ["export_log.state", "last_job.status"] {
        let a = Agent::new(&sim.url());
        // The cursor of a real run, to link to (its target must not move).
        let donor = Agent::new(&sim.url());
        donor.file_cmd().assert().success();
        let target = donor.path(file);
        let before = std::fs::read(&target).unwrap();
        std::os::unix::fs::symlink(&target, a.path(file)).unwrap();
        let out = a.file_cmd().output().unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{file}: {err}");
        assert!(
            err.contains(&format!("{file}: cannot open: is a symbolic link")),
            "{file}: {err}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), before, "{file}");
        assert!(is_link(&a.path(file)), "{file}");
        assert!(a.json_lines().is_empty(), "{file}");
    }
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}
