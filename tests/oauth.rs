//! OAuth 2.0 client credentials through the binary, against the
//! simulator's token endpoint: a declared REST API's `"auth": {"type":
//! "oauth2", ...}` (client secret in the body or by HTTP Basic) and
//! Defender for Cloud Apps through Microsoft Entra ID (`tenant_id`,
//! `client_id`, `client_secret`). A token refused mid-run (revoked early)
//! or expiring mid-run is renewed with nothing lost or repeated; a wrong
//! client secret is one line naming `client_secret`; no secret or access
//! token shows in any output.

mod util;

use serde_json::{Value, json};
use std::collections::HashSet;
use util::agent::{Agent, Sim, id_of};

const CLIENT_SECRET: &str = "demo-client-secret";

fn rest_config(sim: &Sim, auth: Value) -> Value {
    let base = sim.url();
    json!({"source": "rest", "url": format!("{base}body/events"),
           "auth": auth, "since_param": "since", "records": "/data/items",
           "time_field": "published", "id_field": "uuid", "next": "body:/links/next"})
}

fn grant(sim: &Sim, extra: Value) -> Value {
    let mut g = json!({"type": "oauth2", "token_url": format!("{}oauth2/token", sim.url()),
                       "client_id": "demo-client", "client_secret": CLIENT_SECRET,
                       "scopes": ["okta.logs.read"]});
    for (k, v) in extra.as_object().unwrap() {
        g[k] = v.clone();
    }
    g
}

fn uuids(a: &Agent) -> Vec<String> {
    a.json_lines()
        .iter()
        .map(|l| l["uuid"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_whole_once(got: &[String], n: usize, log: &str) {
    assert_eq!(got.len(), n, "{log}");
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), n, "{log}");
}

/// Every file the agent wrote, and what it printed, holds neither the
/// client secret nor an access token.
fn assert_no_secret(a: &Agent, printed: &[&[u8]]) {
    let mut texts: Vec<(String, String)> = printed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("output {i}"),
                String::from_utf8_lossy(p).into_owned(),
            )
        })
        .collect();
    for entry in std::fs::read_dir(a.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().is_some_and(|n| n == "config.json") {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(&p) {
            texts.push((p.display().to_string(), t));
        }
    }
    for (what, t) in texts {
        assert!(!t.contains(CLIENT_SECRET), "{what} shows the client secret");
        assert!(!t.contains("sim-at-"), "{what} shows an access token:\n{t}");
        // The Basic credentials made of the secret.
        assert!(
            !t.contains("ZGVtby1jbGllbnQ6ZGVtby1jbGllbnQtc2VjcmV0"),
            "{what}"
        );
    }
}

fn tokens_got(a: &Agent) -> usize {
    a.log().matches("got an access token").count()
}

#[test]
fn a_token_refused_mid_run_is_renewed_and_nothing_is_lost_or_repeated() {
    // Each token is refused after 2 requests: 7 pages need 4 tokens.
    let sim = Sim::start(&["--vendor", "rest", "--events", "330", "--token-uses", "2"]);
    let a = Agent::with_config(&rest_config(&sim, grant(&sim, json!({}))));
    let out = a.file_cmd().arg("-d").assert().success();
    assert_whole_once(&uuids(&a), 330, &a.log());
    assert!(tokens_got(&a) >= 4, "{}", a.log());
    assert!(
        a.log().contains("refused the access token (HTTP 401)"),
        "{}",
        a.log()
    );
    // The next run: nothing new, nothing sent again.
    let again = a.file_cmd().arg("-d").assert().success();
    assert_eq!(uuids(&a).len(), 330);
    let o = out.get_output();
    let o2 = again.get_output();
    assert_no_secret(&a, &[&o.stdout, &o.stderr, &o2.stdout, &o2.stderr]);
}

#[test]
fn a_token_expiring_mid_run_is_renewed_before_it_ends() {
    // Tokens of 2 s, pages 150 ms apart: a run of 13 pages outlives two
    // tokens; each is renewed ahead of its end, so none is refused.
    let sim = Sim::start(&[
        "--vendor",
        "rest",
        "--events",
        "630",
        "--token-lifetime",
        "2",
        "--latency-ms",
        "150",
    ]);
    let a = Agent::with_config(&rest_config(
        &sim,
        grant(&sim, json!({"client_auth": "basic"})),
    ));
    let out = a.file_cmd().arg("-d").assert().success();
    assert_whole_once(&uuids(&a), 630, &a.log());
    assert!(tokens_got(&a) >= 2, "{}", a.log());
    assert!(!a.log().contains("refused the access token"), "{}", a.log());
    let o = out.get_output();
    assert_no_secret(&a, &[&o.stdout, &o.stderr]);
}

#[test]
fn a_wrong_client_secret_is_one_line_naming_it_and_shown_nowhere() {
    let sim = Sim::start(&["--vendor", "rest", "--events", "50"]);
    for auth in ["body", "basic"] {
        let secret = "wrong-secret-Zq~8/+x";
        let a = Agent::with_config(&rest_config(
            &sim,
            grant(&sim, json!({"client_secret": secret, "client_auth": auth})),
        ));
        let out = a.file_cmd().assert().code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("client_secret"), "{err}");
        assert!(err.contains("invalid_client"), "{err}");
        assert!(
            !err.contains("wrong-secret") && !err.contains("Zq%7E8"),
            "{err}"
        );
        assert!(!a.log().contains("wrong-secret"), "{}", a.log());
        assert!(a.json_lines().is_empty());
    }
}

#[test]
fn a_declaration_with_a_bad_grant_is_one_line_naming_the_key() {
    let sim = Sim::start(&["--vendor", "rest", "--events", "5"]);
    for (extra, want) in [
        (json!({"token_url": null}), "\"token_url\""),
        (json!({"client_auth": "jwt"}), "client_auth"),
        (json!({"scopes": 5}), "scopes"),
        (json!({"type": "saml"}), "oauth2"),
    ] {
        let mut g = grant(&sim, json!({}));
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                g.as_object_mut().unwrap().remove(k);
            } else {
                g[k] = v.clone();
            }
        }
        let a = Agent::with_config(&rest_config(&sim, g));
        let out = a.file_cmd().assert().code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("\"auth\"") && err.contains(want),
            "{want}: {err}"
        );
        assert!(!err.contains(CLIENT_SECRET), "{err}");
    }
}

fn mcas_config(sim: &Sim, secret: &str) -> Value {
    json!({"source": "mcas", "api_server": sim.url(), "login_server": sim.url(),
           "tenant_id": "demo", "client_id": "demo-client", "client_secret": secret})
}

#[test]
fn defender_through_entra_id_exports_everything_once_across_renewed_tokens() {
    let sim = Sim::start(&[
        "--vendor",
        "mcas",
        "--events",
        "450",
        "--plain",
        "--token-uses",
        "3",
    ]);
    let a = Agent::with_config(&mcas_config(&sim, CLIENT_SECRET));
    let out = a.file_cmd().arg("-d").assert().success();
    let got: Vec<String> = a.json_lines().iter().map(id_of).collect();
    assert_whole_once(&got, 450, &a.log());
    assert!(tokens_got(&a) >= 2, "{}", a.log());
    let again = a.file_cmd().assert().success();
    assert_eq!(a.json_lines().len(), 450);
    let o = out.get_output();
    let o2 = again.get_output();
    assert_no_secret(&a, &[&o.stdout, &o.stderr, &o2.stdout, &o2.stderr]);
}

#[test]
fn defender_with_a_wrong_client_secret_is_one_line_naming_it() {
    let sim = Sim::start(&["--vendor", "mcas", "--events", "20"]);
    let a = Agent::with_config(&mcas_config(&sim, "not-the-secret-123"));
    let out = a.file_cmd().assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("client_secret") && err.contains("Entra ID"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"), "{err}");
    // The legacy token and the application at once: said, not guessed.
    let both = Agent::with_config(&json!({"source": "mcas", "api_server": sim.url(),
        "token": "demo-token", "tenant_id": "demo", "client_id": "demo-client",
        "client_secret": CLIENT_SECRET}));
    let out = both.file_cmd().assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("\"token\"") && err.contains("not both"),
        "{err}"
    );
    // An application without its tenant.
    let partial = Agent::with_config(&json!({"source": "mcas", "api_server": sim.url(),
        "client_id": "demo-client", "client_secret": CLIENT_SECRET}));
    let out = partial.file_cmd().assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("\"tenant_id\" is missing"), "{err}");
}
