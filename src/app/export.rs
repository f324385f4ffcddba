//! One config's run: the lock, the config and its cursors, the first
//! request's clock, the status, then the streams exported (`run::Exporter`)
//! and the status and report written when they end.

use super::report::progress_bar;
use super::{AppError, Outcome};
use crate::cli::settings::Settings;
use crate::config::Config;
use crate::pace::Pacer;
use crate::report::one_line;
use crate::run::{Exporter, Route, RunError, start_cursor};
use crate::source::Source;
use crate::state::status::RunState;
use crate::state::writer::StateWriter;
use crate::state::{CursorFile, LOCK_FILE, Lock, STATE_FILE, STATUS_FILE, StateDir, Status};
use tracing::{debug, info, warn};

/// One config's run under `settings`: the lock taken, the config read,
/// its streams exported from their cursors to the destinations, the
/// status written; `report` filled in for the metrics. `stop` says when a
/// signal asks the run to end.
pub async fn export(
    settings: &Settings,
    report: &mut crate::metrics::RunReport,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Result<Outcome, AppError> {
    let state = StateDir::open(&settings.state_dir)?;
    // A dry run changes nothing in the state directory (not even the lock).
    let _lock = if settings.dry_run {
        None
    } else {
        let Some(lock) = Lock::acquire(&state)? else {
            if let (Some(limit), Some((pid, age))) = (settings.stale_after, Lock::holder(&state))
                && age > limit
            {
                return Err(AppError::Refused(format!(
                    "another run{} has held {} for {}, longer than --stale-after ({}): it may be hung (check the output it writes to; kill it to let the next run start)",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    state.path(LOCK_FILE).display(),
                    crate::commands::status::duration_words(age.as_secs() as i64),
                    crate::commands::status::duration_words(limit.as_secs() as i64),
                )));
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
    if let Some(w) = config.unknown_keys_warning() {
        warn!("{w}");
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
            &crate::state::writer::twin(std::path::Path::new(STATE_FILE)).to_string_lossy(),
        )?;
        state.remove(STATUS_FILE)?;
        info!("-r: cursor and status cleared; starting from the earliest log the API keeps");
    } else if settings.clear_status {
        state.remove(STATUS_FILE)?;
        info!("-c: status cleared");
    }
    let mut cursors = if settings.dry_run && settings.reset_cursor {
        CursorFile {
            source: config.source,
            ..CursorFile::default()
        }
    } else {
        CursorFile::load_for(&state.path(STATE_FILE), config.source)?
    };
    let source = Source::open(
        &config.vendor,
        &config.path,
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
        sig = crate::run::stop_signal(&mut signals) => {
            return Err(RunError::Interrupted(sig).into());
        }
    };
    let now = match server_now {
        Some(server) => {
            let skew = (local_now - server).num_seconds();
            if skew.abs() > 300 {
                warn!(
                    "the local clock is {} {} the API server's; the server's time is used",
                    crate::commands::status::duration_words(skew.abs()),
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
        encoder.framing = crate::encode::Framing::Lf;
        destinations = vec![crate::cli::settings::Destination {
            output: crate::sink::Output::Stream(crate::sink::StreamKind::Stdout),
            encoder,
        }];
    }
    let streams = match &source {
        // The Logstore's shards, listed now (and their ends taken).
        Source::Sls(sls) => {
            let mut signals = stop.clone();
            tokio::select! {
                shards = sls.shards() => sls_streams(shards?, &mut cursors, settings.reset_cursor),
                sig = crate::run::stop_signal(&mut signals) => {
                    return Err(RunError::Interrupted(sig).into());
                }
            }
        }
        _ => settings.streams(&config),
    };
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
        .map(|d| crate::sink::describe(&d.output))
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
            status.error = Some(one_line(e));
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

/// A Log Service's streams: its shards, but those that are readonly and
/// were read to their end (they hold nothing more, ever; their position
/// stays in the state file, so that a shard without one is known to be
/// new) and those a consumer group gives to other hosts. Shards the
/// Logstore no longer lists (their data expired) leave the state file.
fn sls_streams(
    shards: Vec<crate::source::sls::Shard>,
    cursors: &mut CursorFile,
    reset: bool,
) -> Vec<crate::event::App> {
    use crate::event::App;
    let mut apps = Vec::with_capacity(shards.len());
    // Not the first run: a shard without a position is new (a split's or
    // a merge's), and starts at its beginning whatever "start" says, so
    // that nothing written to it before this run is skipped.
    let known = !reset && cursors.cursors.values().any(|c| c.position.is_some());
    for s in &shards {
        let app = App::SlsShard(s.id);
        if known && s.checkpoint.is_none() {
            let c = cursors.cursors.entry(app).or_default();
            if c.position.is_none() {
                info!("{app}: a new shard; exporting it from its beginning");
                c.timestamp = Some(chrono::DateTime::UNIX_EPOCH);
            }
        }
        // In a consumer group, the group's checkpoint is where the shard
        // resumes, unless this host's state is inside the page it names
        // (the same cursor: this host saved it).
        if let Some(cp) = s.checkpoint.as_deref().filter(|_| s.assigned && !reset) {
            let c = cursors.cursors.entry(app).or_default();
            if c.position.as_deref() != Some(cp) {
                if c.position.is_some() {
                    info!(
                        "{app}: continuing from the consumer group's checkpoint (another host read since this one)"
                    );
                }
                c.position = Some(cp.to_string());
                c.skip = 0;
                c.timestamp = s.checkpoint_time.or(c.timestamp);
            }
        }
        let saved = cursors
            .cursors
            .get(&app)
            .and_then(|c| c.position.as_deref());
        if s.readonly && !reset && saved == Some(s.end.as_str()) {
            // Kept in the state until the Logstore drops the shard (its
            // data expires): a shard without a position is a new one.
            debug!("{app}: readonly (split or merged) and read to its end: done");
            continue;
        }
        if s.assigned {
            apps.push(app);
        }
    }
    // Shards another host reads keep this host's position.
    cursors.cursors.retain(|app, _| {
        let listed = shards.iter().any(|s| App::SlsShard(s.id) == *app);
        if !listed {
            warn!(
                "{app}: the Logstore no longer has this shard (its data expired); its saved position is dropped"
            );
        }
        listed
    });
    apps
}

/// The streams of one config exported to its destinations, from the
/// cursors in `cursors` (or where the flags say to start).
#[allow(clippy::too_many_arguments)]
async fn run_apps(
    settings: &Settings,
    streams: &[crate::event::App],
    destinations: &[crate::cli::settings::Destination],
    source: Source,
    state: StateDir,
    cursors: CursorFile,
    now: chrono::DateTime<chrono::Utc>,
    status: &mut Status,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Result<(), AppError> {
    let routes = Route::open_all(destinations, settings.send_retry)
        .await
        .map_err(|(what, source)| AppError::Open { what, source })?;
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
                crate::pace::UDP_RATE
            } else {
                0
            }
        })),
        state,
        cursors,
        writer,
        ceiling: chrono::Utc::now().min(now)
            - chrono::Duration::from_std(settings.settle).unwrap_or_default(),
        future_limit: chrono::Utc::now() + crate::run::FUTURE_ALLOWANCE,
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
                return Err(AppError::Refused(format!(
                    "--since {} is in the future: there is nothing to export yet",
                    crate::event::api_timestamp(t)
                )));
            }
            Some(t) if t > exporter.future_limit => {
                warn!(
                    "{app}: the saved cursor ({}) is in the future; exporting from now instead (a clock was wrong when it was saved)",
                    crate::event::api_timestamp(t)
                );
                crate::state::Cursor::starting_at(now.min(chrono::Utc::now())).with_recent(&start)
            }
            _ => start,
        };
        plans.push((app, start));
    }
    let stalled = exporter.export_streams(plans, &mut status.apps).await;
    // A consumer group's last checkpoints and its shards released, however
    // the streams ended.
    exporter.source.finish().await;
    let stalled = stalled.map_err(|(app, source)| AppError::Stream { app, source })?;
    for route in &mut exporter.routes {
        route.sink.close().await.map_err(AppError::Close)?;
    }
    if !stalled.is_empty() {
        return Err(RunError::Stalled(stalled).into());
    }
    Ok(())
}
