//! install.sh (with the test's binary, so that no nested cargo build runs):
//! installs, creates config.json mode 600 once, prints the cron line, and
//! can run again without changing anything.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn install(prefix: &std::path::Path, config: &std::path::Path) -> String {
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--config-dir")
        .arg(config)
        .arg("--bin")
        .arg(util::agent::bin())
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
