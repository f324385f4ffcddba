//! `--metrics-file`: after each run, Prometheus text-format metrics for
//! node_exporter's textfile collector, written atomically (a reader never
//! sees half a file).

use crate::state::status::Counts;
use crate::state::write_atomic_mode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What one run reports (of one tenant, with `--config DIR`).
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// The tenant (`--config DIR`): a `tenant` label on every sample.
    pub tenant: Option<String>,
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
    /// `state`, `config`, `signal`, `other`).
    pub error: Option<&'static str>,
    /// Unix time of the end of the run.
    pub ended: i64,
}

const ERROR_KINDS: [&str; 6] = ["source", "output", "state", "config", "signal", "other"];

const PREFIX: &str = "siem_agent_";

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{tenant="t",k="v",...}`, or nothing without labels.
fn labels(tenant: Option<&str>, pairs: &[(&str, &str)]) -> String {
    let all: Vec<String> = tenant
        .map(|t| ("tenant", t))
        .into_iter()
        .chain(pairs.iter().copied())
        .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
        .collect();
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

/// A family's samples of a report (its tenant, the tenant's last
/// success before): `(labels, value)` each.
type Samples = fn(&RunReport, Option<&str>, Option<i64>) -> Vec<(String, String)>;

/// One metric family: its name (after `siem_agent_`), type, help, and
/// each report's samples.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Samples,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "source_info",
        kind: "gauge",
        help: "The vendor API the agent pulls (its streams are the app label of the other metrics).",
        samples: |r, t, _| {
            r.source
                .map(|s| (labels(t, &[("source", s)]), "1".to_string()))
                .into_iter()
                .collect()
        },
    },
    Family {
        name: "last_run_events_exported",
        kind: "gauge",
        help: "Logs the last run delivered, per app and destination.",
        samples: |r, t, _| {
            let mut out = Vec::new();
            for (app, c) in &r.apps {
                for d in &r.destinations {
                    out.push((
                        labels(t, &[("app", app), ("destination", d)]),
                        c.exported.to_string(),
                    ));
                }
            }
            out
        },
    },
    Family {
        name: "last_run_events_filtered",
        kind: "gauge",
        help: "Logs the last run's filters left out, per app.",
        samples: |r, t, _| per_app(r, t, |c| c.filtered),
    },
    Family {
        name: "last_run_pages",
        kind: "gauge",
        help: "API pages the last run read, per app.",
        samples: |r, t, _| per_app(r, t, |c| c.pages),
    },
    Family {
        name: "lag_seconds",
        kind: "gauge",
        help: "How far each app's cursor is behind now, after the last run.",
        samples: |r, t, _| {
            r.lag_seconds
                .iter()
                .map(|(app, l)| (labels(t, &[("app", app)]), l.to_string()))
                .collect()
        },
    },
    Family {
        name: "last_run_errors",
        kind: "gauge",
        help: "1 for the kind of error that ended the last run, else 0.",
        samples: |r, t, _| {
            ERROR_KINDS
                .iter()
                .map(|k| {
                    (
                        labels(t, &[("kind", k)]),
                        u8::from(r.error == Some(k)).to_string(),
                    )
                })
                .collect()
        },
    },
    Family {
        name: "last_run_success",
        kind: "gauge",
        help: "1 if the last run succeeded.",
        samples: |r, t, _| vec![(labels(t, &[]), u8::from(r.error.is_none()).to_string())],
    },
    Family {
        name: "last_run_duration_seconds",
        kind: "gauge",
        help: "How long the last run took.",
        samples: |r, t, _| vec![(labels(t, &[]), format!("{:.3}", r.duration_seconds))],
    },
    Family {
        name: "last_run_timestamp_seconds",
        kind: "gauge",
        help: "When the last run ended (Unix time).",
        samples: |r, t, _| vec![(labels(t, &[]), r.ended.to_string())],
    },
    Family {
        name: "last_success_timestamp_seconds",
        kind: "gauge",
        help: "When a run last succeeded (Unix time).",
        samples: |r, t, last_success| {
            let success = if r.error.is_none() {
                Some(r.ended)
            } else {
                last_success
            };
            success
                .map(|s| (labels(t, &[]), s.to_string()))
                .into_iter()
                .collect()
        },
    },
];

fn per_app(r: &RunReport, t: Option<&str>, f: fn(&Counts) -> u64) -> Vec<(String, String)> {
    r.apps
        .iter()
        .map(|(app, c)| (labels(t, &[("app", app)]), f(c).to_string()))
        .collect()
}

/// The metrics text of one run without tenants; `last_success` is the
/// time of the last successful run before this one (kept across failed
/// runs).
pub fn render(r: &RunReport, last_success: Option<i64>) -> String {
    let mut s = String::new();
    for f in FAMILIES {
        let samples = (f.samples)(r, None, last_success);
        // As before tenants: these two are left out when they have none.
        if samples.is_empty() && matches!(f.name, "source_info" | "last_success_timestamp_seconds")
        {
            continue;
        }
        family_head(&mut s, f);
        for (labels, value) in samples {
            let _ = writeln!(s, "{PREFIX}{}{labels} {value}", f.name);
        }
    }
    s
}

fn family_head(s: &mut String, f: &Family) {
    let _ = writeln!(s, "# HELP {PREFIX}{} {}", f.name, f.help);
    let _ = writeln!(s, "# TYPE {PREFIX}{} {}", f.name, f.kind);
}

/// The tenant label of a sample line, if it has one, unescaped (the name
/// of a tenant file that cannot name a tenant may hold a quote).
fn tenant_of_line(line: &str) -> Option<String> {
    let rest = &line[line.find("{tenant=\"")? + 9..];
    let mut name = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(name),
            '\\' => match chars.next()? {
                'n' => name.push('\n'),
                c => name.push(c),
            },
            c => name.push(c),
        }
    }
}

/// The metrics text of a run of many tenants (`--config DIR`): the
/// samples of each tenant that ran, and, for the tenants of `kept` that
/// did not run this time (another run held their lock), their samples of
/// the file written before (`previous`); tenants in neither are dropped.
pub fn render_tenants(reports: &[RunReport], kept: &[String], previous: &str) -> String {
    let ran: Vec<&str> = reports.iter().filter_map(|r| r.tenant.as_deref()).collect();
    let keep = |line: &&str| {
        tenant_of_line(line).is_some_and(|t| !ran.contains(&t.as_str()) && kept.contains(&t))
    };
    let mut s = String::new();
    for f in FAMILIES {
        family_head(&mut s, f);
        for r in reports {
            let t = r.tenant.as_deref();
            let last = t.and_then(|t| previous_success_of(previous, Some(t)));
            for (labels, value) in (f.samples)(r, t, last) {
                let _ = writeln!(s, "{PREFIX}{}{labels} {value}", f.name);
            }
        }
        let family = format!("{PREFIX}{}{{", f.name);
        for line in previous
            .lines()
            .filter(|l| l.starts_with(&family))
            .filter(keep)
        {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

/// The last success time of `tenant` (or of the run, without tenants) in
/// the text of an earlier metrics file.
fn previous_success_of(text: &str, tenant: Option<&str>) -> Option<i64> {
    let name = format!(
        "{PREFIX}last_success_timestamp_seconds{} ",
        labels(tenant, &[])
    );
    text.lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// The last success time recorded in an earlier metrics file.
pub fn previous_success(path: &Path) -> Option<i64> {
    previous_success_of(&std::fs::read_to_string(path).ok()?, None)
}

/// Writes the metrics file atomically.
pub fn write(path: &Path, r: &RunReport) -> Result<(), crate::state::StateError> {
    write_text(path, &render(r, previous_success(path)))
}

/// Writes the metrics of a run of many tenants atomically (see
/// [`render_tenants`]).
pub fn write_tenants(
    path: &Path,
    reports: &[RunReport],
    kept: &[String],
) -> Result<(), crate::state::StateError> {
    let previous = std::fs::read_to_string(path).unwrap_or_default();
    write_text(path, &render_tenants(reports, kept, &previous))
}

fn write_text(path: &Path, text: &str) -> Result<(), crate::state::StateError> {
    // No secret in it (a label naming a destination is redacted all the
    // same); node_exporter's textfile collector (another user) must be
    // able to read it.
    let text = crate::secret::redact(text);
    write_atomic_mode(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_read_back_unescaped() {
        let line = format!("{PREFIX}x{} 1", labels(Some("bad \"name\\"), &[("k", "v")]));
        assert_eq!(tenant_of_line(&line).as_deref(), Some("bad \"name\\"));
        assert_eq!(tenant_of_line("siem_agent_x 1"), None);
    }

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

    #[test]
    fn tenants_carry_a_label_and_tenants_that_did_not_run_keep_their_samples() {
        let report = |t: &str, ok: bool| RunReport {
            tenant: Some(t.into()),
            source: Some("mcas"),
            destinations: vec!["out".into()],
            ended: 1_800_000_000,
            error: (!ok).then_some("source"),
            ..RunReport::default()
        };
        let kept = ["acme".to_string(), "globex".into(), "initech".into()];
        let first = render_tenants(&[report("acme", true), report("globex", true)], &kept, "");
        assert!(
            first.contains("siem_agent_source_info{tenant=\"acme\",source=\"mcas\"} 1\n"),
            "{first}"
        );
        assert!(first.contains("siem_agent_last_run_success{tenant=\"globex\"} 1\n"));
        assert_eq!(
            first.matches("# HELP siem_agent_last_run_success ").count(),
            1
        );
        // globex fails next, acme is held by another run, and initech
        // is new: acme's samples are kept, globex keeps its last success.
        let mut later = report("globex", false);
        later.ended = 1_900_000_000;
        let second = render_tenants(&[later, report("initech", true)], &kept, &first);
        assert!(
            second.contains("siem_agent_last_run_success{tenant=\"acme\"} 1\n"),
            "{second}"
        );
        assert!(second.contains("siem_agent_last_run_success{tenant=\"globex\"} 0\n"));
        assert!(
            second.contains(
                "siem_agent_last_success_timestamp_seconds{tenant=\"globex\"} 1800000000\n"
            )
        );
        assert!(
            second
                .contains("siem_agent_last_run_timestamp_seconds{tenant=\"globex\"} 1900000000\n")
        );
        assert_eq!(
            second.matches("tenant=\"acme\"").count(),
            first.matches("tenant=\"acme\"").count()
        );
        // A tenant whose file is gone is dropped.
        let third = render_tenants(&[], &["initech".to_string()], &second);
        assert!(!third.contains("acme") && !third.contains("globex") && third.contains("initech"));
    }
}
