//! `--config DIR`: every tenant of a directory exported, each in its own
//! task, state directory and lock, each failure its own.

use super::report::{close_report, dry_run_summary, totals};
use super::{AppError, Outcome, export, panic};
use crate::cli::settings::Settings;
use crate::exit_codes::ExitCode;
use crate::logging;
use crate::report::one_line;
use crate::state::STATE_FILE;
use tracing::{error, info, warn};

/// How one tenant's export ended.
struct TenantRun {
    name: String,
    result: Result<Outcome, AppError>,
    report: crate::metrics::RunReport,
}

impl TenantRun {
    /// A tenant that failed before or outside its export.
    fn failed(name: String, e: AppError) -> TenantRun {
        TenantRun {
            report: crate::metrics::RunReport {
                tenant: Some(name.clone()),
                error: Some(e.kind()),
                ended: chrono::Utc::now().timestamp(),
                ..Default::default()
            },
            name,
            result: Err(e),
        }
    }
}

/// `--config DIR`: every tenant file of the directory exported, at most
/// `--parallel` at once, each in its own state directory and under its
/// own lock, each failure its own: exit 1 if any failed, with one line
/// per failed tenant naming it.
pub async fn run_tenants(
    settings: Settings,
    dir: &std::path::Path,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> ExitCode {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tracing::Instrument;
    let run_started = std::time::Instant::now();
    // One progress line for all tenants, at a terminal.
    let mut settings = settings;
    settings.progress = super::report::shared_progress_bar();
    let found = match crate::tenant::discover(dir, &settings.state_dir) {
        Ok(f) => f,
        Err(e) => {
            error!("{e}");
            return ExitCode::Error;
        }
    };
    let names: Vec<String> = found
        .iter()
        .filter_map(|t| match t {
            Ok(t) => Some(t.name.clone()),
            Err(e) => e.tenant().map(str::to_string),
        })
        .collect();
    info!(
        "{}: {} tenants, at most {} at once",
        dir.display(),
        found.len(),
        settings.parallel
    );
    // A single config's cursor where the tenants' state directories are:
    // a tenant starting afresh beside it would export again what that
    // config already did, if the config became the tenant.
    let single_cursor = settings.state_dir.join(STATE_FILE);
    let single_cursor = single_cursor.exists().then_some(single_cursor);
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.parallel));
    // A dry run whose reader went away (`| head`) starts no more tenants.
    let reader_left = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    let mut runs = Vec::new();
    for tenant in found {
        let tenant = match tenant {
            Ok(t) => t,
            Err(e) => {
                let name = e.tenant().unwrap_or("?").to_string();
                runs.push(TenantRun::failed(name, e.into()));
                continue;
            }
        };
        let settings = settings.for_tenant(&tenant);
        let slots = slots.clone();
        let stop = stop.clone();
        let reader_left = reader_left.clone();
        let single_cursor = single_cursor.clone();
        let name = tenant.name.clone();
        let handle = tasks.spawn(
            async move {
                // The semaphore is fair: tenants start in name order.
                let _slot = slots.acquire_owned().await;
                let started = std::time::Instant::now();
                let mut report = crate::metrics::RunReport {
                    tenant: Some(name.clone()),
                    ..Default::default()
                };
                let signalled = *stop.borrow();
                let result = match (signalled, &single_cursor) {
                    (Some(signal), _) => Ok(Outcome::NotStarted(signal)),
                    _ if reader_left.load(Ordering::SeqCst) => {
                        Ok(Outcome::NotStarted("stdout closed"))
                    }
                    (None, Some(single))
                        if !settings.state_dir.join(STATE_FILE).exists() =>
                    {
                        Err(AppError::Refused(format!(
                            "{} is the cursor of a single config, and this tenant has none yet: if this tenant was that config, move the file to {} to go on from it; if not, delete it (nothing is exported until then, so that nothing is exported twice)",
                            single.display(),
                            settings.state_dir.display()
                        )))
                    }
                    _ => export::export(&settings, &mut report, stop.clone()).await,
                };
                if result.as_ref().err().is_some_and(AppError::reader_gone) {
                    reader_left.store(true, Ordering::SeqCst);
                }
                close_report(&mut report, started, &result);
                TenantRun {
                    name,
                    result,
                    report,
                }
            }
            .instrument(logging::tenant_span(&tenant.name)),
        );
        ids.insert(handle.id(), tenant.name.clone());
        panic::TENANT_TASKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle.id());
    }
    while let Some(done) = tasks.join_next_with_id().await {
        match done {
            Ok((_, run)) => runs.push(run),
            // A tenant's task that panicked: that tenant failed.
            Err(e) => {
                let name = ids.get(&e.id()).cloned().unwrap_or_default();
                let why = if e.is_panic() {
                    panic::panic_text(e.into_panic().as_ref())
                } else {
                    e.to_string()
                };
                runs.push(TenantRun::failed(name, AppError::Internal(why)));
            }
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    // `--dry-run | head`: the reader had enough; the tenants it cut short
    // end quietly (another's failure is still said).
    let reader_left = settings.dry_run && reader_left.load(Ordering::SeqCst);
    if reader_left {
        runs.retain(|r| !r.result.as_ref().err().is_some_and(AppError::reader_gone));
        runs.retain(|r| !matches!(r.result, Ok(Outcome::NotStarted(_))));
        if runs.iter().all(|r| r.result.is_ok()) {
            return ExitCode::Success;
        }
    }

    let mut failed = Vec::new();
    let mut locked = 0;
    let mut not_started = Vec::new();
    let mut signal = None;
    for run in &runs {
        let span = logging::tenant_span(&run.name);
        let _in = span.enter();
        match &run.result {
            Ok(Outcome::Done) => {}
            Ok(Outcome::NotStarted(s)) => {
                signal = Some(*s);
                not_started.push(run.name.as_str());
            }
            Ok(Outcome::Locked) => {
                locked += 1;
                info!("another run holds this tenant's lock; skipped");
            }
            Err(e) => {
                error!("{}", one_line(e));
                failed.push(run.name.as_str());
            }
        }
    }
    if let Some(signal) = signal {
        // One line for them all: they did not fail, they were not begun.
        error!(
            "{signal}: {} tenants not started: {}",
            not_started.len(),
            not_started.join(", ")
        );
    }
    if let Some(path) = &settings.metrics_file
        && !settings.dry_run
    {
        let reports: Vec<_> = runs
            .iter()
            .filter(|r| !matches!(r.result, Ok(Outcome::Locked | Outcome::NotStarted(_))))
            .filter(|r| names.contains(&r.name))
            .map(|r| r.report.clone())
            .collect();
        if let Err(e) = crate::metrics::write_tenants(path, &reports, &names) {
            warn!("{e}");
        }
    }
    if settings.dry_run && failed.is_empty() {
        let total = totals(runs.iter().map(|r| &r.report));
        dry_run_summary(&total, &format!(" ({} tenants)", runs.len()));
    }
    info!(
        "{} tenants: {} exported, {} failed{}, {} held by another run{}",
        runs.len(),
        runs.len() - failed.len() - locked - not_started.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join(", "))
        },
        locked,
        if not_started.is_empty() {
            String::new()
        } else {
            format!(", {} not started", not_started.len())
        }
    );
    if let Some(bar) = &settings.progress {
        bar.finish_and_clear();
    }
    if runs.len() == locked {
        super::report::locked_note(settings.debug);
    } else if !settings.dry_run && failed.is_empty() && not_started.is_empty() {
        let total = totals(runs.iter().map(|r| &r.report));
        super::report::terminal_summary(
            &total,
            run_started.elapsed(),
            &format!(" for {} tenants", runs.len()),
        );
    }
    if failed.is_empty() && not_started.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Error
    }
}
