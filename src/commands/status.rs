//! `siem-agent status`: each app's cursor and how far behind now it is, and
//! the last run (from `last_job.status`), as text or JSON. Reads only.

use crate::cli::StatusArgs;
use crate::cli::settings::config_dir;
use crate::event::api_timestamp;
use crate::state::status::Status;
use crate::state::{CursorFile, STATE_FILE, STATUS_FILE, StateError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Why `status` cannot report.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Tenants(#[from] crate::tenant::TenantError),
}

/// Whether a report says something is wrong: a config that cannot be
/// read, a state that cannot, or a last run that failed (any tenant's).
pub fn unhealthy(report: &Value) -> bool {
    let one = |r: &Value| {
        r.get("config_error").is_some()
            || r.get("error").is_some()
            || r["last_run"]["state"] == "failed"
    };
    match report.get("tenants").and_then(Value::as_object) {
        Some(tenants) => tenants.values().any(one),
        None => one(report),
    }
}

/// What `status` reports: one state directory's, or with `--config DIR`
/// every tenant's (`{"tenants": {"acme": {...}}}`; a tenant whose state
/// cannot be read has `{"error": "..."}`, the others are still shown).
pub fn report(args: &StatusArgs, now: DateTime<Utc>) -> Result<Value, StatusError> {
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| config_dir(&args.config));
    if !args.config.is_dir() {
        return Ok(one(&args.config, &dir, now)?);
    }
    let mut tenants = serde_json::Map::new();
    for tenant in crate::tenant::discover(&args.config, &dir)? {
        let (name, value) = match tenant {
            Ok(t) => {
                let r = one(&t.config, &t.state_dir, now)
                    .unwrap_or_else(|e| json!({"error": crate::report::one_line(&e)}));
                (t.name, r)
            }
            Err(e) => match e.tenant() {
                Some(name) => (
                    name.to_string(),
                    json!({"error": crate::report::one_line(&e)}),
                ),
                None => return Err(e.into()),
            },
        };
        tenants.insert(name, value);
    }
    Ok(json!({
        "config_dir": args.config.display().to_string(),
        "tenants": tenants,
    }))
}

/// One state directory's report.
fn one(
    config: &std::path::Path,
    dir: &std::path::Path,
    now: DateTime<Utc>,
) -> Result<Value, StateError> {
    // The state file's source; without one yet, the config's.
    let loaded = crate::config::Config::load(config);
    let configured = loaded.as_ref().map(|c| c.source).unwrap_or_default();
    let cursors = CursorFile::load_any(&dir.join(STATE_FILE), configured)?;
    let mut apps = serde_json::Map::new();
    let last = Status::load(&dir.join(STATUS_FILE));
    // The streams this config exports: those the last run read and those
    // with a cursor (a Log Service's are its shards, as the last run saved
    // them); before any run, the config's (Defender's data_types) or the
    // source's.
    let mut streams: Vec<crate::event::App> = cursors.cursors.keys().copied().collect();
    if let Some(s) = &last {
        for name in s.apps.keys() {
            if let Some(app) = crate::event::App::parse_in(cursors.source, name)
                && !streams.contains(&app)
            {
                streams.push(app);
            }
        }
    }
    if streams.is_empty() {
        streams = match loaded.as_ref().map(|c| &c.vendor) {
            Ok(crate::source::VendorConfig::Mcas(m)) => m.data_types.clone(),
            _ => cursors.source.streams().to_vec(),
        };
    }
    streams.sort();
    for app in streams {
        let c = cursors.cursor(app);
        apps.insert(
            app.to_string(),
            match c.timestamp {
                None => json!({"cursor": null}),
                Some(t) => json!({
                    "cursor": api_timestamp(t),
                    "ids_at_cursor": c.ids.len(),
                    // Negative when the cursor is in the future: shown
                    // as it is, never hidden as "0 s behind".
                    "lag_seconds": (now - t).num_seconds(),
                }),
            },
        );
    }
    let mut report = json!({
        "state_dir": dir.display().to_string(),
        "source": cursors.source.name(),
        "apps": apps,
        "last_run": last.map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
    });
    // A config the next run cannot read: said, not hidden.
    if let Err(e) = &loaded {
        report["config_error"] = crate::report::one_line(e).into();
    }
    Ok(report)
}

/// How far back a first run of `source` starts (no cursor, no
/// --start-date): each source's own window, from the source's constants.
pub fn first_run_words(source: crate::event::Vendor) -> String {
    use crate::event::Vendor;
    use crate::source::{cirrus, cloudsoc, mcas, rest, sls};
    let window = match source {
        Vendor::CloudSoc => cloudsoc::MAX_LOOKBACK,
        Vendor::Mcas => mcas::FIRST_RUN,
        Vendor::Cirrus => cirrus::FIRST_RUN,
        Vendor::Rest => rest::FIRST_RUN,
        Vendor::Sls => sls::FIRST_RUN,
    };
    match window.num_days() {
        1 => "1 day".to_string(),
        d if d > 1 => format!("{d} days"),
        _ => duration_words(window.num_seconds()),
    }
}

/// `2 h 3 min`, `4 days 1 h`, `35 s`.
pub fn duration_words(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `3 min behind now`, or, for a cursor in the future, `2 days 0 h ahead
/// of now (a clock is wrong)`.
pub fn lag_words(lag: i64) -> String {
    if lag < 0 {
        format!("{} ahead of now (a clock is wrong)", duration_words(-lag))
    } else {
        format!("{} behind now", duration_words(lag))
    }
}

/// The report as lines of text; each tenant's under its name.
pub fn text(report: &Value) -> String {
    let Some(tenants) = report["tenants"].as_object() else {
        return one_text(report);
    };
    let mut out = format!(
        "tenants of {}: {}\n",
        report["config_dir"].as_str().unwrap_or(""),
        tenants.len()
    );
    for (name, r) in tenants {
        match r["error"].as_str() {
            Some(e) => out.push_str(&format!(
                "tenant {name}: error: {}\n",
                crate::report::printable(e)
            )),
            None => {
                out.push_str(&format!("tenant {name}:\n"));
                for line in one_text(r).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
    }
    out
}

fn one_text(report: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "state directory: {}\n",
        report["state_dir"].as_str().unwrap_or("")
    ));
    if let Some(e) = report["config_error"].as_str() {
        out.push_str(&format!("config: error: {}\n", crate::report::printable(e)));
    }
    for (app, a) in report["apps"].as_object().into_iter().flatten() {
        match a["cursor"].as_str() {
            None => out.push_str(&format!(
                "{app}: no cursor yet (the next run starts {} back)\n",
                first_run_words(
                    report["source"]
                        .as_str()
                        .and_then(crate::event::Vendor::parse)
                        .unwrap_or_default()
                )
            )),
            Some(t) => out.push_str(&format!(
                "{app}: cursor {t} UTC ({} ids at that second), {}\n",
                a["ids_at_cursor"],
                lag_words(a["lag_seconds"].as_i64().unwrap_or(0))
            )),
        }
    }
    let last = &report["last_run"];
    if last.is_null() {
        out.push_str("last run: none recorded\n");
    } else {
        out.push_str(&format!(
            "last run: {}, started {}, ended {}\n",
            last["state"].as_str().unwrap_or("?"),
            last["started"].as_str().unwrap_or("?"),
            last["ended"].as_str().unwrap_or("-")
        ));
        for (app, c) in last["apps"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "  {app}: {} exported, {} filtered out, {} already delivered, {} pages\n",
                c["exported"], c["filtered"], c["skipped"], c["pages"]
            ));
        }
        if let Some(e) = last["error"].as_str() {
            out.push_str(&format!("  error: {}\n", crate::report::printable(e)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_says_its_own_first_run_window() {
        use crate::event::Vendor;
        assert_eq!(first_run_words(Vendor::CloudSoc), "180 days");
        assert_eq!(first_run_words(Vendor::Mcas), "2 days");
        assert_eq!(first_run_words(Vendor::Cirrus), "7 days");
        assert_eq!(first_run_words(Vendor::Rest), "7 days");
    }
}
