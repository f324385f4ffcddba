//! Secrets kept out of config.json, through the binary: `<key>_file`
//! (mode checked), systemd's `$CREDENTIALS_DIRECTORY`, the precedence of a
//! flag over an environment variable over the file, `API_KEY`/`API_SECRET`
//! for Cirrus only (said once when they replace config.json's), and an
//! API's refusal naming where the refused credential came from.

mod util;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use util::agent::{Agent, Sim};

fn secret_file(a: &Agent, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = a.path(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn cloudsoc(sim: &Sim, secret: Value) -> Value {
    let mut c = json!({"api_server": sim.url(), "key_id": "demo-key", "tenant": "demo"});
    for (k, v) in secret.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn a_secret_file_replaces_the_key_and_a_loose_one_is_refused() {
    let sim = Sim::start(&["--events", "20", "--detect-events", "0"]);
    let a = Agent::with_config(&cloudsoc(&sim, json!({"key_secret_file": "ks"})));
    secret_file(&a, "ks", "demo-secret\n", 0o600);
    a.file_cmd().args(["--severity", "all"]).assert().success();
    assert_eq!(a.json_lines().len(), 20);
    // Readable by everyone: refused, naming the key and the file.
    secret_file(&a, "ks", "demo-secret\n", 0o644);
    let out = a.file_cmd().assert().code(1);
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("field \"key_secret_file\"") && err.contains("readable by everyone"),
        "{err}"
    );
    // Both the key and its file: which one? Said, not guessed.
    let b = Agent::with_config(&cloudsoc(
        &sim,
        json!({"key_secret_file": "ks", "key_secret": "x"}),
    ));
    secret_file(&b, "ks", "demo-secret", 0o600);
    let err = stderr(&b.file_cmd().assert().code(1));
    assert!(err.contains("both set"), "{err}");
}

#[test]
fn a_refused_secret_names_the_file_it_came_from() {
    let sim = Sim::start(&["--events", "5"]);
    let a = Agent::with_config(&cloudsoc(&sim, json!({"key_secret_file": "ks"})));
    let file = secret_file(&a, "ks", "not-the-secret-42\n", 0o400);
    let out = a.file_cmd().assert().code(1);
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "key_secret from key_secret_file {}",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("not-the-secret-42"), "{err}");
    assert!(!a.log().contains("not-the-secret-42"));
    // From config.json itself: named so.
    let b = Agent::with_config(&cloudsoc(&sim, json!({"key_secret": "not-the-secret-42"})));
    let err = stderr(&b.file_cmd().assert().code(1));
    assert!(
        err.contains(&format!(
            "key_id, key_secret and tenant in {}",
            b.config_path().display()
        )),
        "{err}"
    );
}

#[test]
fn systemd_credentials_fill_what_the_config_lacks() {
    let sim = Sim::start(&["--events", "10", "--detect-events", "0"]);
    let a = Agent::with_config(&cloudsoc(&sim, json!({})));
    let creds = a.path("credentials");
    std::fs::create_dir(&creds).unwrap();
    // systemd's own mode for a credential, whatever it is, is trusted.
    std::fs::write(creds.join("key_secret"), "demo-secret").unwrap();
    std::fs::set_permissions(
        creds.join("key_secret"),
        std::fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    a.file_cmd()
        .args(["--severity", "all"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 10);
    // The config's own name first (config.key_secret), and a refusal names it.
    std::fs::write(creds.join("config.key_secret"), "wrong-one-77").unwrap();
    let err = stderr(
        &a.file_cmd()
            .arg("-r")
            .env("CREDENTIALS_DIRECTORY", &creds)
            .assert()
            .code(1),
    );
    assert!(
        err.contains("key_secret from the systemd credential") && err.contains("config.key_secret"),
        "{err}"
    );
}

#[test]
fn declared_api_secrets_come_from_files_too() {
    let sim = Sim::start(&["--vendor", "rest", "--events", "30"]);
    let base = sim.url();
    let a = Agent::with_config(
        &json!({"source": "rest", "url": format!("{base}api/v1/logs"),
        "headers": {"Authorization_file": "okta-token"}, "since_param": "since",
        "time_field": "published", "id_field": "uuid", "next": "link"}),
    );
    secret_file(&a, "okta-token", "SSWS demo-token\n", 0o600);
    a.file_cmd().assert().success();
    assert_eq!(a.json_lines().len(), 30);
    let b = Agent::with_config(
        &json!({"source": "rest", "url": format!("{base}body/events"),
        "auth": {"type": "oauth2", "token_url": format!("{base}oauth2/token"),
                 "client_id": "demo-client", "client_secret_file": "client-secret"},
        "since_param": "since", "records": "/data/items", "time_field": "published",
        "id_field": "uuid", "next": "body:/links/next"}),
    );
    let file = secret_file(&b, "client-secret", "wrong-client-secret\n", 0o600);
    let err = stderr(&b.file_cmd().assert().code(1));
    assert!(
        err.contains(&format!(
            "client_secret from auth's client_secret_file {}",
            file.display()
        )),
        "{err}"
    );
    secret_file(&b, "client-secret", "demo-client-secret\n", 0o600);
    b.file_cmd().assert().success();
    assert_eq!(b.json_lines().len(), 30);
}

#[test]
fn api_key_and_api_secret_apply_to_cirrus_only_and_say_so() {
    let sim = Sim::start(&["--vendor", "cirrus", "--events", "8"]);
    let cirrus = Agent::with_config(&json!({"source": "cirrus",
        "apiurl": format!("{}logs/v1", sim.url()), "apikey": "demo-key",
        "apisecret": "demo-secret"}));
    // A shell's API_SECRET over config.json's: used, said once, and named
    // when refused.
    let out = cirrus
        .file_cmd()
        .env("API_SECRET", "shell-secret-99")
        .assert()
        .code(1);
    let err = stderr(&out);
    assert_eq!(
        err.matches("API_SECRET (set in the environment) is used over")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("apisecret from $API_SECRET"), "{err}");
    assert!(!err.contains("shell-secret-99"), "{err}");
    // A flag wins over the variable.
    cirrus
        .file_cmd()
        .env("API_SECRET", "shell-secret-99")
        .args(["--apisecret", "demo-secret"])
        .assert()
        .success();
    assert_eq!(cirrus.json_lines().len(), 8);
    // Another source: API_KEY and API_SECRET mean nothing to it.
    let cs = Sim::start(&["--events", "4", "--detect-events", "0"]);
    let a = Agent::with_config(&cloudsoc(&cs, json!({"key_secret": "demo-secret"})));
    let out = a
        .file_cmd()
        .args(["--severity", "all"])
        .env("API_KEY", "other-program-key")
        .env("API_SECRET", "other-program-secret")
        .assert()
        .success();
    assert!(!stderr(&out).contains("API_"), "{}", stderr(&out));
    assert_eq!(a.json_lines().len(), 4);
}

#[test]
fn a_refused_token_flag_is_named_as_the_flag() {
    let sim = Sim::start(&["--vendor", "mcas", "--events", "5"]);
    let a = Agent::with_config(&json!({"source": "mcas", "api_server": sim.url(),
        "token": "demo-token"}));
    let err = stderr(
        &a.file_cmd()
            .args(["--token", "flag-token-123"])
            .assert()
            .code(1),
    );
    assert!(err.contains("from the --token flag"), "{err}");
    let err = stderr(
        &a.file_cmd()
            .env("SIEM_AGENT_MCAS_TOKEN", "env-token-123")
            .assert()
            .code(1),
    );
    assert!(err.contains("from $SIEM_AGENT_MCAS_TOKEN"), "{err}");
}

#[test]
fn the_proxy_password_comes_from_a_file_or_a_systemd_credential() {
    // The simulator also plays the proxy; the api_server itself is unreachable.
    let sim = Sim::start(&[
        "--events",
        "6",
        "--detect-events",
        "0",
        "--proxy-auth",
        "bob:pr0xy-pa55",
    ]);
    let proxy = format!("127.0.0.1:{}", sim.port);
    let a = Agent::new("http://127.0.0.1:9/");
    let file = secret_file(&a, "proxy-pass", "pr0xy-pa55\n", 0o600);
    a.file_cmd()
        .args([
            "--severity",
            "all",
            "--proxy",
            &proxy,
            "-u",
            "bob",
            "--password-file",
        ])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(a.json_lines().len(), 6);
    // Readable by everyone: refused before anything is asked.
    secret_file(&a, "proxy-pass", "pr0xy-pa55\n", 0o644);
    let err = stderr(
        &a.file_cmd()
            .args(["--proxy", &proxy, "-u", "bob", "--password-file"])
            .arg(&file)
            .assert()
            .code(1),
    );
    assert!(
        err.contains("--password-file") && err.contains("readable by everyone"),
        "{err}"
    );
    // systemd's credential proxy_password.
    let b = Agent::new("http://127.0.0.1:9/");
    let creds = b.path("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("proxy_password"), "pr0xy-pa55").unwrap();
    b.file_cmd()
        .args(["--severity", "all", "--proxy", &proxy, "-u", "bob"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .assert()
        .success();
    assert_eq!(b.json_lines().len(), 6);
}
