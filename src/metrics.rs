//! `--metrics-file`: after each run, Prometheus text-format metrics for
//! node_exporter's textfile collector, written atomically (a reader never
//! sees half a file).

use crate::state::status::Counts;
use crate::state::write_atomic_mode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What one run reports.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// The source (`cloudsoc`, `mcas`, ...), once config.json was read.
    pub source: Option<&'static str>,
    /// Counts per app.
    pub apps: BTreeMap<String, Counts>,
    /// The destinations, as described in messages.
    pub destinations: Vec<String>,
    /// Seconds each app's cursor is behind now, after the run.
    pub lag_seconds: BTreeMap<String, i64>,
    pub duration_seconds: f64,
    /// `None` on success, else the kind of error (`source`, `output`,
    /// `state`, `config`, `other`).
    pub error: Option<&'static str>,
    /// Unix time of the end of the run.
    pub ended: i64,
}

const ERROR_KINDS: [&str; 5] = ["source", "output", "state", "config", "other"];

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics text; `last_success` is the time of the last successful
/// run before this one (kept across failed runs).
pub fn render(r: &RunReport, last_success: Option<i64>) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(s, "# HELP siem_agent_{name} {help}");
        let _ = writeln!(s, "# TYPE siem_agent_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(s, "siem_agent_{name}{labels} {value}");
        }
    };
    if let Some(source) = r.source {
        metric(
            "source_info",
            "gauge",
            "The vendor API the agent pulls (its streams are the app label of the other metrics).",
            vec![(format!("{{source=\"{}\"}}", label(source)), "1".into())],
        );
    }
    let mut exported = Vec::new();
    for (app, c) in &r.apps {
        for d in &r.destinations {
            exported.push((
                format!("{{app=\"{}\",destination=\"{}\"}}", label(app), label(d)),
                c.exported.to_string(),
            ));
        }
    }
    metric(
        "last_run_events_exported",
        "gauge",
        "Logs the last run delivered, per app and destination.",
        exported,
    );
    let per_app = |f: fn(&Counts) -> u64| -> Vec<(String, String)> {
        r.apps
            .iter()
            .map(|(app, c)| (format!("{{app=\"{}\"}}", label(app)), f(c).to_string()))
            .collect()
    };
    metric(
        "last_run_events_filtered",
        "gauge",
        "Logs the last run's filters left out, per app.",
        per_app(|c| c.filtered),
    );
    metric(
        "last_run_pages",
        "gauge",
        "API pages the last run read, per app.",
        per_app(|c| c.pages),
    );
    metric(
        "lag_seconds",
        "gauge",
        "How far each app's cursor is behind now, after the last run.",
        r.lag_seconds
            .iter()
            .map(|(app, l)| (format!("{{app=\"{}\"}}", label(app)), l.to_string()))
            .collect(),
    );
    metric(
        "last_run_errors",
        "gauge",
        "1 for the kind of error that ended the last run, else 0.",
        ERROR_KINDS
            .iter()
            .map(|k| {
                (
                    format!("{{kind=\"{k}\"}}"),
                    u8::from(r.error == Some(k)).to_string(),
                )
            })
            .collect(),
    );
    metric(
        "last_run_success",
        "gauge",
        "1 if the last run succeeded.",
        vec![(String::new(), u8::from(r.error.is_none()).to_string())],
    );
    metric(
        "last_run_duration_seconds",
        "gauge",
        "How long the last run took.",
        vec![(String::new(), format!("{:.3}", r.duration_seconds))],
    );
    metric(
        "last_run_timestamp_seconds",
        "gauge",
        "When the last run ended (Unix time).",
        vec![(String::new(), r.ended.to_string())],
    );
    let success = if r.error.is_none() {
        Some(r.ended)
    } else {
        last_success
    };
    if let Some(t) = success {
        metric(
            "last_success_timestamp_seconds",
            "gauge",
            "When a run last succeeded (Unix time).",
            vec![(String::new(), t.to_string())],
        );
    }
    s
}

/// The last success time recorded in an earlier metrics file.
pub fn previous_success(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("siem_agent_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

/// Writes the metrics file atomically.
pub fn write(path: &Path, r: &RunReport) -> Result<(), crate::state::StateError> {
    let text = render(r, previous_success(path));
    // No secret in it; node_exporter's textfile collector (another user)
    // must be able to read it.
    write_atomic_mode(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let mut r = RunReport {
            destinations: vec!["127.0.0.1:514 (UDP)".into(), "HEC \"x\"".into()],
            duration_seconds: 1.5,
            ended: 1_800_000_000,
            ..RunReport::default()
        };
        r.apps.insert(
            "Investigate".into(),
            Counts {
                exported: 7,
                filtered: 1,
                skipped: 0,
                pages: 2,
                held: 0,
            },
        );
        r.lag_seconds.insert("Investigate".into(), 42);
        let t = render(&r, None);
        assert!(t.contains("siem_agent_last_run_events_exported{app=\"Investigate\",destination=\"HEC \\\"x\\\"\"} 7\n"), "{t}");
        assert!(t.contains("siem_agent_last_run_errors{kind=\"source\"} 0\n"));
        assert!(t.contains("siem_agent_last_success_timestamp_seconds 1800000000\n"));
        r.error = Some("output");
        let t = render(&r, Some(1_700_000_000));
        assert!(t.contains("siem_agent_last_run_errors{kind=\"output\"} 1\n"));
        assert!(t.contains("siem_agent_last_run_success 0\n"));
        assert!(t.contains("siem_agent_last_success_timestamp_seconds 1700000000\n"));
    }
}
