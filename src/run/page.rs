//! A page's course through the run, in the order of its steps: receive it
//! (the stream judges it whole), admit each record, format and send it to
//! every output, confirm batches, commit the cursor; then the page's end.
//! The rules each step applies are [`super::ledger`]'s; the steps that
//! need no output are [`super::stream`]'s.

use super::stream::Stream;
use super::{AppEnd, Exporter, Interrupted, RunError, Streams, stop_signal};
use crate::encode::{Encoder, Stamp};
use crate::event::Event;
use crate::source::Page;
use crate::state::StateError;
use crate::state::writer::StateWriter;
use std::time::Instant;
use tracing::{debug, warn};

impl Exporter {
    /// Handles a page of stream `i` of the run. Returns how the stream
    /// ended, if this page ended it.
    pub(super) async fn handle_page(
        &mut self,
        run: &mut Streams,
        i: usize,
        page: Page,
    ) -> Result<Option<AppEnd>, RunError> {
        let limits = self.limits();
        // 1. Receive.
        run.active[i].receive(&page, &limits);
        let stamp = Stamp::now();
        let mut frame = Vec::with_capacity(4096);
        let mut capped = false;
        for (n, ev) in page.events.iter().enumerate() {
            let s = &mut run.active[i];
            if s.resumed_past() {
                continue;
            }
            if self.capped() {
                capped = true;
                break;
            }
            if let Some(sig) = self.stopped() {
                return Err(RunError::Interrupted(Interrupted(sig)));
            }
            // 2. Admit.
            let Some(step) = s.admit(n, ev, page.url.as_ref(), &limits, &self.source) else {
                continue;
            };
            // 3. Format and send (unless the filters leave it out).
            let delivered = self.filter.accepts(ev);
            if delivered {
                self.send(ev, &stamp, &mut frame).await?;
            }
            let at = self.frames_sent();
            run.active[i].handed(step, delivered, at);
            // 4. Confirm a batch that is ready, so that the cursor can
            // move inside the page.
            let timed = self.pacer.is_pacing();
            if self.routes.iter().any(|r| r.batch_ready(timed)) {
                self.flush_routes().await?;
            }
            self.settle_and_commit(run, i)?;
        }
        // The page is handled whole: the API's position moves past it
        // once everything sent so far is confirmed.
        let at = self.frames_sent();
        run.active[i].page_done(&page, capped, at);
        self.flush_routes().await?;
        self.settle_and_commit(run, i)?;
        let s = &mut run.active[i];
        let exported = self.exported;
        if let Some(p) = &mut self.progress {
            p.bar.inc(exported.saturating_sub(p.shown));
            p.shown = exported;
            if let Some(lag) = super::stream::lag_of(s) {
                p.bar.set_message(format!(
                    "{}{}: {}",
                    p.label,
                    s.app,
                    crate::commands::status::lag_words(lag)
                ));
            }
        }
        if capped {
            return Ok(Some(AppEnd::Capped));
        }
        Ok(s.track.ledger.end_page().map(AppEnd::Stalled))
    }

    /// Step 3: formats `ev` for each output and sends it, at the pace of
    /// `--rate`. The frame is formatted once for outputs that share an
    /// encoding.
    async fn send(
        &mut self,
        ev: &Event,
        stamp: &Stamp,
        frame: &mut Vec<u8>,
    ) -> Result<(), RunError> {
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
            if encoded != Some(&route.encoder) {
                frame.clear();
                route.encoder.encode(ev, stamp, frame);
            }
            // Not cancelled by a signal: a frame cut in the middle would
            // reach the receiver garbled. Each write is bounded by
            // --send-timeout.
            route.send(frame).await?;
            encoded = Some(&route.encoder);
        }
        self.exported += 1;
        Ok(())
    }

    /// Frames handed to every output so far in the run.
    pub(super) fn frames_sent(&self) -> u64 {
        self.routes.first().map_or(0, |r| r.sent)
    }

    /// Frames every output has confirmed.
    pub(super) fn confirmed_frames(&self) -> u64 {
        self.routes.iter().map(|r| r.confirmed).min().unwrap_or(0)
    }

    /// Steps 4 and 5: counts what the outputs confirmed of stream `i`, and
    /// hands the cursors to the state writer as soon as it is free
    /// (ledger's invariant 4).
    fn settle_and_commit(&mut self, run: &mut Streams, i: usize) -> Result<(), StateError> {
        let confirmed = self.confirmed_frames();
        let s = &mut run.active[i];
        s.settle(confirmed);
        if s.track.dirty && self.writer.as_ref().is_some_and(StateWriter::idle) {
            self.commit(run, false)?;
        }
        Ok(())
    }

    /// Step 5: hands every stream's confirmed cursor to the state writer,
    /// if one moved (the writer spaces its writes: see
    /// [`crate::state::writer::SPACING`]). Each write holds every stream's
    /// latest confirmed cursor, so that no stream's file ever goes back.
    ///
    /// Making the file's bytes is the export's own work: a large cursor
    /// (many logs of one second) is made at most a fifth of the time, so
    /// that its cost never grows with the square of the logs. `last`: a
    /// stream's or the run's end, made whatever it costs.
    pub(super) fn commit(&mut self, run: &mut Streams, last: bool) -> Result<(), StateError> {
        let dirty = run.ended_changed || run.active.iter().any(|s| s.track.dirty);
        if !dirty || !last && run.commit_after.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        run.ended_changed = false;
        let confirmed = self.confirmed_frames();
        for s in &mut run.active {
            s.settle(confirmed);
            s.track.apply_settled();
            s.track.dirty = false;
            warn_ahead_full(s);
        }
        // A dry run keeps its cursor in memory (`end_stream` stores it).
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        // On this thread's CPU time: a busy machine that preempts the
        // thread must not stretch the pause (the cursor would lag).
        let started = crate::state::writer::thread_cpu();
        let bytes = self
            .cursors
            .to_bytes_with(run.active.iter().map(|s| (s.app, &s.track.confirmed)));
        let took = crate::state::writer::thread_cpu().saturating_sub(started);
        run.commit_after =
            (took > std::time::Duration::from_micros(500)).then(|| Instant::now() + took * 4);
        writer.submit(bytes)?;
        for s in &run.active {
            self.source
                .committed(s.app, s.track.confirmed.position.as_deref());
        }
        for s in &run.active {
            debug!(
                "{}: cursor at {} ({} ids)",
                s.app,
                s.track
                    .confirmed
                    .timestamp
                    .map(crate::event::api_timestamp)
                    .unwrap_or_default(),
                s.track.confirmed.ids.len()
            );
        }
        Ok(())
    }

    /// Waits until the cursor file holds everything committed.
    pub(super) async fn drain(&mut self) -> Result<(), StateError> {
        match &mut self.writer {
            Some(w) => w.wait().await,
            None => Ok(()),
        }
    }

    /// Confirms what every destination was given (never cut short by a
    /// signal, for the same reason as a send).
    pub(super) async fn flush_routes(&mut self) -> Result<(), RunError> {
        for route in &mut self.routes {
            route.flush().await?;
        }
        Ok(())
    }

    /// Waits until every destination has confirmed all it was given.
    pub(super) async fn confirm_routes(&mut self) -> Result<(), RunError> {
        for route in &mut self.routes {
            route.confirm_all().await?;
        }
        Ok(())
    }
}

/// Warns, once per stream, that the keys remembered ahead of its cursor
/// reached their bound.
fn warn_ahead_full(s: &mut Stream) {
    if !s.track.ahead_full && s.track.confirmed.ahead.len() >= crate::state::cursor::AHEAD_MAX {
        s.track.ahead_full = true;
        warn!(
            "{}: more than {} logs were delivered ahead of the cursor (the API answers out of time order); the oldest are forgotten, and a run that does not read the whole answer may send those again",
            s.app,
            crate::state::cursor::AHEAD_MAX
        );
    }
}
