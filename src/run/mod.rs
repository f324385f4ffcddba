//! One export run: for each app, pages flow source -> filter -> encode ->
//! pace -> sink. The cursor follows what every destination has confirmed,
//! inside a page too (RELP's answers, each flushed batch of a stream or
//! file, each HEC batch), and is written in the background, one write at a
//! time. A fetch task reads the next page whenever the export waits (for
//! the receiver, the pace or the API; both run on one thread, see
//! `main`); at most three pages are in memory, whatever the backfill.
//!
//! The delivery discipline it applies (what is sent, passed over, ended,
//! committed) is in [`ledger`], with its invariants.

pub mod ledger;

use crate::cli::settings::{Destination, Settings};
use crate::encode::{Encoder, Stamp};
use crate::event::App;
use crate::filter::Filter;
use crate::pace::Pacer;
use crate::sink::{Sink, SinkError};
use crate::source::{Page, Request, Source, SourceError};
use crate::state::cursor::Step;
use crate::state::status::Counts;
use crate::state::writer::StateWriter;
use crate::state::{Cursor, CursorFile, StateDir, StateError};
use chrono::{DateTime, SubsecRound, Utc};
use ledger::{Ledger, PageIs, Requests};
use std::collections::VecDeque;
use std::time::Instant;
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

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

/// One destination of a run, with what it has been given, flushed and
/// confirmed (frames, counted from the start of the run).
pub struct Route {
    pub sink: Sink,
    pub encoder: Encoder,
    sent: u64,
    flushed: u64,
    confirmed: u64,
    /// Bytes given since the last flush.
    unflushed_bytes: usize,
    /// When the last flush was made.
    flushed_at: Instant,
}

/// Frames unconfirmed for this long are confirmed even when no batch is
/// full (a slow `--rate`), so that the cursor keeps up.
pub const CONFIRM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Route {
    pub fn new(sink: Sink, encoder: Encoder) -> Route {
        Route {
            sink,
            encoder,
            sent: 0,
            flushed: 0,
            confirmed: 0,
            unflushed_bytes: 0,
            flushed_at: Instant::now(),
        }
    }

    /// Opens the destinations, in order; the first that fails stops.
    pub async fn open_all(
        destinations: &[Destination],
        retry: crate::sink::SendRetry,
    ) -> Result<Vec<Route>, (String, SinkError)> {
        let mut routes = Vec::with_capacity(destinations.len());
        for d in destinations {
            let sink = Sink::open(&d.output, retry)
                .await
                .map_err(|e| (crate::sink::describe(&d.output), e))?;
            routes.push(Route::new(sink, d.encoder.clone()));
        }
        Ok(routes)
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.sink.send(frame).await?;
        self.sent += 1;
        self.unflushed_bytes += frame.len();
        if let Some(n) = self.sink.confirmed_by_itself() {
            self.confirmed = n.min(self.sent);
        }
        Ok(())
    }

    /// Flushes: confirms what was sent but what the sink still holds.
    async fn flush(&mut self) -> Result<(), SinkError> {
        self.sink.flush().await?;
        self.flushed = self.sent;
        self.confirmed = self.sent - self.sink.held().min(self.sent);
        self.unflushed_bytes = 0;
        self.flushed_at = Instant::now();
        Ok(())
    }

    /// Flushes and waits until everything sent is confirmed.
    async fn confirm_all(&mut self) -> Result<(), SinkError> {
        self.sink.confirm_all().await?;
        self.flushed = self.sent;
        self.confirmed = self.sent;
        self.unflushed_bytes = 0;
        self.flushed_at = Instant::now();
        Ok(())
    }

    /// Whether a batch is worth flushing now. `timed`: the run reads the
    /// clock for each frame anyway (`--rate`), so a slow flow is flushed
    /// [`CONFIRM_EVERY`]; otherwise the clock is read every 64 frames.
    fn batch_ready(&self, timed: bool) -> bool {
        // A transport that confirms by itself (RELP's answers, HEC's
        // acknowledgements) is not made to wait for them.
        self.flushed < self.sent
            && self.sink.confirmed_by_itself().is_none()
            && (self
                .sink
                .flush_batch()
                .is_some_and(|b| self.unflushed_bytes >= b)
                || ((timed || self.sent.is_multiple_of(64))
                    && self.flushed_at.elapsed() >= CONFIRM_EVERY))
    }
}

/// How long a run stopped by a signal waits for its outputs to confirm
/// what they were given.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a run stopped before its end: a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted(pub &'static str);

/// A run over all selected apps.
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
    pub progress: Option<indicatif::ProgressBar>,
    /// Set when a signal asks the run to stop.
    pub stop: tokio::sync::watch::Receiver<Option<&'static str>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(pb) = &self.progress {
            pb.finish_and_clear();
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

/// One log handled, waiting for every destination to confirm what was sent
/// up to it.
struct Pending {
    /// Frames sent per route when it was handled.
    at: u64,
    step: Step,
    /// It was sent (not filtered out).
    delivered: bool,
}

/// Where one app's export stands.
struct Track {
    /// What was handed on, kept from the moment the API is seen out of
    /// time order: where the cursor goes once the run has read the whole
    /// answer.
    progress: Cursor,
    /// What every destination has confirmed.
    confirmed: Cursor,
    /// `confirmed` moved since it was last handed to the state writer.
    dirty: bool,
    /// Logs handed on, oldest first; the first `settled` are confirmed
    /// and not yet applied to `confirmed`.
    pending: VecDeque<Pending>,
    settled: usize,
    /// How many of `pending` after the first `settled` were sent (not
    /// filtered out).
    pending_delivered: u64,
    /// The API was seen out of time order: the cursor stays until the run
    /// has read the whole answer (ledger's invariant 3).
    disorder: bool,
    /// The newest second handed on that may move the cursor.
    newest: Option<DateTime<Utc>>,
    /// The first page's logs are remembered ahead, not passed by the
    /// cursor, until the next page shows that the API answers in time
    /// order (or the whole answer was read): a first page of one record,
    /// or pages that go back in time each sorted oldest first, show no
    /// order of their own (ledger's invariant 3).
    gated: bool,
    /// The first page's logs so far confirmed and remembered ahead, which
    /// the cursor passes when the gate opens.
    gated_steps: Vec<(DateTime<Utc>, crate::state::cursor::Key)>,
    /// The last page read named a next page (an empty one that does is
    /// not the API's end).
    named_next: bool,
    /// A large cursor was made into the file's bytes: not again before.
    commit_after: Option<Instant>,
    /// The keys remembered ahead reached their bound (warned once).
    ahead_full: bool,
    /// What this run met of the stream (ledger's invariants 1 and 2).
    ledger: Ledger,
}

/// Confirmed logs are applied to the confirmed cursor at least this many at
/// a time (and at each commit): a batch hashes only the keys of its newest
/// second, where one by one every key was hashed.
const SETTLED_BATCH: usize = 4096;

impl Track {
    /// The API was seen out of time order: the cursor holds (the logs
    /// handed on from now are remembered ahead), and what was handed on is
    /// tracked from here.
    fn hold(&mut self) {
        self.disorder = true;
        let mut p = self.confirmed.clone();
        p.apply_all(self.pending.iter().map(|x| &x.step));
        for (t, k) in self.gated_steps.drain(..) {
            p.advance_shared(t, &k);
        }
        self.progress = p;
        // What was handed on and is not yet passed by the cursor never
        // will be before the run has read the whole answer.
        self.gated = false;
        for x in &mut self.pending {
            if let Step::Advance(t, k) = &x.step {
                x.step = Step::Ahead(*t, k.clone());
            }
        }
    }

    /// The next page shows the API in time order, or the whole answer was
    /// read: the cursor passes the first page's logs.
    fn open_gate(&mut self) {
        if !self.gated {
            return;
        }
        self.gated = false;
        let steps: Vec<Step> = self
            .gated_steps
            .drain(..)
            .map(|(t, k)| Step::Advance(t, k))
            .collect();
        self.confirmed.apply_all(steps.iter());
        self.dirty = true;
    }

    /// Moves the confirmed cursor over the settled logs (while the gate is
    /// closed, remembers them ahead instead).
    fn apply_settled(&mut self) {
        if self.settled == 0 {
            return;
        }
        if self.gated {
            for p in self.pending.range(..self.settled) {
                match &p.step {
                    Step::Advance(t, k) => {
                        self.confirmed.note_ahead(*t, k);
                        self.gated_steps.push((*t, k.clone()));
                    }
                    other => self.confirmed.apply(other),
                }
            }
        } else {
            let steps = self.pending.range(..self.settled).map(|p| &p.step);
            self.confirmed.apply_all(steps);
        }
        self.pending.drain(..self.settled);
        self.settled = 0;
    }
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

    /// Exports one app from `start`; `counts` is filled as it goes.
    pub async fn export_app(
        &mut self,
        app: App,
        start: Cursor,
        counts: &mut Counts,
    ) -> Result<AppEnd, RunError> {
        if let Some(sig) = self.stopped() {
            return Err(RunError::Interrupted(Interrupted(sig)));
        }
        if self.capped() {
            return Ok(AppEnd::Capped);
        }
        let mut since = start.timestamp.unwrap_or_else(Utc::now);
        if !start.recent.is_empty() {
            since -= RECENT_OVERLAP;
        }
        let resume = start.position.as_deref().filter(|_| app.positional());
        let first = self
            .source
            .first(app, since, resume, &self.filter.server_params(app))?;
        match resume {
            Some(_) => info!("{app}: exporting from the position the last run saved"),
            None => info!(
                "{app}: exporting from {}",
                crate::event::api_timestamp(since)
            ),
        }

        let (tx, rx) = mpsc::channel::<Fetched>(1);
        // In the caller's span: a tenant's retries are logged as its own.
        let fetcher = tokio::spawn(tracing::Instrument::in_current_span(fetch_pages(
            self.source.clone(),
            app,
            first,
            self.one_request,
            tx,
        )));
        let mut track = Track {
            progress: start.clone(),
            confirmed: start.clone(),
            dirty: false,
            pending_delivered: 0,
            pending: VecDeque::new(),
            settled: 0,
            disorder: false,
            newest: None,
            gated: !app.positional(),
            gated_steps: Vec::new(),
            named_next: false,
            commit_after: None,
            ahead_full: false,
            ledger: Ledger::new(),
        };
        if self.source.newest_first() && !app.positional() {
            // Declared: the cursor holds from the first record on.
            track.hold();
        }
        let mut result = self.pages(app, &start, rx, &mut track, counts).await;
        // (A fetcher that panicked has ended the process: see main.rs's
        // panic hook; its closed channel is never taken for the end.)
        fetcher.abort();
        if result.is_ok()
            && let Err(e) = self.confirm_routes().await
        {
            result = Err(e);
        }
        match &result {
            Ok(AppEnd::CaughtUp) if !self.one_request && !app.positional() && track.named_next => {
                // An empty page that still names a next one is not the
                // API's end: the cursor passes nothing it held back.
                warn!(
                    "{app}: the API answered an empty page that still names a next page; the run ends there, and the cursor keeps to what it knows was read in order"
                );
            }
            Ok(AppEnd::CaughtUp) if !self.one_request && !app.positional() => {
                // The whole answer was read, all of it confirmed: nothing
                // older is to come (ledger's invariant 3).
                self.settle(&mut track, counts);
                track.apply_settled();
                track.open_gate();
                if track.disorder {
                    track.confirmed = track.progress.clone();
                }
                if !track.confirmed.ahead.is_empty() {
                    track.confirmed.catch_up(self.cursor_limit());
                }
                track.dirty = true;
            }
            Err(RunError::Interrupted(_)) => {
                // What was handed over is confirmed if the outputs take it
                // promptly; else it is left for the next run (the process
                // ends right after: a flush cut short here is never
                // followed by another write).
                for route in &mut self.routes {
                    match tokio::time::timeout(GRACE, route.confirm_all()).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
            }
            _ => {}
        }
        // Whatever ended the export, what the destinations confirmed is
        // kept; nothing else.
        self.settle(&mut track, counts);
        self.commit(app, &mut track, true)?;
        track.apply_settled();
        self.cursors.cursors.insert(app, track.confirmed);
        self.drain().await?;
        result
    }

    async fn pages(
        &mut self,
        app: App,
        start: &Cursor,
        mut rx: mpsc::Receiver<Fetched>,
        track: &mut Track,
        counts: &mut Counts,
    ) -> Result<AppEnd, RunError> {
        let mut end = AppEnd::CaughtUp;
        let mut frame = Vec::with_capacity(4096);
        let mut future = 0u64;
        // An API paged by position, resumed inside a page: the logs of it
        // delivered before are passed over.
        let mut skip = if app.positional() && start.position.is_some() {
            start.skip
        } else {
            0
        };
        loop {
            let page = tokio::select! {
                p = rx.recv() => p,
                sig = stop_signal(&mut self.stop) => return Err(RunError::Interrupted(sig)),
            };
            let page = match page {
                None => break,
                Some(Fetched::Page(p)) => p,
                Some(Fetched::Failed(SourceError::NoProgress(why))) => {
                    return Ok(AppEnd::Stalled(why));
                }
                Some(Fetched::Failed(e)) => return Err(e.into()),
                Some(Fetched::Stalled(why)) => return Ok(AppEnd::Stalled(why)),
            };
            counts.pages += 1;
            track.named_next = page.next.is_some();
            if page.malformed > 0 {
                warn!(
                    "{app}: skipped {} entries of a page that were not log objects",
                    page.malformed
                );
            }
            if page.lossy {
                warn!("{app}: a page held bytes that are not UTF-8; they were replaced by U+FFFD");
            }
            if page.repaired > 0 {
                warn!(
                    "{app}: a page held {} values JSON cannot carry (lone surrogate escapes, numbers out of range); they were replaced (U+FFFD, or the number's text as a string)",
                    page.repaired
                );
            }
            let stamp = Stamp::now();
            // The same content as a page met before in this run: records
            // with an id are passed over one by one; the page counts as
            // nothing new (ledger's invariants 1 and 2).
            let repeated = track.ledger.begin_page(&page.events) == PageIs::Repeated;
            if repeated {
                warn!(
                    "{app}: the API answered a page with the same content as one this run already read ({} records)",
                    page.events.len()
                );
            } else if !track.disorder
                && !app.positional()
                && runs_backwards(&page.events, start, track.newest, self.cursor_limit())
            {
                // Decided before any record of the page is handled: the
                // page's newest record must not move the cursor past its
                // older ones (ledger's invariant 3).
                track.hold();
                warn!(
                    "{app}: the API sent logs out of time order (newest first?); the cursor stays where it was until the run has read the whole answer, and the logs delivered meanwhile are remembered by key"
                );
            } else if track.newest.is_some() && !page.events.is_empty() {
                // A page after the first, in time order after it.
                track.open_gate();
            }
            let events = &page.events[..];
            for (n, ev) in events.iter().enumerate() {
                if skip > 0 {
                    skip -= 1;
                    counts.skipped += 1;
                    track.ledger.meet_unkeyed();
                    continue;
                }
                if self.capped() {
                    end = AppEnd::Capped;
                    break;
                }
                if let Some(sig) = self.stopped() {
                    return Err(RunError::Interrupted(Interrupted(sig)));
                }
                // An API paged by position: the position moves past this
                // log of the page once it is confirmed.
                let step = if let Some(url) = page.url.as_ref().filter(|_| app.positional()) {
                    track.ledger.meet_unkeyed();
                    Step::Position(url.clone(), n as u64 + 1, ev.time)
                } else {
                    let key = ev.key();
                    // A record met before in this run is passed over; one
                    // without an id never is (two identical events are two).
                    if ev.id().is_some() {
                        if !track.ledger.meet(n, ev.cursor_time) {
                            counts.skipped += 1;
                            continue;
                        }
                    } else {
                        track.ledger.meet_unkeyed();
                    }
                    // Too recent: the API may still add logs of that time.
                    // Neither delivered nor passed by the cursor. (A log dated
                    // beyond now is not recent but wrong: it is delivered.)
                    if let (Some(h), Some(t)) = (self.horizon, ev.cursor_time)
                        && t > h
                        && t <= self.future_limit
                    {
                        counts.held += 1;
                        continue;
                    }
                    let time = match ev.cursor_time {
                        Some(t) if t > self.future_limit => {
                            future += 1;
                            if future == 1 {
                                warn!(
                                    "{app}: log {} is dated {}, later than now; it is delivered, but the cursor does not move past now",
                                    crate::report::printable(&key),
                                    crate::event::api_timestamp(t)
                                );
                            }
                            None
                        }
                        // Past what the clocks allow (one of them is wrong):
                        // delivered and remembered, the cursor stays.
                        Some(t) if t > self.ceiling => None,
                        t => t,
                    };
                    match time {
                        Some(t) => {
                            if start.delivered(Some(t), &key) {
                                counts.skipped += 1;
                                continue;
                            }
                            let second = t.trunc_subsecs(0);
                            if track.newest.is_some_and(|n| second < n) && !track.disorder {
                                track.hold();
                                warn!(
                                    "{app}: the API sent logs out of time order; the cursor moves past them only when the run has caught up"
                                );
                            }
                            track.newest = track.newest.max(Some(second));
                            let key = crate::state::cursor::Key::new(&key);
                            if track.disorder {
                                track.progress.advance_shared(t, &key);
                                Step::Ahead(t, key)
                            } else {
                                Step::Advance(t, key)
                            }
                        }
                        None => {
                            if start.delivered(None, &key) {
                                counts.skipped += 1;
                                continue;
                            }
                            if ev.cursor_time.is_none() {
                                debug!(
                                    "{app}: log {} has no valid {}; delivered, and remembered by key",
                                    crate::report::printable(&key),
                                    self.source.time_words()
                                );
                            }
                            Step::Remember(key.into_owned())
                        }
                    }
                };
                let delivered = self.filter.accepts(ev);
                if delivered {
                    if self.pacer.is_pacing()
                        && let Some(wait) = self.pacer.before_event(Instant::now())
                    {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            sig = stop_signal(&mut self.stop) => return Err(RunError::Interrupted(sig)),
                        }
                    }
                    let mut encoded: Option<&Encoder> = None;
                    for route in &mut self.routes {
                        // Destinations with the same encoding share the frame.
                        if encoded != Some(&route.encoder) {
                            frame.clear();
                            route.encoder.encode(ev, &stamp, &mut frame);
                        }
                        // Not cancelled by a signal: a frame cut in the
                        // middle would reach the receiver garbled. Each
                        // write is bounded by --send-timeout.
                        route.send(&frame).await?;
                        encoded = Some(&route.encoder);
                    }
                    self.exported += 1;
                } else {
                    counts.filtered += 1;
                }
                if track.disorder
                    && let Step::Remember(_) = step
                {
                    track.progress.apply(&step);
                }
                track.pending_delivered += u64::from(delivered);
                track.pending.push_back(Pending {
                    at: self.routes.first().map_or(0, |r| r.sent),
                    step,
                    delivered,
                });
                // A batch is ready: confirm it, so that the cursor can
                // move inside the page.
                let timed = self.pacer.is_pacing();
                if self.routes.iter().any(|r| r.batch_ready(timed)) {
                    self.flush_routes().await?;
                }
                self.settle(track, counts);
                // Each confirmation is written as soon as the writer is
                // free (ledger's invariant 4).
                if track.dirty && self.writer.as_ref().is_some_and(StateWriter::idle) {
                    self.commit(app, track, false)?;
                }
            }
            // Only the page resumed from is skipped into.
            skip = 0;
            if future > 1 {
                warn!(
                    "{app}: {future} logs were dated later than now; the cursor did not move past now"
                );
                future = 0;
            }
            // The page is handled whole: the API's position moves past it
            // once everything sent so far is confirmed.
            if end != AppEnd::Capped
                && app.positional()
                && let Some(position) = page.position.as_deref()
            {
                track.pending.push_back(Pending {
                    at: self.routes.first().map_or(0, |r| r.sent),
                    step: Step::Position(position.into(), 0, None),
                    delivered: false,
                });
            }
            self.flush_routes().await?;
            self.settle(track, counts);
            if track.dirty && self.writer.as_ref().is_some_and(StateWriter::idle) {
                self.commit(app, track, false)?;
            }
            if let Some(pb) = &self.progress {
                pb.set_position(self.exported);
                if let Some(t) = track.newest.or(start.timestamp) {
                    let lag = (Utc::now() - t).num_seconds();
                    pb.set_message(format!(
                        "{app}: {}",
                        crate::commands::status::lag_words(lag)
                    ));
                }
            }
            if end == AppEnd::Capped {
                break;
            }
            if let Some(why) = track.ledger.end_page() {
                return Ok(AppEnd::Stalled(why));
            }
        }
        Ok(end)
    }

    /// The latest time a log may have and still move the cursor: later
    /// ones are held (`--settle`) or remembered by key.
    fn cursor_limit(&self) -> DateTime<Utc> {
        self.horizon.map_or(self.ceiling, |h| h.min(self.ceiling))
    }

    /// Confirms what every destination was given (never cut short by a
    /// signal, for the same reason as a send).
    async fn flush_routes(&mut self) -> Result<(), RunError> {
        for route in &mut self.routes {
            route.flush().await?;
        }
        Ok(())
    }

    /// Waits until every destination has confirmed all it was given.
    async fn confirm_routes(&mut self) -> Result<(), RunError> {
        for route in &mut self.routes {
            route.confirm_all().await?;
        }
        Ok(())
    }

    /// Counts as confirmed every handled log that all destinations have
    /// confirmed, and those delivered; the confirmed cursor moves over them
    /// in batches ([`Track::apply_settled`]).
    fn settle(&self, track: &mut Track, counts: &mut Counts) {
        let confirmed = self.routes.iter().map(|r| r.confirmed).min().unwrap_or(0);
        if track.pending.back().is_some_and(|p| p.at <= confirmed) {
            // Everything handled is confirmed.
            counts.exported += track.pending_delivered;
            track.pending_delivered = 0;
            track.dirty |= track.settled < track.pending.len();
            track.settled = track.pending.len();
        } else {
            while let Some(p) = track.pending.get(track.settled)
                && p.at <= confirmed
            {
                if p.delivered {
                    counts.exported += 1;
                    track.pending_delivered -= 1;
                }
                track.settled += 1;
                track.dirty = true;
            }
        }
        if track.settled >= SETTLED_BATCH {
            track.apply_settled();
        }
    }

    /// Hands the confirmed cursor to the state writer, if it moved (the
    /// writer spaces its writes: see [`crate::state::writer::SPACING`]).
    ///
    /// Making the file's bytes is the export's own work: a large cursor
    /// (many logs of one second) is made at most a fifth of the time, so
    /// that its cost never grows with the square of the logs. `last`: the
    /// export's end, made whatever it costs.
    fn commit(&mut self, app: App, track: &mut Track, last: bool) -> Result<(), StateError> {
        if !track.dirty || !last && track.commit_after.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        track.apply_settled();
        track.dirty = false;
        if !track.ahead_full && track.confirmed.ahead.len() >= crate::state::cursor::AHEAD_MAX {
            track.ahead_full = true;
            warn!(
                "{app}: more than {} logs were delivered ahead of the cursor (the API answers out of time order); the oldest are forgotten, and a run that does not read the whole answer may send those again",
                crate::state::cursor::AHEAD_MAX
            );
        }
        // A dry run keeps its cursor in memory (`export_app` stores it).
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        // On this thread's CPU time: a busy machine that preempts the
        // thread must not stretch the pause (the cursor would lag).
        let started = crate::state::writer::thread_cpu();
        let bytes = self.cursors.to_bytes_with(Some((app, &track.confirmed)));
        let took = crate::state::writer::thread_cpu().saturating_sub(started);
        track.commit_after =
            (took > std::time::Duration::from_micros(500)).then(|| Instant::now() + took * 4);
        writer.submit(bytes)?;
        debug!(
            "{app}: cursor at {} ({} ids)",
            track
                .confirmed
                .timestamp
                .map(crate::event::api_timestamp)
                .unwrap_or_default(),
            track.confirmed.ids.len()
        );
        Ok(())
    }

    /// Waits until the cursor file holds everything committed.
    async fn drain(&mut self) -> Result<(), StateError> {
        match &mut self.writer {
            Some(w) => w.wait().await,
            None => Ok(()),
        }
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

/// What the fetch task hands to the export.
enum Fetched {
    Page(Page),
    Failed(SourceError),
    /// The stream goes nowhere (why).
    Stalled(String),
}

/// Follows each page's next request from `req`, sending each page; stops
/// on the last page, an empty page, a request made before (the stream
/// ends: ledger's invariant 2), an error, or when the receiver is gone.
async fn fetch_pages(
    source: Source,
    app: App,
    mut req: Request,
    one_request: bool,
    tx: mpsc::Sender<Fetched>,
) {
    let mut requests = Requests::default();
    requests.first_time(source.wire(&req));
    loop {
        let page = match source.fetch(app, &req).await {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Fetched::Failed(e)).await;
                return;
            }
        };
        let empty = page.events.is_empty() && page.malformed == 0;
        let next = page.next.clone();
        if tx.send(Fetched::Page(page)).await.is_err() || empty || one_request {
            return;
        }
        match next {
            None => return,
            Some(n) if !requests.first_time(source.wire(&n)) => {
                let _ = tx
                    .send(Fetched::Stalled(format!(
                        "the API led back to a request this run already made ({} {n})",
                        n.what()
                    )))
                    .await;
                return;
            }
            Some(n) => req = n,
        }
    }
}

/// Whether a page runs backwards in time: a record older than one handled
/// before it (by second), among those that may move the cursor (newer than
/// the cursor it started from, not later than `limit`).
fn runs_backwards(
    events: &[crate::event::Event],
    start: &Cursor,
    mut newest: Option<DateTime<Utc>>,
    limit: DateTime<Utc>,
) -> bool {
    for t in events.iter().filter_map(|e| e.cursor_time) {
        let second = t.trunc_subsecs(0);
        if t > limit || start.timestamp.is_some_and(|ts| second < ts) {
            continue;
        }
        if newest.is_some_and(|n| second < n) {
            return true;
        }
        newest = newest.max(Some(second));
    }
    false
}
