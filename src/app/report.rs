//! What a run tells when it ends: its report for the metrics, the totals
//! of its streams (or tenants), a dry run's last line, and the progress
//! line shown at a terminal.

use super::{AppError, Outcome};
use crate::cli::settings::Settings;

/// A run's report completed with how it ended.
pub fn close_report(
    report: &mut crate::metrics::RunReport,
    started: std::time::Instant,
    result: &Result<Outcome, AppError>,
) {
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.ended = chrono::Utc::now().timestamp();
    report.error = result.as_ref().err().map(AppError::kind);
}

/// Every app's counts of `reports`, summed.
pub fn totals<'a>(
    reports: impl IntoIterator<Item = &'a crate::metrics::RunReport>,
) -> crate::state::status::Counts {
    let mut t = crate::state::status::Counts::default();
    for c in reports.into_iter().flat_map(|r| r.apps.values()) {
        t.exported += c.exported;
        t.filtered += c.filtered;
        t.held += c.held;
    }
    t
}

/// A dry run's last line on stderr (`more`: what it covered, if not one
/// config).
pub fn dry_run_summary(total: &crate::state::status::Counts, more: &str) {
    eprintln!(
        "siem-agent: dry run: {} logs printed, {} filtered out, {} newer than --settle left for a later run{more}",
        total.exported, total.filtered, total.held
    );
}

/// An interactive run's last line, on stderr when it is a terminal (the
/// progress line is cleared at the end; cron and systemd read the log):
/// what was exported and how long it took (`more`: what it covered, if
/// not one config).
pub fn terminal_summary(
    total: &crate::state::status::Counts,
    took: std::time::Duration,
    more: &str,
) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("{}", summary_line(total, took, more));
    }
}

fn summary_line(
    total: &crate::state::status::Counts,
    took: std::time::Duration,
    more: &str,
) -> String {
    let mut line = format!(
        "siem-agent: exported {} log{}{more}",
        total.exported,
        if total.exported == 1 { "" } else { "s" }
    );
    let mut also = Vec::new();
    if total.filtered > 0 {
        also.push(format!("{} filtered out", total.filtered));
    }
    if total.held > 0 {
        also.push(format!(
            "{} newer than --settle left for the next run",
            total.held
        ));
    }
    if !also.is_empty() {
        line.push_str(&format!(" ({})", also.join(", ")));
    }
    line.push_str(&format!(" in {:.1}s", took.as_secs_f64()));
    line
}

/// Another run holds the lock: said in the log, and on stderr only when
/// someone watches (a terminal, or `-d`), so that cron does not mail it
/// during every long backfill.
pub fn locked_note(debug: bool) {
    use std::io::IsTerminal;
    let line = format!(
        "another instance is already running (it holds {}); this run exits",
        crate::state::LOCK_FILE
    );
    tracing::info!("{line}");
    if debug || std::io::stderr().is_terminal() {
        eprintln!("siem-agent: {line}");
    }
}

/// A run's progress line on stderr when it is watched from a terminal;
/// none under cron, systemd or a pipe. A tenant of many adds to the line
/// the run shares among them (see [`shared_progress_bar`]).
pub fn progress_bar(settings: &Settings) -> Option<crate::run::Progress> {
    if let Some(bar) = &settings.progress {
        return Some(crate::run::Progress {
            bar: bar.clone(),
            shared: true,
            shown: 0,
            label: settings
                .tenant
                .as_ref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default(),
        });
    }
    if settings.tenant.is_some() {
        return None;
    }
    Some(crate::run::Progress {
        bar: shared_progress_bar()?,
        shared: false,
        shown: 0,
        label: String::new(),
    })
}

/// A progress line on stderr, when it is a terminal: one run's, or the one
/// the tenants of `--config DIR` share.
pub fn shared_progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {human_pos} logs exported ({rate}) {msg} [{elapsed}]",
        )
        .map(|st| {
            st.with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", s.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_it_has_to() {
        let mut c = crate::state::status::Counts {
            exported: 1,
            ..Default::default()
        };
        let took = std::time::Duration::from_millis(1234);
        assert_eq!(
            summary_line(&c, took, ""),
            "siem-agent: exported 1 log in 1.2s"
        );
        c.exported = 5;
        c.filtered = 2;
        c.held = 1;
        assert_eq!(
            summary_line(&c, took, " for 3 tenants"),
            "siem-agent: exported 5 logs for 3 tenants (2 filtered out, 1 newer than --settle left for the next run) in 1.2s"
        );
    }
    use crate::metrics::RunReport;
    use crate::state::status::Counts;

    fn report(apps: &[(&str, u64, u64, u64)]) -> RunReport {
        let mut r = RunReport::default();
        for &(app, exported, filtered, held) in apps {
            let c = Counts {
                exported,
                filtered,
                held,
                ..Counts::default()
            };
            r.apps.insert(app.to_string(), c);
        }
        r
    }

    #[test]
    fn totals_sum_every_stream_of_every_report() {
        let a = report(&[("Investigate", 10, 2, 1), ("Detect", 5, 0, 0)]);
        let b = report(&[("Investigate", 7, 1, 3)]);
        let t = totals([&a, &b]);
        assert_eq!((t.exported, t.filtered, t.held), (22, 3, 4));
        let none = totals([]);
        assert_eq!(none.exported, 0);
    }

    #[test]
    fn a_closed_report_says_how_the_run_ended() {
        let mut r = RunReport::default();
        let started = std::time::Instant::now();
        close_report(&mut r, started, &Ok(Outcome::Done));
        assert_eq!(r.error, None);
        assert!(r.ended > 0);
        let failed: Result<Outcome, AppError> = Err(AppError::Refused("no".into()));
        close_report(&mut r, started, &failed);
        assert_eq!(r.error, Some("other"));
    }
}
