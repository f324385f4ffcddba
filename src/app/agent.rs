//! The export command: its settings, its log, its signals, then one
//! config's run or a directory of tenants, and how it ends.

use super::report::{close_report, dry_run_summary, locked_note, terminal_summary, totals};
use super::{AppError, Outcome, export, signals, tenants};
use crate::cli::ExportArgs;
use crate::cli::settings::Settings;
use crate::exit_codes::ExitCode;
use crate::report::one_line;
use crate::{demo, logging};
use tracing::{error, info, warn};

/// The export: one config, or every tenant of a directory, from the
/// command line's flags (`output_given`: `-o` was on the command line,
/// which the demo heeds); logs, status and metrics written, and the exit
/// code.
pub async fn agent(mut args: ExportArgs, output_given: bool) -> ExitCode {
    let demo = if args.demo {
        match demo::prepare(&mut args, output_given).await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("siem-agent: error: cannot start the demo: {e}");
                return ExitCode::Error;
            }
        }
    } else {
        None
    };
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("siem-agent: error: {e}");
            return ExitCode::Error;
        }
    };
    let log = logging::init(
        settings.log_file.as_deref(),
        &settings.state_dir,
        settings.debug,
        settings.log_json,
    );
    if let Some(why) = &log.fallback {
        if settings.log_file.is_some() {
            // A log file asked for by name that cannot be written: said
            // on every run, until the path is mended.
            warn!("{why}");
        } else {
            if settings.debug {
                eprintln!("siem-agent: note: {why}");
            }
            info!("{why}");
        }
    }
    for note in &settings.notes {
        warn!("{note}");
    }
    let started = std::time::Instant::now();
    let mut report = crate::metrics::RunReport::default();
    let (stop_tx, stop) = tokio::sync::watch::channel(None);
    tokio::spawn(signals::listen_for_signals(stop_tx));
    if let Some(dir) = settings.tenants_dir.clone() {
        return tenants::run_tenants(settings, &dir, stop).await;
    }
    let result = export::export(&settings, &mut report, stop).await;
    if let Some(path) = &settings.metrics_file
        && !settings.dry_run
        && !matches!(result, Ok(Outcome::Locked))
    {
        close_report(&mut report, started, &result);
        if let Err(e) = crate::metrics::write(path, &report) {
            warn!("{e}");
        }
    }
    let total = totals([&report]);
    // A reader of stdout that has had enough (`| head`) ends a dry run or
    // a demo quietly; an export to STREAM fails (its cursor stays).
    if (settings.dry_run || demo.is_some())
        && result.as_ref().err().is_some_and(AppError::reader_gone)
    {
        return ExitCode::Success;
    }
    if let Some(d) = &demo {
        eprintln!(
            "siem-agent: demo: {} {} logs ({} filtered out) from the simulator at http://{} (state and log were in a temporary directory, now removed)",
            if settings.dry_run {
                "dry run, printed"
            } else {
                "exported"
            },
            total.exported,
            total.filtered,
            d.simulator.addr
        );
    } else if settings.dry_run && result.is_ok() {
        dry_run_summary(&total, "");
    } else if matches!(result, Ok(Outcome::Done)) {
        terminal_summary(&total, started.elapsed(), "");
    }
    match result {
        Ok(Outcome::Done) => ExitCode::Success,
        Ok(Outcome::NotStarted(_)) => ExitCode::Error,
        Ok(Outcome::Locked) => {
            locked_note(settings.debug);
            ExitCode::Success
        }
        Err(e) => {
            error!("{}", one_line(&e));
            ExitCode::Error
        }
    }
}
