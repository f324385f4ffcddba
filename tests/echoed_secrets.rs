//! Secrets a server echoes back: a declared REST API answers 400 with a
//! body that quotes the request (its query and headers) in each form a
//! server may write it (raw, percent-encoded with `+` or `%20` and hex in
//! either case, JSON-escaped with `\/` or `\uXXXX`, percent-encoded then
//! JSON-escaped). No form of any secret (a declared `params` value, a
//! header value and its token, Basic credentials and their base64, a
//! bearer token, the proxy's credentials) may reach stdout, stderr, the
//! log file, the state directory or the metrics file, through an export
//! (with `-d`), `check` or `status`.

mod util;

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use util::agent::{Agent, bin};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A declared `params` value: an API key with a `/`, a `+`, a space, a `=`
/// and a letter outside ASCII.
const PARAM_KEY: &str = "Qk/3+Zx 7=Ab-é";
/// Keys that look like a number or a word are keys all the same.
const DIGIT_KEY: &str = "90210555123498761234";
const WORD_KEY: &str = "secretkeyonlyletters";
const HEADER_TOKEN: &str = "Hd/9+Tok 3=Yy";
const BASIC_USER: &str = "bas-user";
const BASIC_PASS: &str = "Bp/4+Pass 8=Ww";
const BEARER: &str = "Br/5+Tok 6=Vv";
const PROXY_USER: &str = "px-user";
const PROXY_PASS: &str = "Pp/7+Word 2=Uu";

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of every byte but unreserved ones; `space` for ' '.
fn percent(v: &str, space: &str, lower: bool) -> String {
    let mut out = String::new();
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push_str(space);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON escapes of the characters in `which` (`\/` for `/` when `slash`),
/// `\uXXXX` in `upper` or lower hex; `all`: every character escaped.
fn json_escaped(v: &str, which: &str, all: bool, upper: bool) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if c == '/' && !all && which.contains('/') {
            out.push_str("\\/");
        } else if all || which.contains(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                if upper {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every form of `v` the stub writes, and the test looks for.
fn forms(v: &str) -> Vec<String> {
    let form = percent(v, "+", false);
    vec![
        v.to_string(),
        form.clone(),
        percent(v, "%20", false),
        percent(v, "%20", true),
        percent(v, "+", true),
        json_escaped(v, "/", false, false),
        json_escaped(v, "+ =", false, true),
        json_escaped(v, "/+", false, false),
        json_escaped(v, "", true, false),
        json_escaped(v, "", true, true),
        // Percent-encoded, then the `%` and `+` escaped as JSON.
        json_escaped(&form, "%+", false, false),
    ]
}

/// The secrets, as the request carries them (the stub echoes what it
/// received; the test looks for these).
fn secrets() -> Vec<String> {
    vec![
        PARAM_KEY.into(),
        DIGIT_KEY.into(),
        WORD_KEY.into(),
        format!("SSWS {HEADER_TOKEN}"),
        HEADER_TOKEN.into(),
        BASIC_PASS.into(),
        base64(format!("{BASIC_USER}:{BASIC_PASS}").as_bytes()),
        format!(
            "Basic {}",
            base64(format!("{BASIC_USER}:{BASIC_PASS}").as_bytes())
        ),
        BEARER.into(),
        PROXY_PASS.into(),
        base64(format!("{PROXY_USER}:{PROXY_PASS}").as_bytes()),
    ]
}

/// Answers every request 400, quoting one of its values (query values,
/// then headers) in one form, the next request the next (value, form).
struct Echo(Arc<AtomicUsize>);

impl Respond for Echo {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut values: Vec<(String, String)> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (name, v) in &req.headers {
            if let Ok(v) = v.to_str() {
                values.push((name.as_str().to_string(), v.to_string()));
            }
        }
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let forms_per_value = forms("x").len();
        let (name, value) = &values[(n / forms_per_value) % values.len()];
        let shown = &forms(value)[n % forms_per_value];
        let body = format!(
            "{{\"request\": \"{}?{name}={shown}\", \"query\": \"{}\"}}",
            req.url.path(),
            req.url.query().unwrap_or("")
        );
        ResponseTemplate::new(400).set_body_string(body)
    }
}

/// What a run showed, its outputs and the files it left.
fn everything(a: &Agent, outs: &[Output]) -> String {
    let mut all = String::new();
    for o in outs {
        all.push_str(&String::from_utf8_lossy(&o.stdout));
        all.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    for entry in std::fs::read_dir(a.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        // The config file holds the secrets: it is the user's.
        if path.file_name().unwrap() != "config.json" && path.is_file() {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

fn assert_no_form_of_any_secret(all: &str) {
    // A JSON file's strings are escaped once more: undone too.
    let unescaped = all.replace("\\\\", "\\");
    for secret in secrets() {
        for form in forms(&secret) {
            assert!(
                !all.contains(&form) && !unescaped.contains(&form),
                "{form:?} (a form of {secret:?}) was written:\n{all}"
            );
        }
    }
}

/// Runs `config` against the echo stub until every (value, form) was
/// answered, through exports (`-d`, a log file, a metrics file), `check`
/// and `status`; returns everything they wrote.
fn exercise(config: serde_json::Value, proxy: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Echo(count.clone()))
            .mount(&server)
            .await;
        server
    });
    let mut config = config;
    config["url"] = format!("{}/logs", server.uri()).into();
    let a = Agent::with_config(&config);
    let proxy_args: Vec<String> = if proxy {
        vec![
            "--proxy".into(),
            server.uri(),
            "-u".into(),
            PROXY_USER.into(),
            "-p".into(),
            PROXY_PASS.into(),
        ]
    } else {
        Vec::new()
    };
    let metrics = a.path("metrics.prom");
    let mut outs = Vec::new();
    // Enough requests for each value of a request in each form.
    let wanted = 16 * forms("x").len();
    for i in 0.. {
        if count.load(Ordering::SeqCst) >= wanted {
            break;
        }
        assert!(i < 400, "the stub was not asked enough");
        let out = if i % 5 == 4 {
            Command::new(bin())
                .arg("check")
                .arg("--config")
                .arg(a.config_path())
                .arg("--log-file")
                .arg(a.path("agent.log"))
                .args(["-o", "FILE", "-f"])
                .arg(a.path("out.log"))
                .args(&proxy_args)
                .output()
                .unwrap()
        } else {
            a.file_cmd()
                .arg("-d")
                .arg("--metrics-file")
                .arg(&metrics)
                .args(&proxy_args)
                .output()
                .unwrap()
        };
        assert!(!out.status.success());
        outs.push(out);
        let status = Command::new(bin())
            .arg("status")
            .arg("--config")
            .arg(a.config_path())
            .output()
            .unwrap();
        outs.push(status);
    }
    let all = everything(&a, &outs);
    // The answers did reach every output (masked).
    assert!(all.contains("HTTP 400") && all.contains("***"), "{all}");
    assert!(a.log().contains("HTTP 400"), "{}", a.log());
    assert!(
        a.status().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{:?}",
        a.status()
    );
    assert!(metrics.exists());
    assert_no_form_of_any_secret(&all);
}

#[test]
fn echoed_params_headers_and_basic_credentials_are_masked_in_every_form() {
    exercise(
        serde_json::json!({"source": "rest",
            "headers": {"X-Api-Key": format!("SSWS {HEADER_TOKEN}")},
            "auth": {"basic": [BASIC_USER, BASIC_PASS]},
            "params": {"api_key": PARAM_KEY, "limit": "5"},
            "since_param": "since", "time_field": "published"}),
        false,
    );
}

#[test]
fn echoed_bearer_tokens_and_proxy_credentials_are_masked_in_every_form() {
    exercise(
        serde_json::json!({"source": "rest",
            "auth": {"bearer": BEARER},
            "params": {"api_key": PARAM_KEY, "token": DIGIT_KEY, "account": WORD_KEY, "limit": "1000"},
            "since_param": "since", "time_field": "published"}),
        true,
    );
}
