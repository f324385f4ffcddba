//! install.sh (with the test's binary, so that no nested cargo build runs):
//! installs, creates config.json mode 600 once, prints the cron line, and
//! can run again without changing anything; --uninstall removes all but the
//! config (and that too with --purge); the units' ExecStart keeps quoted
//! spaces of SIEM_AGENT_ARGS; and each example config in examples/ is one
//! the agent reads without an unknown key.

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
    let bin = util::agent::bin();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--bin".as_ref(), bin.as_os_str()];
    args.extend_from_slice(extra);
    run_install(prefix, config, &args)
}

/// `install.sh --uninstall --prefix PREFIX --config-dir CONFIG EXTRA...`.
fn uninstall(
    prefix: &std::path::Path,
    config: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--uninstall".as_ref()];
    args.extend_from_slice(extra);
    run_install(prefix, config, &args)
}

fn run_install(
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
    // The state in /var/lib/siem-agent, not beside config.json.
    let cron = format!(
        "\n*/10 * * * * {} --config {} --state-dir /var/lib/siem-agent\n",
        bin.display(),
        cfg.display()
    );
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
    assert!(service.contains("ExecStart=/bin/sh -c '"), "{service}");
    assert!(
        service.contains(&format!(
            "exec \"{}\" --config",
            prefix.join("bin/siem-agent").display()
        )),
        "{service}"
    );
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

/// Every file (not directory) under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.symlink_metadata().unwrap().is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn uninstall_leaves_only_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    install(&prefix, &config);
    assert_eq!(files_under(&prefix).len(), 5, "{:?}", files_under(&prefix));
    let out = uninstall(&prefix, &config, &[]);
    assert!(
        files_under(&prefix).is_empty(),
        "{:?}",
        files_under(&prefix)
    );
    assert_eq!(files_under(dir.path()), vec![config.join("config.json")]);
    assert!(out.contains("kept") && out.contains("--purge"), "{out}");
    // Nothing left to remove: it says so and succeeds again.
    uninstall(&prefix, &config, &[]);

    // --purge takes the config and the state directory too.
    let state = dir.path().join("var/lib/siem-agent");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("export_log.state"), "{}").unwrap();
    uninstall(
        &prefix,
        &config,
        &[
            "--purge".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
    );
    assert!(!config.exists() && !state.exists());
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn uninstall_with_systemd_removes_the_units_and_an_unedited_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    let units = dir.path().join("units");
    let systemd: [&std::ffi::OsStr; 3] = [
        "--systemd".as_ref(),
        "--unit-dir".as_ref(),
        units.as_os_str(),
    ];
    install_with(&prefix, &config, &systemd);
    // What `systemctl enable siem-agent.timer` makes.
    std::fs::create_dir_all(units.join("timers.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        units.join("siem-agent.timer"),
        units.join("timers.target.wants/siem-agent.timer"),
    )
    .unwrap();
    // Without --systemd the units stay, and it says how to remove them.
    let out = uninstall(
        &prefix,
        &config,
        &["--unit-dir".as_ref(), units.as_os_str()],
    );
    assert!(out.contains("add --systemd"), "{out}");
    assert_eq!(files_under(&units).len(), 3);

    install_with(&prefix, &config, &systemd);
    uninstall(&prefix, &config, &systemd);
    assert!(
        files_under(&prefix).is_empty(),
        "{:?}",
        files_under(&prefix)
    );
    assert!(files_under(&units).is_empty(), "{:?}", files_under(&units));
    assert_eq!(files_under(dir.path()), vec![config.join("config.json")]);

    // An edited siem-agent.env holds the administrator's options: kept.
    install_with(&prefix, &config, &systemd);
    let env = config.join("siem-agent.env");
    let edited = std::fs::read_to_string(&env).unwrap().replace(
        "SIEM_AGENT_ARGS=\n",
        "SIEM_AGENT_ARGS=--app \"Yahoo Mail\"\n",
    );
    std::fs::write(&env, &edited).unwrap();
    let out = uninstall(&prefix, &config, &systemd);
    assert!(out.contains(&format!("kept {}", env.display())), "{out}");
    assert_eq!(std::fs::read_to_string(&env).unwrap(), edited);
    assert_eq!(
        files_under(dir.path()),
        vec![config.join("config.json"), env.clone()]
    );
}

#[test]
fn purge_goes_with_uninstall_only() {
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--purge")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--purge goes with --uninstall"));
}

#[test]
fn help_documents_uninstall_and_quoted_arguments() {
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--uninstall",
        "--purge",
        "--state-dir",
        "/var/lib/siem-agent",
        "--app \"Yahoo Mail\"",
        "--test-deps",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
    assert!(!help.contains("set -eu"), "{help}");
}

#[test]
fn cron_line_says_to_move_the_state_an_older_line_kept_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("export_log.state"), "{}").unwrap();
    let out = install(&prefix, &config);
    assert!(
        out.contains(&format!(
            "mv {} /var/lib/siem-agent/",
            config.join("export_log.state").display()
        )),
        "{out}"
    );
}

/// Runs a unit's ExecStart= as systemd would (`$$` is a literal `$`; the
/// single-quoted script is one word, as for sh), with `args` as the value
/// siem-agent.env gives SIEM_AGENT_ARGS; returns the arguments the agent
/// (a stand-in that prints them) was given.
fn exec_start_args(unit: &str, args: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("no ExecStart=")
        .replace("$$", "$");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .env("SIEM_AGENT_CONFIG", "/etc/siem agent/config.json")
        .env("STATE_DIRECTORY", "/var/lib/siem-agent")
        .env("LOGS_DIRECTORY", "/var/log/siem-agent")
        .env("SIEM_AGENT_ARGS", args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn units_keep_quoted_spaces_of_the_export_s_options() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let config = dir.path().join("etc/siem-agent");
    let units = dir.path().join("units");
    install_with(
        &prefix,
        &config,
        &[
            "--systemd".as_ref(),
            "--unit-dir".as_ref(),
            units.as_os_str(),
        ],
    );
    // A stand-in for the agent that prints its arguments, one a line.
    let bin = prefix.join("bin/siem-agent");
    std::fs::write(&bin, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    let ours = std::fs::read_to_string(units.join("siem-agent.service")).unwrap();
    // The package's unit runs /usr/bin/siem-agent: the stand-in instead.
    let package = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/debian/siem-agent.service"
    ))
    .unwrap()
    .replace("/usr/bin/siem-agent", &bin.display().to_string());
    let head = [
        "--config",
        "/etc/siem agent/config.json",
        "--state-dir",
        "/var/lib/siem-agent",
        "--log-file",
        "/var/log/siem-agent/siem-agent.log",
    ];
    for unit in [&ours, &package] {
        assert_eq!(exec_start_args(unit, ""), head, "{unit}");
        let args = exec_start_args(
            unit,
            r#"--severity all --app "Yahoo Mail" --app 'Box *' -o REMOTE -t relp://siem.example:2514"#,
        );
        let mut want: Vec<&str> = head.to_vec();
        want.extend([
            "--severity",
            "all",
            "--app",
            "Yahoo Mail",
            "--app",
            "Box *",
            "-o",
            "REMOTE",
            "-t",
            "relp://siem.example:2514",
        ]);
        assert_eq!(args, want, "{unit}");
        // A glob stays as written (set -f), even where files match it.
        let args = exec_start_args(unit, "--app /*");
        assert_eq!(args[head.len()..], ["--app", "/*"]);
    }
}

/// Each example config (shipped in /usr/share/doc/siem-agent/examples/) is
/// read by the agent as its source, every key known: once its
/// placeholders are filled in, it parses, and no key is warned about.
#[test]
fn example_configs_parse_with_known_keys_only() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cirrus.json",
            "cloudsoc.json",
            "mcas.json",
            "rest-okta.json",
            "sls.json"
        ]
    );
    for name in &names {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let source = json["source"].as_str().expect("names its source");
        assert!(name.starts_with(source), "{name}: source {source}");
        let filled = text.replace("replace-with-", "filled-");
        let config = siem_agent::config::Config::parse(&path, filled.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.source.name(), source);
        assert!(config.unknown.is_empty(), "{name}: {:?}", config.unknown);
    }
    // Copied and not filled in, the CloudSOC example is refused as such.
    let path = dir.join("cloudsoc.json");
    let raw = std::fs::read(&path).unwrap();
    let err = siem_agent::config::Config::parse(&path, &raw).expect_err("placeholders refused");
    assert!(err.to_string().contains("placeholder"), "{err}");
}

/// The man page install.sh and the package install: clap's sections, then
/// ENVIRONMENT (every variable a flag reads), FILES and EXAMPLES before
/// VERSION, and nothing groff would read as a request by mistake.
#[test]
fn man_page_has_environment_files_and_examples() {
    let out = Command::new(util::agent::bin())
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    let at = |section: &str| {
        page.find(&format!("\n.SH {section}\n"))
            .unwrap_or_else(|| panic!("no {section} section"))
    };
    assert!(at("OPTIONS") < at("ENVIRONMENT"));
    assert!(at("ENVIRONMENT") < at("FILES"));
    assert!(at("FILES") < at("EXAMPLES"));
    assert!(at("EXAMPLES") < at("VERSION"));
    // One FILES section: the options' "Files" heading is renamed.
    assert_eq!(page.matches("\n.SH FILES\n").count(), 1);
    assert!(page.contains("\n.SH \"FILE OPTIONS\"\n"));
    for var in [
        "SIEM_AGENT_MCAS_TOKEN",
        "API_KEY",
        "API_SECRET",
        "SLS_AK_KEY",
        "SIEM_AGENT_PROXY_PASSWORD",
        "SIEM_AGENT_HEC_TOKEN",
        "SIEM_AGENT_ARGS",
    ] {
        assert!(page.contains(&format!("\\fB{var}\\fR")), "{var}");
    }
    for file in [
        "config.json",
        "export_log.state",
        "export_log.lock",
        "last_job.status",
    ] {
        assert!(page.contains(file), "{file}");
    }
    assert!(page.contains("\\-\\-state\\-dir /var/lib/siem\\-agent"));
    assert!(page.contains("\\-\\-dry\\-run") && page.contains("\\-\\-start\\-date"));
}
