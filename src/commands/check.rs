//! `siem-agent check`: each thing a run needs, tried without sending a
//! log: the config file, the state directory, the API (its data sources
//! endpoint, and one logs request with `limit=1` per app), and every
//! destination (connect, TLS handshake, RELP open, HEC health and token).
//! One line per check; all must pass.

use crate::cli::settings::{Destination, Settings};
use crate::config::Config;
use crate::report::one_line;
use crate::sink::{SendRetry, Sink, describe};
use crate::source::Source;
use crate::state::StateDir;

/// One check's outcome.
#[derive(Debug)]
pub struct Check {
    pub what: String,
    pub result: Result<String, String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A server's words may hold anything (a secret it echoed, a
        // terminal escape): printed redacted and escaped.
        let shown = |s: &str| crate::report::printable(&crate::secret::redact(s)).into_owned();
        match &self.result {
            Ok(detail) => write!(f, "PASS {}: {}", shown(&self.what), shown(detail)),
            Err(why) => write!(f, "FAIL {}: {}", shown(&self.what), shown(why)),
        }
    }
}

fn check(what: impl Into<String>, result: Result<String, String>) -> Check {
    Check {
        what: what.into(),
        result,
    }
}

/// Runs every check; `on_each` sees them as they finish.
pub async fn run(settings: &Settings, mut on_each: impl FnMut(&Check)) -> Vec<Check> {
    let mut all = Vec::new();
    let mut push = |c: Check, all: &mut Vec<Check>| {
        on_each(&c);
        all.push(c);
    };
    // State directory: exists or can be made, and takes a file.
    let state = StateDir::open(&settings.state_dir)
        .map_err(|e| one_line(&e))
        .and_then(|s| {
            let probe = s.path(".tmp-check");
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| format!("{}: cannot write: {e}", s.dir.display()))
                .map(|()| s)
        });
    push(
        check(
            "state directory",
            state
                .as_ref()
                .map(|s| s.dir.display().to_string())
                .map_err(Clone::clone),
        ),
        &mut all,
    );
    let config = Config::load_as(&settings.config, settings.source)
        .map_err(|e| one_line(&e))
        .and_then(|mut c| {
            settings.apply_to(&mut c).map_err(|e| e.0)?;
            Ok(c)
        });
    push(
        check(
            "config",
            config
                .as_ref()
                .map(|c| match &c.vendor {
                    crate::source::VendorConfig::CloudSoc(cs) => {
                        format!("{} (tenant {})", c.path.display(), cs.tenant)
                    }
                    _ => format!("{} (source {})", c.path.display(), c.source),
                })
                .map_err(Clone::clone),
        ),
        &mut all,
    );
    let mut destinations: Vec<Destination> = settings.destinations.clone();
    if let Ok(config) = &config {
        let source = Source::open(
            &config.vendor,
            &config.path,
            &settings.http,
            settings.proxy.as_ref(),
            &settings.source_options,
        )
        .map_err(|e| one_line(&e));
        match source {
            Err(e) => push(check("API", Err(e)), &mut all),
            Ok(source) => {
                push(
                    check(
                        format!("API {}", config.vendor.api_url()),
                        source
                            .probe_credentials()
                            .await
                            .map(|()| "credentials accepted".into())
                            .map_err(|e| one_line(&e)),
                    ),
                    &mut all,
                );
                if let crate::source::Source::Sls(sls) = &source {
                    for (what, r) in sls.probe_details().await {
                        push(check(what, r.map_err(|e| one_line(&e))), &mut all);
                    }
                }
                for app in settings.streams(config) {
                    let r = source
                        .probe_stream(app)
                        .await
                        .map(|n| {
                            format!(
                                "a logs request answered ({n} log in the last hour with limit=1)"
                            )
                        })
                        .map_err(|e| one_line(&e));
                    push(check(format!("API {app} logs"), r), &mut all);
                }
            }
        }
        match settings.destinations_with(config) {
            Ok(d) => destinations = d,
            Err(e) => push(check("config destinations", Err(e.0)), &mut all),
        }
    }
    let once = SendRetry {
        retries: 0,
        ..settings.send_retry
    };
    for d in &destinations {
        let what = format!("output {}", describe(&d.output));
        let r = match Sink::open(&d.output, once).await {
            Err(e) => Err(one_line(&e)),
            Ok(mut sink) => {
                let probed = sink.probe().await.map_err(|e| one_line(&e));
                // Nothing was sent: closing only ends a RELP session.
                let _ = sink.close().await;
                probed.map(|()| "reachable".to_string())
            }
        };
        push(check(what, r), &mut all);
    }
    all
}
