//! siem-agent's entry point: parse the command line, take the lock, run the
//! export, say in one line what went wrong, exit 0 or 1.

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use siem_agent::cli::settings::Settings;
use siem_agent::cli::{Cli, Command, ExportArgs, one_line_error};
use siem_agent::config::Config;
use siem_agent::exit_codes::ExitCode;
use siem_agent::pace::Pacer;
use siem_agent::report::one_line;
use siem_agent::run::{Exporter, Route, start_cursor};
use siem_agent::secret::redact;
use siem_agent::source::Source;
use siem_agent::state::status::RunState;
use siem_agent::state::writer::StateWriter;
use siem_agent::state::{CursorFile, LOCK_FILE, Lock, STATE_FILE, STATUS_FILE, StateDir, Status};
use siem_agent::{demo, logging, simulate};
use tracing::{error, info, warn};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: two arenas (the pipeline has two busy threads) and
/// dirty pages returned within a second, so that memory stays flat.
/// (jemalloc reads `const char *malloc_conf`: the slice's first word is
/// that pointer, to a NUL-terminated string.)
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"narenas:2,dirty_decay_ms:1000\0";

fn main() -> std::process::ExitCode {
    install_panic_hook();
    let args = siem_agent::cli::hoist_subcommand(std::env::args_os().collect());
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::Success.into()
                }
                _ => {
                    eprintln!("siem-agent: error: {}", one_line_error(&e));
                    ExitCode::Error.into()
                }
            };
        }
    };
    let output_given = matches.value_source("output") == Some(ValueSource::CommandLine);
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("siem-agent: error: {}", one_line_error(&e));
            return ExitCode::Error.into();
        }
    };
    // Which credentials came from the environment (with --config DIR they
    // are left out, where a flag is refused).
    let export_matches = match matches.subcommand() {
        Some(("check", m)) => m,
        _ => &matches,
    };
    let from_env = ["token", "apikey", "apisecret"]
        .into_iter()
        .filter(|id| export_matches.value_source(id) == Some(ValueSource::EnvVariable))
        .collect();
    match &mut cli.command {
        Some(Command::Check(a)) => a.credentials_from_env = from_env,
        None => cli.export.credentials_from_env = from_env,
        _ => {}
    }
    // How long a write in flight may take to finish at exit.
    let send_timeout = match &cli.command {
        Some(Command::Check(a)) => a.send_timeout,
        _ => cli.export.send_timeout,
    };
    // The export runs on one thread: fetching, formatting and sending take
    // turns there (the state writer and blocking writes have threads of
    // their own). On this workload that costs about 10% less CPU than a
    // pool of workers, which hands every page from one core to another,
    // and exports as fast: the receiver or the API sets the pace (see
    // README, Performance). The simulator serves many clients at once.
    let mut builder = match cli.command {
        Some(Command::Simulate(_)) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("siem-agent: error: cannot start the runtime: {e}");
            return ExitCode::Error.into();
        }
    };
    // A file-size limit (ulimit -f) must be an error on the write that
    // reaches it, not SIGXFSZ killing the run mid-write: handling the
    // signal (and ignoring it) makes such writes fail with EFBIG.
    let _xfsz = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25)).ok()
    });
    let code = match cli.command {
        Some(Command::Completions { shell }) => {
            siem_agent::commands::completions(shell, &mut std::io::stdout());
            ExitCode::Success
        }
        Some(Command::Man) => match siem_agent::commands::man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::Success,
            Err(e) => {
                eprintln!("siem-agent: error: man: {e}");
                ExitCode::Error
            }
        },
        Some(Command::Status(args)) => {
            match siem_agent::commands::status::report(&args, chrono::Utc::now()) {
                Ok(r) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    ExitCode::Success
                }
                Ok(r) => {
                    print!("{}", siem_agent::commands::status::text(&r));
                    ExitCode::Success
                }
                Err(e) => {
                    eprintln!("siem-agent: error: {}", one_line(&e));
                    ExitCode::Error
                }
            }
        }
        Some(Command::Check(args)) => runtime.block_on(check(args)),
        Some(Command::Simulate(args)) => match runtime.block_on(simulate::run(args)) {
            Ok(()) => ExitCode::Success,
            Err(e) => {
                eprintln!("siem-agent: error: simulator: {e}");
                ExitCode::Error
            }
        },
        None => runtime.block_on(agent(cli.export, output_given)),
    };
    // Do not wait for background tasks (a fetch in flight) at exit, but
    // let a write in flight on a blocking thread (a batch of a FILE
    // output, a buffer to stdout) finish, so that no record is cut; each
    // such write is bounded by --send-timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(send_timeout));
    code.into()
}

/// `siem-agent check`: one line per check, exit 0 only if all pass.
async fn check(args: ExportArgs) -> ExitCode {
    if args.demo {
        println!(
            "FAIL flags: --demo runs an export against a built-in simulator; it has nothing to check (run siem-agent --demo)"
        );
        return ExitCode::Error;
    }
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL flags: {e}");
            return ExitCode::Error;
        }
    };
    println!("PASS flags: {} destination(s)", settings.destinations.len());
    let Some(dir) = &settings.tenants_dir else {
        let checks = siem_agent::commands::check::run(&settings, |c| println!("{c}")).await;
        return if checks.iter().all(|c| c.result.is_ok()) {
            ExitCode::Success
        } else {
            ExitCode::Error
        };
    };
    // --config DIR: every tenant's checks, each line naming its tenant.
    let found = match siem_agent::tenant::discover(dir, &settings.state_dir) {
        Ok(f) => f,
        Err(e) => {
            println!("FAIL tenants: {e}");
            return ExitCode::Error;
        }
    };
    println!("PASS tenants: {} in {}", found.len(), dir.display());
    let mut all_passed = true;
    for tenant in found {
        match tenant {
            Ok(t) => {
                let checks = siem_agent::commands::check::run(&settings.for_tenant(&t), |c| {
                    println!("tenant {}: {c}", t.name);
                })
                .await;
                all_passed &= checks.iter().all(|c| c.result.is_ok());
            }
            Err(e) => {
                println!("FAIL tenant: {e}");
                all_passed = false;
            }
        }
    }
    if all_passed {
        ExitCode::Success
    } else {
        ExitCode::Error
    }
}

/// The tasks of tenants (`--config DIR`): a panic in one ends that tenant
/// only, rather than the process.
static TENANT_TASKS: std::sync::Mutex<Vec<tokio::task::Id>> = std::sync::Mutex::new(Vec::new());

/// A panic message may quote data; it is redacted like every other line.
/// A panic anywhere (a worker thread included) ends the process with 1;
/// the cursor was committed only for pages already confirmed. With many
/// tenants, a panic in a tenant's own task ends that tenant only: it
/// fails with the message, the others go on (a panic anywhere else, a
/// task it started included, still ends the process).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = redact(&info.to_string()).replace('\n', " ");
        if let Some(id) = tokio::task::try_id()
            && TENANT_TASKS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&id)
        {
            // The tenant's task ends with the panic; its runner reports it.
            return;
        }
        eprintln!("siem-agent: error: internal error (please report): {msg}");
        std::process::exit(1);
    }));
}

enum Outcome {
    Done,
    Locked,
    /// A tenant of many that a signal stopped before it began.
    NotStarted(&'static str),
}

async fn agent(mut args: ExportArgs, output_given: bool) -> ExitCode {
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
    let mut report = siem_agent::metrics::RunReport::default();
    let (stop_tx, stop) = tokio::sync::watch::channel(None);
    tokio::spawn(listen_for_signals(stop_tx));
    if let Some(dir) = settings.tenants_dir.clone() {
        return run_tenants(settings, &dir, stop).await;
    }
    let result = export(&settings, &mut report, stop).await;
    if let Some(path) = &settings.metrics_file
        && !settings.dry_run
        && !matches!(result, Ok(Outcome::Locked))
    {
        close_report(&mut report, started, &result);
        if let Err(e) = siem_agent::metrics::write(path, &report) {
            warn!("{e}");
        }
    }
    let total = totals([&report]);
    // A reader of stdout that has had enough (`| head`) ends a dry run or
    // a demo quietly; an export to STREAM fails (its cursor stays).
    if (settings.dry_run || demo.is_some()) && result.as_ref().err().is_some_and(reader_gone) {
        return ExitCode::Success;
    }
    if settings.dry_run && result.is_ok() {
        dry_run_summary(&total, "");
    }
    if let Some(d) = &demo {
        eprintln!(
            "siem-agent: demo: exported {} logs ({} filtered out) from the simulator at http://{} (state and log were in a temporary directory, now removed)",
            total.exported, total.filtered, d.simulator.addr
        );
    }
    match result {
        Ok(Outcome::Done) => ExitCode::Success,
        Ok(Outcome::NotStarted(_)) => ExitCode::Error,
        Ok(Outcome::Locked) => {
            eprintln!("Another instance is already running.");
            info!("another instance holds {LOCK_FILE}; exiting");
            ExitCode::Success
        }
        Err(e) => {
            error!("{}", one_line(e.as_ref()));
            ExitCode::Error
        }
    }
}

/// A run's report completed with how it ended.
fn close_report(
    report: &mut siem_agent::metrics::RunReport,
    started: std::time::Instant,
    result: &Result<Outcome>,
) {
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.ended = chrono::Utc::now().timestamp();
    report.error = result.as_ref().err().map(error_kind);
}

/// Every app's counts of `reports`, summed.
fn totals<'a>(
    reports: impl IntoIterator<Item = &'a siem_agent::metrics::RunReport>,
) -> siem_agent::state::status::Counts {
    let mut t = siem_agent::state::status::Counts::default();
    for c in reports.into_iter().flat_map(|r| r.apps.values()) {
        t.exported += c.exported;
        t.filtered += c.filtered;
        t.held += c.held;
    }
    t
}

/// A dry run's last line on stderr (`more`: what it covered, if not one
/// config).
fn dry_run_summary(total: &siem_agent::state::status::Counts, more: &str) {
    eprintln!(
        "siem-agent: dry run: {} logs printed, {} filtered out, {} newer than --settle left for a later run{more}",
        total.exported, total.filtered, total.held
    );
}

/// How one tenant's export ended.
struct TenantRun {
    name: String,
    result: Result<Outcome>,
    report: siem_agent::metrics::RunReport,
}

impl TenantRun {
    /// A tenant that failed before or outside its export.
    fn failed(name: String, kind: &'static str, e: anyhow::Error) -> TenantRun {
        TenantRun {
            report: siem_agent::metrics::RunReport {
                tenant: Some(name.clone()),
                error: Some(kind),
                ended: chrono::Utc::now().timestamp(),
                ..Default::default()
            },
            name,
            result: Err(e),
        }
    }
}

/// The text of a panic's payload (`panic!` with a message gives a String
/// or a &str).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    redact(text).replace('\n', " ")
}

/// `--config DIR`: every tenant file of the directory exported, at most
/// `--parallel` at once, each in its own state directory and under its
/// own lock, each failure its own: exit 1 if any failed, with one line
/// per failed tenant naming it.
async fn run_tenants(
    settings: Settings,
    dir: &std::path::Path,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> ExitCode {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tracing::Instrument;
    let found = match siem_agent::tenant::discover(dir, &settings.state_dir) {
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
                runs.push(TenantRun::failed(name, "config", e.into()));
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
                let mut report = siem_agent::metrics::RunReport {
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
                        Err(anyhow::anyhow!(
                            "{} is the cursor of a single config, and this tenant has none yet: if this tenant was that config, move the file to {} to go on from it; if not, delete it (nothing is exported until then, so that nothing is exported twice)",
                            single.display(),
                            settings.state_dir.display()
                        ))
                    }
                    _ => export(&settings, &mut report, stop.clone()).await,
                };
                if result.as_ref().err().is_some_and(reader_gone) {
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
        TENANT_TASKS
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
                    panic_text(e.into_panic().as_ref())
                } else {
                    e.to_string()
                };
                let e = anyhow::anyhow!("internal error (please report): {why}");
                runs.push(TenantRun::failed(name, "other", e));
            }
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    // `--dry-run | head`: the reader had enough; the tenants it cut short
    // end quietly (another's failure is still said).
    let reader_left = settings.dry_run && reader_left.load(Ordering::SeqCst);
    if reader_left {
        runs.retain(|r| !r.result.as_ref().err().is_some_and(reader_gone));
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
                error!("{}", one_line(e.as_ref()));
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
        if let Err(e) = siem_agent::metrics::write_tenants(path, &reports, &names) {
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
    if runs.len() == locked {
        eprintln!("Another instance is already running.");
    }
    if failed.is_empty() && not_started.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Error
    }
}

/// A progress line on stderr for runs watched from a terminal; none under
/// cron, systemd or a pipe, nor for a tenant of many.
fn progress_bar(settings: &Settings) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || settings.tenant.is_some() {
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

/// Whether the run ended because the reader of its STREAM output went away.
fn reader_gone(e: &anyhow::Error) -> bool {
    use siem_agent::run::RunError;
    use siem_agent::sink::SinkError;
    // RunError::Sink is transparent: it is not in the chain as a SinkError.
    e.chain().any(|c| {
        matches!(c.downcast_ref(), Some(SinkError::ReaderGone { .. }))
            || matches!(
                c.downcast_ref(),
                Some(RunError::Sink(SinkError::ReaderGone { .. }))
            )
    })
}

/// The kind of error that ended a run, for the metrics.
fn error_kind(e: &anyhow::Error) -> &'static str {
    use siem_agent::run::RunError;
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<RunError>() {
            return match r {
                RunError::Source(_) => "source",
                RunError::Sink(_) => "output",
                RunError::State(_) => "state",
                RunError::Interrupted(_) => "signal",
                RunError::Stalled(_) => "source",
            };
        }
        if cause.is::<siem_agent::source::SourceError>() {
            return "source";
        }
        if cause.is::<siem_agent::sink::SinkError>() {
            return "output";
        }
        if cause.is::<siem_agent::state::StateError>() {
            return "state";
        }
        if cause.is::<siem_agent::config::ConfigError>() {
            return "config";
        }
    }
    "other"
}

/// SIGTERM, SIGINT and SIGHUP ask the run to stop: the page in flight is
/// abandoned, what the outputs confirmed is saved, the status and metrics
/// are written, and the exit code is 1. A second signal ends it at once.
/// A signal the agent was started with ignored (`nohup`) stays ignored.
async fn listen_for_signals(tx: tokio::sync::watch::Sender<Option<&'static str>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, raw: i32| {
        if ignored_at_start(raw) {
            None
        } else {
            signal(kind).ok()
        }
    };
    let mut term = listen(SignalKind::terminate(), libc::SIGTERM);
    let mut int = listen(SignalKind::interrupt(), libc::SIGINT);
    let mut hup = listen(SignalKind::hangup(), libc::SIGHUP);
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let mut first = true;
    loop {
        let name = tokio::select! {
            () = next(&mut term) => "SIGTERM",
            () = next(&mut int) => "SIGINT",
            () = next(&mut hup) => "SIGHUP",
        };
        if !first {
            eprintln!("siem-agent: {name} again: stopping at once");
            std::process::exit(1);
        }
        first = false;
        warn!(
            "{name}: stopping; what the outputs confirmed is saved (send it again to stop at once)"
        );
        tx.send_replace(Some(name));
    }
}

/// Whether `sig` was set to be ignored when the process started.
fn ignored_at_start(sig: i32) -> bool {
    // SAFETY: reads the current action into a zeroed struct; changes
    // nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

async fn export(
    settings: &Settings,
    report: &mut siem_agent::metrics::RunReport,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Result<Outcome> {
    let state = StateDir::open(&settings.state_dir)?;
    // A dry run changes nothing in the state directory (not even the lock).
    let _lock = if settings.dry_run {
        None
    } else {
        let Some(lock) = Lock::acquire(&state)? else {
            if let (Some(limit), Some((pid, age))) = (settings.stale_after, Lock::holder(&state))
                && age > limit
            {
                anyhow::bail!(
                    "another run{} has held {} for {}, longer than --stale-after ({}): it may be hung (check the output it writes to; kill it to let the next run start)",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    state.path(LOCK_FILE).display(),
                    siem_agent::commands::status::duration_words(age.as_secs() as i64),
                    siem_agent::commands::status::duration_words(limit.as_secs() as i64),
                );
            }
            return Ok(Outcome::Locked);
        };
        let strays = state.remove_stray_temps();
        if strays > 0 {
            info!("removed {strays} temporary files left by an interrupted state write");
        }
        Some(lock)
    };
    let mut config = Config::load_as(&settings.config, settings.source)?;
    // Tests only (debug builds): a panic in the export of a config that
    // asks for one, to show what a panic does.
    if cfg!(debug_assertions) && config.unknown.iter().any(|k| k.contains("test_panic")) {
        panic!("test_panic in {}", config.path.display());
    }
    settings.apply_to(&mut config)?;
    if !config.unknown.is_empty() {
        warn!(
            "{}: unknown key {} ignored (known: {})",
            config.path.display(),
            siem_agent::report::printable(&config.unknown.join(", ")),
            siem_agent::config::known_keys(config.source).join(", ")
        );
    }
    if let Some(mode) = config.loose_permissions() {
        warn!(
            "{} can be read by group or others (mode {mode:03o}); it holds the key secret: chmod 600 it",
            config.path.display()
        );
    }
    if settings.dry_run {
        info!("--dry-run: printing to stdout; no cursor or status is written");
    } else if settings.reset_cursor {
        state.remove(STATE_FILE)?;
        state.remove(
            &siem_agent::state::writer::twin(std::path::Path::new(STATE_FILE)).to_string_lossy(),
        )?;
        state.remove(STATUS_FILE)?;
        info!("-r: cursor and status cleared; starting from the earliest log the API keeps");
    } else if settings.clear_status {
        state.remove(STATUS_FILE)?;
        info!("-c: status cleared");
    }
    let cursors = if settings.dry_run && settings.reset_cursor {
        CursorFile {
            source: config.source,
            ..CursorFile::default()
        }
    } else {
        CursorFile::load_for(&state.path(STATE_FILE), config.source)?
    };
    let source = Source::open(
        &config,
        &settings.http,
        settings.proxy.as_ref(),
        &settings.source_options,
    )?;

    // The start of a first run (180 days back) is reckoned on the API
    // server's clock: a local clock far off would otherwise skip logs or
    // ask for ones the API no longer keeps.
    let local_now = chrono::Utc::now();
    // The first request may hang up to --http-timeout: a signal meanwhile
    // ends the run at once (nothing was read, nothing is to be saved).
    let mut signals = stop.clone();
    let server_now = tokio::select! {
        t = source.server_now() => t,
        sig = siem_agent::run::stop_signal(&mut signals) => {
            return Err(siem_agent::run::RunError::Interrupted(sig).into());
        }
    };
    let now = match server_now {
        Some(server) => {
            let skew = (local_now - server).num_seconds();
            if skew.abs() > 300 {
                warn!(
                    "the local clock is {} {} the API server's; the server's time is used",
                    siem_agent::commands::status::duration_words(skew.abs()),
                    if skew > 0 { "ahead of" } else { "behind" }
                );
            }
            server
        }
        None => local_now,
    };
    let mut status = Status::running(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let status_path = state.path(STATUS_FILE);
    if !settings.dry_run {
        status.save(&status_path)?;
    }

    // Destinations may be listed in config.json; HEC's URL and token may
    // come from it.
    let mut destinations = settings.destinations_with(&config)?;
    if settings.dry_run {
        // The first destination's encoding, one line each, on stdout.
        let mut encoder = destinations[0].encoder.clone();
        encoder.framing = siem_agent::encode::Framing::Lf;
        destinations = vec![siem_agent::cli::settings::Destination {
            output: siem_agent::sink::Output::Stream(siem_agent::sink::StreamKind::Stdout),
            encoder,
        }];
    }
    let streams = settings.streams(&config);
    let result = run_apps(
        settings,
        &streams,
        &destinations,
        source,
        state.clone(),
        cursors,
        now,
        &mut status,
        stop,
    )
    .await;

    report.source = Some(config.source.name());
    report.apps = status.apps.clone();
    report.destinations = destinations
        .iter()
        .map(|d| siem_agent::sink::describe(&d.output))
        .collect();
    let after = CursorFile::load_for(&state.path(STATE_FILE), config.source).unwrap_or_default();
    let end = chrono::Utc::now();
    for &app in &streams {
        if let Some(t) = after.cursor(app).timestamp {
            report
                .lag_seconds
                .insert(app.to_string(), (end - t).num_seconds());
        }
    }
    status.ended = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    match &result {
        Ok(()) => status.state = RunState::Succeeded,
        Err(e) => {
            status.state = RunState::Failed;
            status.error = Some(one_line(e.as_ref()));
        }
    }
    if settings.dry_run {
        return result.map(|()| Outcome::Done);
    }
    if let Err(e) = status.save(&status_path) {
        warn!("{e}");
    }
    result.map(|()| Outcome::Done)
}

#[allow(clippy::too_many_arguments)]
async fn run_apps(
    settings: &Settings,
    streams: &[siem_agent::event::App],
    destinations: &[siem_agent::cli::settings::Destination],
    source: Source,
    state: StateDir,
    cursors: CursorFile,
    now: chrono::DateTime<chrono::Utc>,
    status: &mut Status,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Result<()> {
    let routes = Route::open_all(destinations, settings.send_retry)
        .await
        .map_err(|(what, e)| anyhow::Error::new(e).context(format!("output {what}")))?;
    // -x: one request, and the cursor stays where it was.
    let writer = (!settings.dry_run && !settings.one_request)
        .then(|| StateWriter::new(state.path(STATE_FILE)));
    let mut exporter = Exporter {
        source,
        routes,
        filter: settings.filter.clone(),
        pacer: Pacer::new(settings.rate.unwrap_or_else(|| {
            // UDP has no flow control: at full speed a receiver drops what
            // its socket buffer cannot hold.
            if destinations.iter().any(|d| d.output.is_udp()) {
                siem_agent::pace::UDP_RATE
            } else {
                0
            }
        })),
        state,
        cursors,
        writer,
        ceiling: chrono::Utc::now().min(now)
            - chrono::Duration::from_std(settings.settle).unwrap_or_default(),
        future_limit: chrono::Utc::now() + siem_agent::run::FUTURE_ALLOWANCE,
        stop,
        exported: 0,
        max_events: settings.max_events,
        one_request: settings.one_request,
        parallel_streams: settings.parallel_streams,
        dry_run: settings.dry_run,
        progress: progress_bar(settings),
        horizon: (!settings.settle.is_zero())
            .then(|| now - chrono::Duration::from_std(settings.settle).unwrap_or_default()),
    };
    let mut plans = Vec::with_capacity(streams.len());
    for &app in streams {
        if settings.filter.excludes_app(app) {
            info!("{app}: no selected severity level applies to {app}; skipped");
            continue;
        }
        let start = start_cursor(settings, &exporter.source, &exporter.cursors, app, now);
        let start = match start.timestamp {
            Some(t) if t > exporter.future_limit && settings.since.is_some() => {
                anyhow::bail!(
                    "--since {} is in the future: there is nothing to export yet",
                    siem_agent::event::api_timestamp(t)
                );
            }
            Some(t) if t > exporter.future_limit => {
                warn!(
                    "{app}: the saved cursor ({}) is in the future; exporting from now instead (a clock was wrong when it was saved)",
                    siem_agent::event::api_timestamp(t)
                );
                siem_agent::state::Cursor::starting_at(now.min(chrono::Utc::now()))
                    .with_recent(&start)
            }
            _ => start,
        };
        plans.push((app, start));
    }
    let stalled = exporter
        .export_streams(plans, &mut status.apps)
        .await
        .map_err(|(app, e)| anyhow::Error::new(e).context(app.to_string()))?;
    for route in &mut exporter.routes {
        route.sink.close().await.context("closing the output")?;
    }
    if !stalled.is_empty() {
        return Err(siem_agent::run::RunError::Stalled(stalled).into());
    }
    Ok(())
}
