//! One destination of a run, and the frames it has been given, flushed and
//! confirmed: the counts the cursor follows.

use crate::cli::settings::Destination;
use crate::encode::Encoder;
use crate::sink::{Sink, SinkError};
use std::time::Instant;

/// One destination of a run, with what it has been given, flushed and
/// confirmed (frames, counted from the start of the run).
pub struct Route {
    pub sink: Sink,
    pub encoder: Encoder,
    pub(super) sent: u64,
    flushed: u64,
    pub(super) confirmed: u64,
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

    pub(super) async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.sink.send(frame).await?;
        self.sent += 1;
        self.unflushed_bytes += frame.len();
        if let Some(n) = self.sink.confirmed_by_itself() {
            self.confirmed = n.min(self.sent);
        }
        Ok(())
    }

    /// Flushes: confirms what was sent but what the sink still holds.
    pub(super) async fn flush(&mut self) -> Result<(), SinkError> {
        self.sink.flush().await?;
        self.flushed = self.sent;
        self.confirmed = self.sent - self.sink.held().min(self.sent);
        self.unflushed_bytes = 0;
        self.flushed_at = Instant::now();
        Ok(())
    }

    /// Flushes and waits until everything sent is confirmed.
    pub(super) async fn confirm_all(&mut self) -> Result<(), SinkError> {
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
    pub(super) fn batch_ready(&self, timed: bool) -> bool {
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
