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
    /// Passed, but with something to mend (a loose config mode).
    pub warning: Option<String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A server's words may hold anything (a secret it echoed, a
        // terminal escape): printed redacted and escaped.
        let shown = |s: &str| crate::report::printable(&crate::secret::redact(s)).into_owned();
        match &self.result {
            Ok(detail) if self.warning.is_some() => write!(
                f,
                "WARN {}: {}; {}",
                shown(&self.what),
                shown(detail),
                shown(self.warning.as_deref().unwrap_or_default())
            ),
            Ok(detail) => write!(f, "PASS {}: {}", shown(&self.what), shown(detail)),
            Err(why) => write!(f, "FAIL {}: {}", shown(&self.what), shown(why)),
        }
    }
}

fn check(what: impl Into<String>, result: Result<String, String>) -> Check {
    Check {
        what: what.into(),
        result,
        warning: None,
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
    let mut config_check = check(
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
    );
    // As a run warns: the file holds secrets.
    if let Ok(c) = &config {
        let mut warnings = Vec::new();
        if let Some(mode) = c.loose_permissions() {
            warnings.push(format!(
                "group or others can read it (mode {mode:03o}) and it holds secrets: chmod 600 it"
            ));
        }
        if let Some(w) = c.unknown_keys_warning() {
            // Without the path, which the line already shows.
            let path = format!("{}: ", c.path.display());
            warnings.push(w.strip_prefix(&path).unwrap_or(&w).to_string());
        }
        if !warnings.is_empty() {
            config_check.warning = Some(warnings.join("; "));
        }
    }
    push(config_check, &mut all);
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
                            if n == 0 {
                                "answered: no log in the last hour".to_string()
                            } else {
                                "answered: logs in the last hour".to_string()
                            }
                        })
                        .map_err(|e| one_line(&e));
                    // A stream named `logs` (Cirrus, a declared API) is
                    // not "logs logs".
                    let what = if app.as_str() == "logs" {
                        "API logs".to_string()
                    } else {
                        format!("API {app} logs")
                    };
                    push(check(what, r), &mut all);
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
        // A file is not created (nor a missing one made) by a check.
        if let crate::sink::Output::File { path, .. } = &d.output {
            push(check(what, file_writable(path)), &mut all);
            continue;
        }
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

/// Whether the agent could write the file output `path`, found without
/// creating it: an existing file opened to append, else a trial file in
/// its directory, removed at once.
fn file_writable(path: &std::path::Path) -> Result<String, String> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| "writable".to_string())
            .map_err(|e| format!("cannot append to it: {e}"));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    tempfile::Builder::new()
        .prefix(".siem-agent-check-")
        .tempfile_in(dir)
        .map(|_| "can be created (not created by check)".to_string())
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))
}
