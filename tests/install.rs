//! install.sh (with the test's binary, so that no nested cargo build runs):
//! installs, creates config.json mode 600 once, prints the cron line, and
//! can run again without changing anything.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn install(prefix: &std::path::Path, config: &std::path::Path) -> String {
    install_with(prefix, config, &[])
}

fn install_with(
    prefix: &std::path::Path,
    config: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> String {
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--config-dir")
        .arg(config)
        .arg("--bin")
        .arg(util::agent::bin())
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn install_is_complete_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    let first = install(&prefix, &config);
    let bin = prefix.join("bin/siem-agent");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("siem-agent "));
    let cfg = config.join("config.json");
    assert_eq!(
        std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(first.contains("created"), "{first}");
    let cron = format!("*/10 * * * * {} --config {}", bin.display(), cfg.display());
    assert!(first.contains(&cron), "{first}");
    // The man page and completions.
    for f in [
        "share/man/man1/siem-agent.1",
        "share/bash-completion/completions/siem-agent",
        "share/zsh/site-functions/_siem-agent",
        "share/fish/vendor_completions.d/siem-agent.fish",
    ] {
        let text = std::fs::read_to_string(prefix.join(f)).unwrap_or_default();
        assert!(text.contains("elastica"), "{f}");
    }

    // The user's config is never overwritten.
    std::fs::write(&cfg, "{\"mine\": true}").unwrap();
    let second = install(&prefix, &config);
    assert!(second.contains("kept"), "{second}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{\"mine\": true}");
}

#[test]
fn install_rejects_unknown_options() {
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option '--frobnicate'"));
}

#[test]
fn systemd_units_are_written_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    let units = dir.path().join("units");
    let out = install_with(
        &prefix,
        &config,
        &[
            "--systemd".as_ref(),
            "--unit-dir".as_ref(),
            units.as_os_str(),
        ],
    );
    let service = std::fs::read_to_string(units.join("siem-agent.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("siem-agent.timer")).unwrap();
    assert!(
        service.contains("Type=oneshot") && service.contains("StateDirectory=siem-agent"),
        "{service}"
    );
    assert!(service.contains(&format!(
        "ExecStart={}",
        prefix.join("bin/siem-agent").display()
    )));
    assert!(service.contains("ProtectSystem=strict") && service.contains("NoNewPrivileges=yes"));
    assert!(
        timer.contains("OnCalendar=*:0/10") && timer.contains("Persistent=true"),
        "{timer}"
    );
    assert!(
        out.contains("systemctl enable --now siem-agent.timer"),
        "{out}"
    );
    assert_eq!(
        std::fs::metadata(config.join("siem-agent.env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // systemd's own check, where the tool exists.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let v = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(units.join("siem-agent.service"))
            .arg(units.join("siem-agent.timer"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&v.stderr);
        let problems: Vec<&str> = err
            .lines()
            // Complaints about the host (no running systemd, other units), not ours.
            .filter(|l| l.contains("siem-agent"))
            .collect();
        assert!(problems.is_empty(), "{err}");
    } else {
        eprintln!("systemd-analyze not found: the units' syntax was not verified");
    }
}
