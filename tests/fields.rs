//! Static fields (config.json's `"fields"`) through the binary: in every
//! format, escaped as the format wants, kept under a size limit, `{tenant}`
//! standing for the tenant's name with `--config DIR`, a log's own field of
//! the same name winning, and bad names refused in one line.

mod util;

use serde_json::{Value, json};
use util::agent::{Agent, LINE_FORMATS, Sim, lines_in};

fn config(sim: &Sim, fields: Value) -> Value {
    json!({"api_server": sim.url(), "key_id": "demo-key", "key_secret": "demo-secret",
           "tenant": "demo", "fields": fields})
}

/// Each format's rendering of `env=prod` and `note=a=b\c"d]` at the end
/// of a line.
fn ending(format: &str) -> &'static str {
    match format {
        "cef" => " env=prod note=a\\=b\\\\c\"d] x",
        "leef" => "\tenv=prod\tnote=a=b\\c\"d] x",
        "leef1" => "\tenv=prod\tnote=a=b\\c\"d] x",
        "kv" => " env=\"prod\" note=\"a=b\\\\c\\\"d] x\"",
        _ => "",
    }
}

#[test]
fn static_fields_end_every_line_in_every_format() {
    let sim = Sim::start(&["--events", "40", "--detect-events", "5"]);
    let a = Agent::with_config(&config(
        &sim,
        json!({"env": "prod", "note": "a=b\\c\"d]\tx"}),
    ));
    for format in LINE_FORMATS {
        let lines = lines_in(&a, format);
        assert!(lines.len() > 10, "{format}");
        // Reset the cursor for the next format.
        let _ = std::fs::remove_file(a.path("export_log.state"));
        for line in &lines {
            match format {
                "json" => {
                    let v: Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["env"], "prod", "{line}");
                    assert_eq!(v["note"], "a=b\\c\"d]\tx", "{line}");
                }
                "rfc5424" => {
                    let m = syslog_rfc5424::parse_message(line.as_str()).expect(line);
                    assert_eq!(
                        m.sd.find_tuple("fields@32473", "env").map(String::as_str),
                        Some("prod"),
                        "{line}"
                    );
                    assert_eq!(
                        m.sd.find_tuple("fields@32473", "note").map(String::as_str),
                        Some("a=b\\c\"d]\tx"),
                        "{line}"
                    );
                    // The log's own element is still there.
                    assert!(m.sd.find_sdid("cloudsoc@32473").is_some(), "{line}");
                }
                _ => assert!(line.ends_with(ending(format)), "{format}: {line}"),
            }
        }
    }
}

#[test]
fn a_line_cut_to_a_size_limit_keeps_its_static_fields() {
    let sim = Sim::start(&["--events", "20", "--detect-events", "0"]);
    let a = Agent::with_config(&config(&sim, json!({"env": "prod"})));
    for format in ["cef", "kv", "json"] {
        let path = a.path(&format!("cut.{format}"));
        a.cmd()
            .args([
                "-o",
                "FILE",
                "--format",
                format,
                "--max-message-size",
                "600",
                "-f",
            ])
            .arg(&path)
            .assert()
            .success();
        let _ = std::fs::remove_file(a.path("export_log.state"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut cut = 0;
        for line in text.lines() {
            assert!(line.len() <= 600, "{format}: {} bytes", line.len());
            if line.contains("runcated") {
                cut += 1;
            }
            match format {
                "json" => {
                    let v: Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["env"], "prod", "{line}");
                }
                "cef" => assert!(line.ends_with(" env=prod"), "{line}"),
                _ => assert!(line.ends_with(" env=\"prod\""), "{line}"),
            }
        }
        assert!(cut > 0, "{format}: the test needs cut lines");
    }
}

#[test]
fn a_log_field_of_the_same_name_wins() {
    let sim = Sim::start(&["--events", "10", "--detect-events", "0"]);
    // Every Investigate log has a `user` field.
    let a = Agent::with_config(&config(&sim, json!({"user": "forged", "env": "prod"})));
    for line in lines_in(&a, "json") {
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(v["user"], "forged", "{line}");
        assert_eq!(v["env"], "prod");
    }
}

#[test]
fn bad_static_fields_are_one_line_naming_the_key() {
    let sim = Sim::start(&["--events", "3"]);
    for (fields, want) in [
        (
            json!({"src": "x"}),
            "\"src\", which the formats write themselves",
        ),
        (
            json!({"my env": "x"}),
            "a letter, then letters, digits or _",
        ),
        (
            json!({"env": ["a"]}),
            "\"env\" must be a string, a number or a boolean",
        ),
        (json!(["env"]), "must be an object"),
    ] {
        let a = Agent::with_config(&config(&sim, fields));
        let out = a.file_cmd().assert().code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("field \"fields\"") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn with_a_config_directory_each_tenant_names_itself() {
    let sim = Sim::start(&["--events", "5", "--detect-events", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tenants");
    std::fs::create_dir(&conf).unwrap();
    for name in ["acme", "globex"] {
        let p = conf.join(format!("{name}.json"));
        std::fs::write(
            &p,
            config(&sim, json!({"siem_tenant": "{tenant}", "env": "prod"})).to_string(),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = dir.path().join("out.log");
    assert_cmd::Command::new(util::agent::bin())
        .arg("--config")
        .arg(&conf)
        .arg("--log-file")
        .arg(dir.path().join("agent.log"))
        .args(["--settle", "0", "--severity", "all"])
        .args(["-o", "FILE", "--format", "json", "-f"])
        .arg(&out)
        .assert()
        .success();
    let lines = util::agent::read_json_lines(&out);
    assert_eq!(lines.len(), 10);
    for name in ["acme", "globex"] {
        assert_eq!(
            lines.iter().filter(|l| l["siem_tenant"] == name).count(),
            5,
            "{lines:?}"
        );
    }
}
