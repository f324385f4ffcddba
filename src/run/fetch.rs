//! The fetch tasks: each stream's pages are read ahead of the export, one
//! task per stream, all on the export's thread (they wait on the network;
//! parsing a page is their only work). What they read reaches the export
//! through one channel, in the order the pages arrive, each stream's own in
//! its order.
//!
//! Memory is bounded by a budget of pages shared by every stream of the
//! run ([`page_budget`]): a task takes a page's place before it asks for
//! the page and gives it back when the export has handled the page. A
//! stream whose API is fast never holds up one whose API is slow, and a
//! backfill over many streams holds no more pages than the budget.

use crate::event::App;
use crate::source::{Page, Request, Source, SourceError};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::ledger::Requests;

/// Pages in memory at once for `streams` streams in flight: for each, the
/// one being sent and the next one read meanwhile, and one more page for
/// the run (three for a single stream, as before streams ran in parallel).
pub fn page_budget(streams: usize) -> usize {
    2 * streams.max(1) + 1
}

/// What a fetch task hands to the export, with the stream's number.
pub(super) enum Fetched {
    /// A page, and its place in the budget (given back when dropped).
    Page(Page, OwnedSemaphorePermit),
    Failed(SourceError),
    /// The stream goes nowhere (why).
    Stalled(String),
    /// The API has nothing more: the last page, an empty page, or the one
    /// request of `-x`.
    Done,
}

pub(super) type Mail = (usize, Fetched);

/// Follows each page's next request from `req`, sending each page as
/// stream `id`; stops on the last page, an empty page, a request made
/// before (the stream ends: ledger's invariant 2), an error, or when the
/// export is gone.
pub(super) async fn fetch_pages(
    source: Source,
    app: App,
    mut req: Request,
    one_request: bool,
    id: usize,
    budget: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Mail>,
) {
    let mut requests = Requests::default();
    requests.first_time(source.wire(&req));
    let send = |f: Fetched| tx.send((id, f)).is_ok();
    loop {
        // The budget is never closed: an error here means the run is over.
        let Ok(place) = budget.clone().acquire_owned().await else {
            return;
        };
        let page = match source.fetch(app, &req).await {
            Ok(p) => p,
            Err(e) => {
                send(Fetched::Failed(e));
                return;
            }
        };
        let empty = page.events.is_empty() && page.malformed == 0;
        let next = page.next.clone();
        if !send(Fetched::Page(page, place)) {
            return;
        }
        if empty || one_request {
            send(Fetched::Done);
            return;
        }
        match next {
            None => {
                send(Fetched::Done);
                return;
            }
            Some(n) if !requests.first_time(source.wire(&n)) => {
                send(Fetched::Stalled(format!(
                    "the API led back to a request this run already made ({} {n})",
                    n.what()
                )));
                return;
            }
            Some(n) => req = n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::page_budget;

    #[test]
    fn the_budget_is_two_pages_per_stream_and_one_for_the_run() {
        assert_eq!(page_budget(1), 3, "a single stream: as before");
        assert_eq!(page_budget(4), 9);
        assert_eq!(page_budget(0), 3, "never less than one stream's");
    }
}
