//! One export run: for each app, pages flow source -> filter -> encode ->
//! pace -> sink, and the cursor is committed after each page the sink has
//! confirmed. A fetch task reads the next page while the current one is
//! written; at most three pages are in memory, whatever the backfill.

use crate::cli::settings::{Destination, Settings};
use crate::encode::{Encoder, Stamp};
use crate::event::App;
use crate::filter::Filter;
use crate::pace::Pacer;
use crate::sink::{Sink, SinkError};
use crate::source::cloudsoc::{CloudSoc, MAX_LOOKBACK};
use crate::source::{Page, SourceError};
use crate::state::status::Counts;
use crate::state::{Cursor, CursorFile, STATE_FILE, StateDir, StateError};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::HashSet;
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
}

/// Where a run starts for one app.
pub fn start_cursor(
    settings: &Settings,
    saved: &CursorFile,
    app: App,
    now: DateTime<Utc>,
) -> Cursor {
    let earliest = now - MAX_LOOKBACK + chrono::Duration::hours(1);
    if let Some(day) = settings.start_date {
        let t = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(earliest);
        if app == App::Investigate && t < earliest {
            warn!(
                "{app}: --start_date {day} is older than the API keeps (180 days); starting at {earliest}"
            );
            return Cursor::starting_at(earliest);
        }
        return Cursor::starting_at(t);
    }
    let c = saved.cursor(app);
    match c.timestamp {
        None => Cursor::starting_at(earliest),
        Some(t) if app == App::Investigate && t < earliest => {
            warn!(
                "{app}: the cursor ({t}) is older than the API keeps (180 days); logs before {earliest} can no longer be exported"
            );
            Cursor::starting_at(earliest)
        }
        Some(_) => c,
    }
}

/// One destination of a run.
pub struct Route {
    pub sink: Sink,
    pub encoder: Encoder,
}

impl Route {
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
            routes.push(Route {
                sink,
                encoder: d.encoder.clone(),
            });
        }
        Ok(routes)
    }
}

/// A run over all selected apps.
pub struct Exporter {
    pub source: CloudSoc,
    /// Every destination: each log goes to all, and a page counts as
    /// delivered when all have accepted it.
    pub routes: Vec<Route>,
    pub filter: Filter,
    pub pacer: Pacer,
    pub state: StateDir,
    pub cursors: CursorFile,
    /// Events written so far in this run, all apps.
    pub exported: u64,
    /// 0 = no cap.
    pub max_events: u64,
    /// `--dry-run`: the cursor advances in memory only.
    pub dry_run: bool,
    /// Logs newer than this are left for the next run (`--settle`).
    pub horizon: Option<DateTime<Utc>>,
    /// A progress line on stderr (only when stderr is a terminal).
    pub progress: Option<indicatif::ProgressBar>,
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
}

impl Exporter {
    fn capped(&self) -> bool {
        self.max_events > 0 && self.exported >= self.max_events
    }

    /// Exports one app from `start`; `counts` is filled as it goes.
    pub async fn export_app(
        &mut self,
        app: App,
        start: Cursor,
        counts: &mut Counts,
    ) -> Result<AppEnd, RunError> {
        if self.capped() {
            return Ok(AppEnd::Capped);
        }
        let since = start.timestamp.unwrap_or_else(Utc::now);
        let url = self
            .source
            .first_url(app, since, &self.filter.server_params(app));
        info!(
            "{app}: exporting from {}",
            crate::event::api_timestamp(since)
        );

        let (tx, mut rx) = mpsc::channel::<Result<Page, SourceError>>(1);
        let fetcher = tokio::spawn(fetch_pages(self.source.clone(), app, url, tx));

        let mut progress = start.clone();
        let mut committed = start.clone();
        let mut disorder = false;
        let mut end = AppEnd::CaughtUp;
        let mut frame = Vec::with_capacity(4096);
        let result: Result<(), RunError> = async {
            while let Some(page) = rx.recv().await {
                let page = page?;
                counts.pages += 1;
                if page.malformed > 0 {
                    warn!("{app}: skipped {} entries of a page that were not log objects", page.malformed);
                }
                if page.lossy {
                    warn!("{app}: a page held bytes that are not UTF-8; they were replaced by U+FFFD");
                }
                let stamp = Stamp::now();
                for ev in &page.events {
                    if self.capped() {
                        end = AppEnd::Capped;
                        break;
                    }
                    let key = ev.key();
                    // Too recent: the API may still add logs of that time.
                    // Neither delivered nor passed by the cursor.
                    if let (Some(h), Some(t)) = (self.horizon, ev.time)
                        && t > h
                    {
                        counts.held += 1;
                        continue;
                    }
                    if let Some(t) = ev.time {
                        let at_progress = progress.timestamp == Some(t.trunc_subsecs(0)) && progress.ids.contains(&key);
                        if start.has_passed(t, &key) || at_progress {
                            counts.skipped += 1;
                            continue;
                        }
                        if progress.timestamp.is_some_and(|p| t.trunc_subsecs(0) < p) && !disorder {
                            disorder = true;
                            warn!("{app}: the API sent logs out of time order; the cursor will move only when the run is caught up");
                        }
                    } else {
                        debug!("{app}: log {key} has no valid {}; delivered without moving the cursor", app.time_field());
                    }
                    if self.filter.accepts(ev) {
                        frame.clear();
                        let mut encoded: Option<&Encoder> = None;
                        if let Some(wait) = self.pacer.before_event(Instant::now()) {
                            tokio::time::sleep(wait).await;
                        }
                        for route in &mut self.routes {
                            // Destinations with the same encoding share the frame.
                            if encoded != Some(&route.encoder) {
                                frame.clear();
                                route.encoder.encode(ev, &stamp, &mut frame);
                            }
                            route.sink.send(&frame).await?;
                            encoded = Some(&route.encoder);
                        }
                        self.exported += 1;
                        counts.exported += 1;
                    } else {
                        counts.filtered += 1;
                    }
                    progress.advance_over(ev);
                }
                for route in &mut self.routes {
                    route.sink.flush().await?;
                }
                if let Some(pb) = &self.progress {
                    pb.set_position(self.exported);
                    if let Some(t) = progress.timestamp {
                        let lag = (Utc::now() - t).num_seconds().max(0);
                        pb.set_message(format!(
                            "{app}: {} behind now",
                            crate::commands::status::duration_words(lag)
                        ));
                    }
                }
                if !disorder && progress != committed {
                    self.commit(app, &progress)?;
                    committed = progress.clone();
                }
                if end == AppEnd::Capped {
                    break;
                }
            }
            Ok(())
        }
        .await;
        fetcher.abort();
        result?;
        if disorder && end == AppEnd::CaughtUp && progress != committed {
            self.commit(app, &progress)?;
        }
        Ok(end)
    }

    fn commit(&mut self, app: App, cursor: &Cursor) -> Result<(), StateError> {
        self.cursors.cursors.insert(app, cursor.clone());
        if self.dry_run {
            return Ok(());
        }
        self.cursors.save(&self.state.path(STATE_FILE))?;
        debug!(
            "{app}: cursor at {} ({} ids)",
            cursor
                .timestamp
                .map(crate::event::api_timestamp)
                .unwrap_or_default(),
            cursor.ids.len()
        );
        Ok(())
    }
}

/// Follows `next_url` from `url`, sending each page; stops on the last
/// page, an empty page, a next_url seen before, an error, or when the
/// receiver is gone.
async fn fetch_pages(
    source: CloudSoc,
    app: App,
    mut url: reqwest::Url,
    tx: mpsc::Sender<Result<Page, SourceError>>,
) {
    let mut seen = HashSet::new();
    seen.insert(url.clone());
    loop {
        let page = match source.fetch(app, &url).await {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let empty = page.events.is_empty() && page.malformed == 0;
        let next = page.next.clone();
        if tx.send(Ok(page)).await.is_err() || empty {
            return;
        }
        match next {
            None => return,
            Some(n) if !seen.insert(n.clone()) => {
                warn!("{app}: the API repeated a next_url ({n}); ending this run here");
                return;
            }
            Some(n) => url = n,
        }
    }
}
