//! One export run: the streams of a config (CloudSOC's apps, Defender's
//! data types, ...) are exported side by side, up to `--parallel-streams`
//! at once, each with its own cursor. For each, pages flow source ->
//! filter -> encode -> pace -> sink, in the stream's order; pages of
//! different streams take turns in the order they arrive. The cursor
//! follows what every destination has confirmed, inside a page too
//! (RELP's answers, each flushed batch of a stream or file, each HEC
//! batch), and is written in the background, one write at a time.
//!
//! Everything runs on one thread (see `main`): a fetch task per stream
//! reads its next pages while the export waits (for the receiver, the
//! pace or the API), within a budget of pages in memory across streams
//! ([`fetch::page_budget`]). The run's parts, in the order a page meets
//! them:
//! - [`fetch`]: the fetch tasks and the page budget;
//! - [`stream`]: one stream's state, and the steps of a page that need no
//!   output (receive, admit, hand on, settle);
//! - [`page`]: a page's whole course (format and send, confirm, commit);
//! - [`route`]: a destination and the frames it confirmed.
//!
//! The delivery discipline they apply (what is sent, passed over, ended,
//! committed) is in [`ledger`], with its invariants.

pub mod fetch;
pub mod ledger;
mod page;
pub mod route;
mod stream;

pub use route::{CONFIRM_EVERY, Route};

use crate::cli::settings::Settings;
use crate::event::App;
use crate::filter::Filter;
use crate::pace::Pacer;
use crate::sink::SinkError;
use crate::source::{Source, SourceError};
use crate::state::status::Counts;
use crate::state::writer::StateWriter;
use crate::state::{Cursor, CursorFile, StateDir, StateError};
use chrono::{DateTime, Utc};
use fetch::Fetched;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use stream::{Limits, Stream};
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc};
use tracing::{info, warn};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "stopped by {}: what the outputs confirmed is saved; the next run continues from there",
        .0.0
    )]
    Interrupted(Interrupted),
    /// Streams that ended for lack of progress (ledger's invariant 2),
    /// each `stream: why`.
    #[error(
        "{}; what was delivered is saved, but logs may be missing upstream",
        .0.join("; ")
    )]
    Stalled(Vec<String>),
}

/// Where a run starts for one app.
pub fn start_cursor(
    settings: &Settings,
    source: &Source,
    saved: &CursorFile,
    app: App,
    now: DateTime<Utc>,
) -> Cursor {
    let c = saved.cursor(app);
    let window = Window {
        oldest: source.oldest(app, now),
        first_run: source.first_run(app, now),
    };
    start_position(settings, &c, app, window).with_recent(&c)
}

/// What the API keeps of a stream, as of now.
struct Window {
    /// The oldest time it still answers, when it has a limit.
    oldest: Option<DateTime<Utc>>,
    /// Where a first run starts.
    first_run: DateTime<Utc>,
}

fn start_position(settings: &Settings, c: &Cursor, app: App, w: Window) -> Cursor {
    if let Some(t) = settings.since {
        return Cursor::starting_at(w.oldest.map_or(t, |o| t.max(o)));
    }
    if let Some(day) = settings.start_date {
        let t = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(w.first_run);
        if let Some(saved) = c.timestamp
            && saved > t
        {
            // Left in a recurring job, it would send the same window on
            // every run.
            warn!(
                "{app}: --start_date {day} is before the saved cursor ({}): this run exports again from {day}; remove --start_date from a recurring job",
                crate::event::api_timestamp(saved)
            );
        }
        if let Some(oldest) = w.oldest
            && t < oldest
        {
            warn!("{app}: --start_date {day} is older than the API keeps; starting at {oldest}");
            return Cursor::starting_at(oldest);
        }
        return Cursor::starting_at(t);
    }
    match (c.timestamp, w.oldest) {
        // A position saved without its time (edited by hand): the
        // position alone says where to resume.
        (None, _) if app.positional() && c.position.is_some() => {
            warn!(
                "{app}: the saved position has no timestamp; resuming from the position (status shows no lag until a log is delivered)"
            );
            c.clone()
        }
        (None, _) => Cursor::starting_at(w.first_run),
        (Some(t), Some(oldest)) if t < oldest => {
            warn!(
                "{app}: the cursor ({t}) is older than the API keeps; logs before {oldest} can no longer be exported"
            );
            Cursor::starting_at(oldest)
        }
        _ => c.clone(),
    }
}

/// How long a run stopped by a signal waits for its outputs to confirm
/// what they were given.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a run stopped before its end: a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted(pub &'static str);

/// A run over all selected streams.
pub struct Exporter {
    pub source: Source,
    /// Every destination: each log goes to all, and a log counts as
    /// delivered when all have confirmed it.
    pub routes: Vec<Route>,
    pub filter: Filter,
    pub pacer: Pacer,
    pub state: StateDir,
    pub cursors: CursorFile,
    /// Writes the cursor file in the background (none in a dry run).
    pub writer: Option<StateWriter>,
    /// Events handed to the outputs so far in this run, all apps (for
    /// `--max-events`).
    pub exported: u64,
    /// 0 = no cap.
    pub max_events: u64,
    /// `-x`: one request per stream.
    pub one_request: bool,
    /// How many streams are exported at once (`--parallel-streams`).
    pub parallel_streams: usize,
    /// `--dry-run`: the cursor advances in memory only.
    pub dry_run: bool,
    /// Logs newer than this are left for the next run (`--settle`).
    pub horizon: Option<DateTime<Utc>>,
    /// The cursor never moves past this time: the earlier of the local
    /// clock and the server's, less the settle window. Later logs are
    /// delivered and remembered by key, so that a wrong clock on either
    /// side (a server `Date` far ahead) cannot make the cursor pass logs
    /// still to be indexed.
    pub ceiling: DateTime<Utc>,
    /// Logs dated after this (local now plus [`FUTURE_ALLOWANCE`]) are
    /// wrong, not recent: never held, warned about.
    pub future_limit: DateTime<Utc>,
    /// A progress line on stderr (only when stderr is a terminal).
    pub progress: Option<Progress>,
    /// Set when a signal asks the run to stop.
    pub stop: tokio::sync::watch::Receiver<Option<&'static str>>,
}

/// The progress line: the run's own, or one the tenants of `--config DIR`
/// share (each adds what it exports; the run clears it).
pub struct Progress {
    pub bar: indicatif::ProgressBar,
    pub shared: bool,
    /// What this export has added to the line so far.
    pub shown: u64,
    /// Before each message: the tenant's name and `: `, or nothing.
    pub label: String,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(p) = &self.progress
            && !p.shared
        {
            p.bar.finish_and_clear();
        }
    }
}

/// How one app's export ended.
#[derive(Debug, PartialEq, Eq)]
pub enum AppEnd {
    /// The API had nothing more.
    CaughtUp,
    /// `--max-events` was reached.
    Capped,
    /// The stream made no progress (why): it ended there, what was
    /// delivered is committed (ledger's invariant 2).
    Stalled(String),
}

/// How far ahead of the local clock a log's time may be and still count as
/// recent (held by the settle window) rather than wrong (delivered at once,
/// warned about).
pub const FUTURE_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(5);

/// When logs without a time were delivered before, a run asks the API from
/// this far behind the cursor, so that such logs near the cursor are met
/// again (and skipped by key) rather than missed.
pub const RECENT_OVERLAP: chrono::Duration = chrono::Duration::hours(1);

/// What the streams of a run share while they are exported.
struct Streams {
    /// The streams being exported, in the order they started.
    active: Vec<Stream>,
    /// A stream that ended moved its cursor into [`Exporter::cursors`]:
    /// the file must be written.
    ended_changed: bool,
    /// A large cursor file was made: not again before this (see
    /// [`Exporter::commit`]).
    commit_after: Option<Instant>,
}

impl Exporter {
    fn capped(&self) -> bool {
        self.max_events > 0 && self.exported >= self.max_events
    }

    fn stopped(&self) -> Option<&'static str> {
        // One atomic load while nothing changed (this runs for every log);
        // the value is read under the channel's lock only after a change.
        // A change marked seen elsewhere was acted on there
        // (`stop_signal` returns as soon as it sees one).
        match self.stop.has_changed() {
            Ok(false) => None,
            _ => *self.stop.borrow(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            horizon: self.horizon,
            future_limit: self.future_limit,
            ceiling: self.ceiling,
        }
    }

    /// Exports each stream of `plans` from where it starts, at most
    /// [`Exporter::parallel_streams`] at once, starting them in order as
    /// others end; each stream's counts are put in `counts` when it ends.
    ///
    /// Returns the streams that ended for lack of progress (`vendor app:
    /// why`); the others caught up or reached `--max-events`. An error
    /// ends every stream (what the outputs confirmed is saved) and is
    /// returned with the stream it came from.
    pub async fn export_streams(
        &mut self,
        plans: Vec<(App, Cursor)>,
        counts: &mut BTreeMap<String, Counts>,
    ) -> Result<Vec<String>, (App, RunError)> {
        let parallel = self.parallel_streams.clamp(1, plans.len().max(1));
        let budget = Arc::new(Semaphore::new(fetch::page_budget(parallel)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut run = Streams {
            active: Vec::with_capacity(parallel),
            ended_changed: false,
            commit_after: None,
        };
        let mut waiting: VecDeque<(usize, (App, Cursor))> = plans.into_iter().enumerate().collect();
        let mut stalled = Vec::new();
        // `--max-events` ended the run before every stream had caught up.
        let mut cut = false;
        let failure = 'run: loop {
            while run.active.len() < parallel
                && let Some((id, (app, start))) = waiting.pop_front()
            {
                if let Some(sig) = self.stopped() {
                    break 'run Some((app, RunError::Interrupted(Interrupted(sig))));
                }
                if self.capped() {
                    cut = true;
                    waiting.clear();
                    break;
                }
                match self.start_stream(id, app, start, &budget, &tx) {
                    Ok(s) => run.active.push(s),
                    Err(e) => break 'run Some((app, e.into())),
                }
            }
            let Some(first) = run.active.first() else {
                break None;
            };
            let first = first.app;
            let (id, mail) = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    // The run holds a sender: never.
                    None => break None,
                },
                sig = stop_signal(&mut self.stop) => {
                    break 'run Some((first, RunError::Interrupted(sig)));
                }
            };
            // Mail of a stream that has ended is dropped.
            let Some(i) = run.active.iter().position(|s| s.id == id) else {
                continue;
            };
            let app = run.active[i].app;
            let end = match mail {
                // The page's place in the budget is given back once it
                // is handled.
                Fetched::Page(page, _place) => self.handle_page(&mut run, i, page).await,
                Fetched::Done => Ok(Some(AppEnd::CaughtUp)),
                Fetched::Stalled(why) | Fetched::Failed(SourceError::NoProgress(why)) => {
                    Ok(Some(AppEnd::Stalled(why)))
                }
                Fetched::Failed(e) => Err(e.into()),
            };
            let result = match end {
                Ok(None) => Ok(()),
                Ok(Some(AppEnd::Capped)) => {
                    // Every stream ends here; none starts.
                    cut = true;
                    waiting.clear();
                    let mut ended = Ok(());
                    while ended.is_ok() && !run.active.is_empty() {
                        let app = run.active[0].app;
                        ended = self
                            .end_stream(&mut run, 0, AppEnd::Capped, counts)
                            .await
                            .map(|_| ())
                            .map_err(|e| (app, e));
                    }
                    match ended {
                        Ok(()) => continue,
                        Err((app, e)) => break 'run Some((app, e)),
                    }
                }
                Ok(Some(end)) => match self.end_stream(&mut run, i, end, counts).await {
                    Ok(Some(why)) => {
                        stalled.push(why);
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                break 'run Some((app, e));
            }
        };
        if cut {
            info!(
                "--max-events {} reached; the next run continues from here",
                self.max_events
            );
        }
        match failure {
            None => Ok(stalled),
            Some((app, e)) => match self.end_all(&mut run, &e, counts).await {
                Ok(()) => Err((app, e)),
                Err(later) => Err((app, later)),
            },
        }
    }

    /// Starts stream `id`: its first request, and the task that reads its
    /// pages.
    fn start_stream(
        &mut self,
        id: usize,
        app: App,
        start: Cursor,
        budget: &Arc<Semaphore>,
        tx: &mpsc::UnboundedSender<fetch::Mail>,
    ) -> Result<Stream, SourceError> {
        let first =
            stream::first_request(&self.source, app, &start, &self.filter.server_params(app))?;
        // In the caller's span: a tenant's retries are logged as its own.
        let fetcher = tokio::spawn(tracing::Instrument::in_current_span(fetch::fetch_pages(
            self.source.clone(),
            app,
            first,
            self.one_request,
            id,
            budget.clone(),
            tx.clone(),
        )));
        Ok(Stream::new(
            id,
            app,
            start,
            self.source.newest_first(),
            fetcher,
        ))
    }

    /// Ends stream `i` of the run (`end`): waits until the outputs have
    /// confirmed everything sent, saves the cursor it leaves, and logs its
    /// counts. Returns why it stalled, if it did.
    async fn end_stream(
        &mut self,
        run: &mut Streams,
        i: usize,
        end: AppEnd,
        counts: &mut BTreeMap<String, Counts>,
    ) -> Result<Option<String>, RunError> {
        let mut s = run.active.remove(i);
        s.fetcher.abort();
        // (A fetcher that panicked has ended the process: see main.rs's
        // panic hook; its mail never comes.)
        let result = match self.confirm_routes().await {
            Ok(()) => Ok(end),
            Err(e) => Err(e),
        };
        let confirmed = self.confirmed_frames();
        s.settle(confirmed);
        s.close(&result, self.one_request, &self.limits());
        let app = s.app;
        info!("{}", s.summary());
        counts.insert(app.to_string(), s.counts.clone());
        run.ended_changed |= s.track.dirty;
        if self.writer.is_some() {
            self.source
                .committed(app, s.track.confirmed.position.as_deref());
        }
        self.cursors.cursors.insert(app, s.track.confirmed);
        self.commit(run, true)?;
        self.drain().await?;
        match result? {
            AppEnd::Stalled(why) => {
                let vendor = self.source.vendor();
                warn!("{vendor} {app}: {why}; this stream ends here (what was delivered is saved)");
                Ok(Some(format!("{vendor} {app}: {why}")))
            }
            _ => Ok(None),
        }
    }

    /// An error ended the run (`e`): every stream still running ends with
    /// what the outputs confirmed. Stopped by a signal, the outputs are
    /// given [`GRACE`] to confirm what they were handed.
    async fn end_all(
        &mut self,
        run: &mut Streams,
        e: &RunError,
        counts: &mut BTreeMap<String, Counts>,
    ) -> Result<(), RunError> {
        for s in &run.active {
            s.fetcher.abort();
        }
        if let RunError::Interrupted(_) = e {
            // What was handed over is confirmed if the outputs take it
            // promptly; else it is left for the next run (the process
            // ends right after: a flush cut short here is never followed
            // by another write).
            for route in &mut self.routes {
                match tokio::time::timeout(GRACE, route.confirm_all()).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
        }
        let confirmed = self.confirmed_frames();
        for mut s in run.active.drain(..) {
            s.settle(confirmed);
            s.track.apply_settled();
            counts.insert(s.app.to_string(), s.counts.clone());
            run.ended_changed |= s.track.dirty;
            if self.writer.is_some() {
                self.source
                    .committed(s.app, s.track.confirmed.position.as_deref());
            }
            self.cursors.cursors.insert(s.app, s.track.confirmed);
        }
        self.commit(run, true)?;
        self.drain().await?;
        Ok(())
    }
}

/// Resolves when a signal has asked the run to stop (never, if the sender
/// is gone).
pub async fn stop_signal(
    stop: &mut tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Interrupted {
    loop {
        if let Some(sig) = *stop.borrow_and_update() {
            return Interrupted(sig);
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
