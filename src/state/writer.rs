//! Writes the cursor file in the background, so that the export does not
//! wait for the disk each time a batch is confirmed. At most one write is
//! in flight; a cursor handed over while one is being written replaces any
//! other waiting one, so the file always moves to the newest confirmed
//! position, as often as the disk allows (each write is atomic: see
//! [`super::write_atomic`]).

use super::{StateError, sync_parent, write_atomic, write_atomic_unsynced};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

#[derive(Default)]
struct Shared {
    /// The newest bytes not yet written, with their sequence number.
    pending: Option<(u64, Vec<u8>)>,
    /// A write is in progress.
    busy: bool,
    /// The first write that failed (later ones are not tried).
    error: Option<StateError>,
    closed: bool,
}

pub struct StateWriter {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    /// The sequence number of the newest write done (or failed).
    done: watch::Receiver<u64>,
    submitted: u64,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl StateWriter {
    /// A writer of `path`.
    pub fn new(path: PathBuf) -> StateWriter {
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let (tx, done) = watch::channel(0u64);
        let s = shared.clone();
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || write_loop(&p, &s, &tx))
            .ok();
        StateWriter {
            shared,
            done,
            submitted: 0,
            thread,
            path,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing is being written or waiting to be: a new cursor handed over
    /// now is written at once.
    pub fn idle(&self) -> bool {
        let s = self.lock();
        !s.busy && s.pending.is_none()
    }

    /// Hands over the file's new contents. Returns the error of an earlier
    /// write, if one failed.
    pub fn submit(&mut self, bytes: Vec<u8>) -> Result<(), StateError> {
        if self.thread.is_none() {
            // No thread could be started: write here.
            return write_atomic(&self.path, &bytes);
        }
        let seq = self.submitted + 1;
        {
            let mut s = self.lock();
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            s.pending = Some((seq, bytes));
        }
        self.submitted = seq;
        self.shared.1.notify_one();
        Ok(())
    }

    /// Waits until everything handed over is written, and the directory
    /// synced (so the last rename survives a power loss); returns the error
    /// of a write that failed.
    pub async fn wait(&mut self) -> Result<(), StateError> {
        let target = self.submitted;
        let _ = self.done.wait_for(|d| *d >= target).await;
        if let Some(e) = self.lock().error.take() {
            return Err(e);
        }
        if self.thread.is_none() || target == 0 {
            return Ok(()); // written (and synced) by `submit`, or nothing
        }
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || sync_parent(&path)).await {
            Ok(r) => r,
            Err(_) => sync_parent(&self.path),
        }
    }
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.1.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    path: &std::path::Path,
    shared: &(Mutex<Shared>, Condvar),
    done: &watch::Sender<u64>,
) {
    let (lock, cv) = shared;
    loop {
        let (seq, bytes) = {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(p) = s.pending.take() {
                    s.busy = true;
                    break p;
                }
                if s.closed {
                    return;
                }
                s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        // Each write is whole and on disk; the directory is synced once,
        // by `wait` (an fsync of it per write doubled the cost).
        let result = write_atomic_unsynced(path, &bytes);
        {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.busy = false;
            if let Err(e) = result {
                if s.error.is_none() {
                    s.error = Some(e);
                }
                // Nothing later may be written over the failure.
                s.pending = None;
            }
        }
        done.send_replace(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_the_newest_and_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let mut w = StateWriter::new(path.clone());
        for i in 0..200 {
            w.submit(format!("{i}\n").into_bytes()).unwrap();
        }
        w.wait().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "199\n");
        assert!(w.idle());
    }

    #[tokio::test]
    async fn a_failed_write_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("state");
        let mut w = StateWriter::new(path);
        w.submit(b"x".to_vec()).unwrap();
        assert!(w.wait().await.is_err());
    }
}
