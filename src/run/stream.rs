//! One stream of a run (an app, a data type, a shard): where its export
//! stands, and the steps a page of it goes through that need no output:
//! receive the page, admit each record, hand it on, settle what the outputs
//! confirmed. The rules these steps apply are [`super::ledger`]'s.

use super::ledger::{Ledger, PageIs};
use super::{AppEnd, RECENT_OVERLAP};
use crate::event::{App, Event};
use crate::source::{Page, Request, Source, SourceError};
use crate::state::Cursor;
use crate::state::cursor::{Key, Step};
use crate::state::status::Counts;
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::VecDeque;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// The times a record is judged by, the same for every stream of a run.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    /// Logs newer than this are left for the next run (`--settle`).
    pub horizon: Option<DateTime<Utc>>,
    /// Logs dated after this are wrong, not recent: delivered, never held.
    pub future_limit: DateTime<Utc>,
    /// The cursor never moves past this time.
    pub ceiling: DateTime<Utc>,
}

impl Limits {
    /// The latest time a log may have and still move the cursor: later
    /// ones are held (`--settle`) or remembered by key.
    pub fn cursor_limit(&self) -> DateTime<Utc> {
        self.horizon.map_or(self.ceiling, |h| h.min(self.ceiling))
    }
}

/// One stream being exported.
pub(super) struct Stream {
    /// Its number in the run (the fetch task's mail carries it).
    pub id: usize,
    pub app: App,
    /// Where the run started it.
    pub start: Cursor,
    pub track: Track,
    pub counts: Counts,
    /// An API paged by position, resumed inside a page: the logs of it
    /// delivered before are passed over.
    skip: u64,
    /// Logs of the current page dated later than now.
    future: u64,
    /// The task reading its pages ahead.
    pub fetcher: JoinHandle<()>,
}

/// Where a stream's first request starts, and the request.
pub(super) fn first_request(
    source: &Source,
    app: App,
    start: &Cursor,
    server_params: &[(&'static str, String)],
) -> Result<Request, SourceError> {
    let mut since = start.timestamp.unwrap_or_else(Utc::now);
    if !start.recent.is_empty() {
        since -= RECENT_OVERLAP;
    }
    let resume = start.position.as_deref().filter(|_| app.positional());
    let first = source.first(app, since, resume, server_params)?;
    match resume {
        Some(_) => info!("{app}: exporting from the position the last run saved"),
        None => info!(
            "{app}: exporting from {}",
            crate::event::api_timestamp(since)
        ),
    }
    Ok(first)
}

impl Stream {
    pub fn new(
        id: usize,
        app: App,
        start: Cursor,
        newest_first: bool,
        fetcher: JoinHandle<()>,
    ) -> Stream {
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
            ahead_full: false,
            ledger: Ledger::new(),
        };
        if newest_first && !app.positional() {
            // Declared: the cursor holds from the first record on.
            track.hold();
        }
        let skip = if app.positional() && start.position.is_some() {
            start.skip
        } else {
            0
        };
        Stream {
            id,
            app,
            start,
            track,
            counts: Counts::default(),
            skip,
            future: 0,
            fetcher,
        }
    }

    /// Step 1, receive a page: counts it, says what is wrong with it, and
    /// decides, before any record of it is handled, whether it shows the
    /// API out of time order (ledger's invariants 2 and 3).
    pub fn receive(&mut self, page: &Page, limits: &Limits) {
        let app = self.app;
        let track = &mut self.track;
        self.counts.pages += 1;
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
            && runs_backwards(
                &page.events,
                &self.start,
                track.newest,
                limits.cursor_limit(),
            )
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
    }

    /// Passes over a log of the page resumed inside, delivered by the run
    /// that saved the position.
    pub fn resumed_past(&mut self) -> bool {
        if self.skip == 0 {
            return false;
        }
        self.skip -= 1;
        self.counts.skipped += 1;
        self.track.ledger.meet_unkeyed();
        true
    }

    /// Step 2, admit the page's record `n`: what handing it on moves in
    /// the cursor, or `None` when it is passed over (met before, delivered
    /// by an earlier run) or held for the next run (`--settle`).
    pub fn admit(
        &mut self,
        n: usize,
        ev: &Event,
        url: Option<&std::sync::Arc<str>>,
        limits: &Limits,
        source: &Source,
    ) -> Option<Step> {
        let app = self.app;
        let track = &mut self.track;
        let counts = &mut self.counts;
        // An API paged by position: the position moves past this log of
        // the page once it is confirmed.
        if let Some(url) = url.filter(|_| app.positional()) {
            track.ledger.meet_unkeyed();
            return Some(Step::Position(url.clone(), n as u64 + 1, ev.time));
        }
        let key = ev.key();
        // A record met before in this run is passed over; one without an
        // id never is (two identical events are two).
        if ev.id().is_some() {
            if !track.ledger.meet(n, ev.cursor_time) {
                counts.skipped += 1;
                return None;
            }
        } else {
            track.ledger.meet_unkeyed();
        }
        // Too recent: the API may still add logs of that time. Neither
        // delivered nor passed by the cursor. (A log dated beyond now is
        // not recent but wrong: it is delivered.)
        if let (Some(h), Some(t)) = (limits.horizon, ev.cursor_time)
            && t > h
            && t <= limits.future_limit
        {
            counts.held += 1;
            return None;
        }
        let time = match ev.cursor_time {
            Some(t) if t > limits.future_limit => {
                self.future += 1;
                if self.future == 1 {
                    warn!(
                        "{app}: log {} is dated {}, later than now; it is delivered, but the cursor does not move past now",
                        crate::report::printable(&key),
                        crate::event::api_timestamp(t)
                    );
                }
                None
            }
            // Past what the clocks allow (one of them is wrong): delivered
            // and remembered, the cursor stays.
            Some(t) if t > limits.ceiling => None,
            t => t,
        };
        let Some(t) = time else {
            if self.start.delivered(None, &key) {
                counts.skipped += 1;
                return None;
            }
            if ev.cursor_time.is_none() {
                debug!(
                    "{app}: log {} has no valid {}; delivered, and remembered by key",
                    crate::report::printable(&key),
                    source.time_words()
                );
            }
            return Some(Step::Remember(key.into_owned()));
        };
        if self.start.delivered(Some(t), &key) {
            counts.skipped += 1;
            return None;
        }
        let second = t.trunc_subsecs(0);
        if track.newest.is_some_and(|n| second < n) && !track.disorder {
            track.hold();
            warn!(
                "{app}: the API sent logs out of time order; the cursor moves past them only when the run has caught up"
            );
        }
        track.newest = track.newest.max(Some(second));
        let key = Key::new(&key);
        Some(if track.disorder {
            track.progress.advance_shared(t, &key);
            Step::Ahead(t, key)
        } else {
            Step::Advance(t, key)
        })
    }

    /// Step 3's end: the admitted record was handed to the outputs
    /// (`delivered`) or left out by the filters; `at` is the frames every
    /// output had been given after it.
    pub fn handed(&mut self, step: Step, delivered: bool, at: u64) {
        let track = &mut self.track;
        if !delivered {
            self.counts.filtered += 1;
        }
        if track.disorder
            && let Step::Remember(_) = step
        {
            track.progress.apply(&step);
        }
        track.pending_delivered += u64::from(delivered);
        track.pending.push_back(Pending {
            at,
            step,
            delivered,
        });
    }

    /// The page was handled whole (`capped`: cut short by
    /// `--max-events`): says how many logs were dated later than now, and,
    /// for an API paged by position, moves the position past the page once
    /// everything sent so far (`at`) is confirmed.
    pub fn page_done(&mut self, page: &Page, capped: bool, at: u64) {
        let app = self.app;
        // Only the page resumed from is skipped into.
        self.skip = 0;
        if self.future > 1 {
            warn!(
                "{app}: {} logs were dated later than now; the cursor did not move past now",
                self.future
            );
        }
        self.future = 0;
        if !capped
            && app.positional()
            && let Some(position) = page.position.as_deref()
        {
            self.track.pending.push_back(Pending {
                at,
                step: Step::Position(position.into(), 0, None),
                delivered: false,
            });
        }
    }

    /// Step 4, confirm: counts as confirmed every handled log up to
    /// `confirmed` frames (what every output has confirmed), and those
    /// delivered; the confirmed cursor moves over them in batches
    /// ([`Track::apply_settled`]).
    pub fn settle(&mut self, confirmed: u64) {
        let track = &mut self.track;
        let counts = &mut self.counts;
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

    /// The stream ended (`end`), everything it was given confirmed as far
    /// as the outputs would: the confirmed cursor it leaves. Caught up,
    /// having read the whole answer, it passes what it held back (ledger's
    /// invariant 3).
    pub fn close(
        &mut self,
        end: &Result<AppEnd, super::RunError>,
        one_request: bool,
        limits: &Limits,
    ) {
        let app = self.app;
        let track = &mut self.track;
        match end {
            Ok(AppEnd::CaughtUp) if !one_request && !app.positional() && track.named_next => {
                // An empty page that still names a next one is not the
                // API's end: the cursor passes nothing it held back.
                warn!(
                    "{app}: the API answered an empty page that still names a next page; the run ends there, and the cursor keeps to what it knows was read in order"
                );
            }
            Ok(AppEnd::CaughtUp) if !one_request && !app.positional() => {
                // The whole answer was read, all of it confirmed: nothing
                // older is to come.
                track.apply_settled();
                track.open_gate();
                if track.disorder {
                    track.confirmed = track.progress.clone();
                }
                if !track.confirmed.ahead.is_empty() {
                    track.confirmed.catch_up(limits.cursor_limit());
                }
                track.dirty = true;
            }
            _ => {}
        }
        track.apply_settled();
    }

    /// The line a stream's end leaves in the log.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{}: exported {} logs ({} filtered out, {} already delivered, {} newer than --settle left for the next run) from {} pages",
            self.app, c.exported, c.filtered, c.skipped, c.held, c.pages
        )
    }
}

/// How long ago a stream's newest log is, for the progress line.
pub(super) fn lag_of(s: &Stream) -> Option<i64> {
    s.track
        .newest
        .or(s.start.timestamp)
        .map(|t| (Utc::now() - t).num_seconds())
}

/// One log handled, waiting for every destination to confirm what was sent
/// up to it.
pub(super) struct Pending {
    /// Frames sent per route when it was handled.
    at: u64,
    step: Step,
    /// It was sent (not filtered out).
    delivered: bool,
}

/// Where one app's export stands.
pub(super) struct Track {
    /// What was handed on, kept from the moment the API is seen out of
    /// time order: where the cursor goes once the run has read the whole
    /// answer.
    pub progress: Cursor,
    /// What every destination has confirmed.
    pub confirmed: Cursor,
    /// `confirmed` moved since it was last handed to the state writer.
    pub dirty: bool,
    /// Logs handed on, oldest first; the first `settled` are confirmed
    /// and not yet applied to `confirmed`.
    pub pending: VecDeque<Pending>,
    settled: usize,
    /// How many of `pending` after the first `settled` were sent (not
    /// filtered out).
    pending_delivered: u64,
    /// The API was seen out of time order: the cursor stays until the run
    /// has read the whole answer (ledger's invariant 3).
    disorder: bool,
    /// The newest second handed on that may move the cursor.
    pub newest: Option<DateTime<Utc>>,
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
    /// The keys remembered ahead reached their bound (warned once).
    pub ahead_full: bool,
    /// What this run met of the stream (ledger's invariants 1 and 2).
    pub ledger: Ledger,
}

/// Confirmed logs are applied to the confirmed cursor at least this many at
/// a time (and at each commit): a batch hashes only the keys of its newest
/// second, where one by one every key was hashed.
const SETTLED_BATCH: usize = 4096;

impl Track {
    /// The API was seen out of time order: the cursor holds (the logs
    /// handed on from now are remembered ahead), and what was handed on is
    /// tracked from here.
    pub fn hold(&mut self) {
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
    pub fn open_gate(&mut self) {
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
    pub fn apply_settled(&mut self) {
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
