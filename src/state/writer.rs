//! Writes the cursor file in the background, so that the export does not
//! wait for the disk each time a batch is confirmed. At most one write is
//! in flight; a cursor handed over while one is being written replaces any
//! other waiting one, so the file always moves to the newest confirmed
//! position.
//!
//! Each write leaves a whole file under the name whatever moment kills the
//! process: between the synced writes, the previous version's twin
//! ([`twin`]) is overwritten in place and swapped with the file in one
//! `renameat2(RENAME_EXCHANGE)` (about 20 µs of CPU here, where a new file
//! renamed over the old cost 100 to 300 µs: ext4 allocates, flushes and
//! frees the blocks of each new file); where the file system cannot swap,
//! a new file is renamed over the old. After a power loss between syncs the
//! file may hold an older version, or, overwritten in place, be cut: then
//! [`super::cursor::CursorFile::load`] reads the twin, the version before.
//! Writes follow each other at most
//! every [`SPACING`] (more when the file is large: the writer never spends
//! more than a tenth of its time on the CPU writing; time it waits for the
//! disk costs nothing and does not count), and reach the disk (fsync of
//! the file and its directory) at most every [`SYNC_EVERY`] and at the end
//! ([`StateWriter::wait`]). So a killed process repeats at most what was
//! in flight and confirmed in the last spacing; a machine that loses power
//! at most a second more.

use super::{StateError, open_no_follow, sync_parent, write_atomic, write_renamed};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The shortest time between two writes of the cursor file. Measured
/// side by side (README, "Delivery"): a write per confirmation without it
/// cost more CPU than the export at full speed over RELP.
pub const SPACING: Duration = Duration::from_millis(2);

/// The longest pause a large file's writes get (see the module's text).
const MAX_SPACING: Duration = Duration::from_millis(250);

/// How often a write is synced to disk.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Shared {
    /// The newest bytes not yet written, with their sequence number.
    pending: Option<(u64, Vec<u8>)>,
    /// A write is in progress.
    busy: bool,
    /// The first write that failed (later ones are not tried).
    error: Option<StateError>,
    /// The newest bytes, when they were swapped in unsynced (perhaps
    /// padded): [`StateWriter::wait`] writes them whole and synced.
    unsynced: Option<Vec<u8>>,
    closed: bool,
}

pub struct StateWriter {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    /// Nothing is being written, waiting, or pausing: read for every
    /// confirmation, without the lock.
    free: Arc<AtomicBool>,
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
        let free = Arc::new(AtomicBool::new(true));
        let (tx, done) = watch::channel(0u64);
        let s = shared.clone();
        let f = free.clone();
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || write_loop(&p, &s, &f, &tx))
            .ok();
        StateWriter {
            shared,
            free,
            done,
            submitted: 0,
            thread,
            path,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing is being written or waiting to be, and the last write's
    /// pause is over: a new cursor handed over now is written at once.
    pub fn idle(&self) -> bool {
        self.free.load(Ordering::Acquire)
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
            self.free.store(false, Ordering::Release);
        }
        self.submitted = seq;
        self.shared.1.notify_one();
        Ok(())
    }

    /// Waits until everything handed over is written, and the file and its
    /// directory synced (so the last rename survives a power loss); returns
    /// the error of a write that failed.
    pub async fn wait(&mut self) -> Result<(), StateError> {
        let target = self.submitted;
        let _ = self.done.wait_for(|d| *d >= target).await;
        if let Some(e) = self.lock().error.take() {
            return Err(e);
        }
        if self.thread.is_none() || target == 0 {
            return Ok(()); // written (and synced) by `submit`, or nothing
        }
        // Nothing is pending (everything handed over is written): the
        // writer thread writes nothing until the next `submit`.
        let last = self.lock().unsynced.take();
        let path = self.path.clone();
        let finish = move || match &last {
            // The file as made, without padding, and on disk.
            Some(bytes) => write_atomic(&path, bytes),
            None => sync_file(&path),
        };
        match tokio::task::spawn_blocking(finish).await {
            Ok(r) => r,
            Err(_) => sync_file(&self.path),
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

/// The twin of the cursor file at `path`: `.export_log.state.prev` beside
/// `export_log.state`, the previous version.
pub fn twin(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.prev"))
}

/// Writes `bytes` into the twin of `path` in place (padded with spaces to
/// its length, so that its blocks are reused, not reallocated) and swaps
/// the two names. `Ok(false)`: the file system cannot swap (or `path` is
/// not there yet); nothing was changed under `path`.
fn write_swapped(path: &Path, bytes: &[u8]) -> Result<bool, StateError> {
    use std::os::unix::ffi::OsStrExt;
    let other = twin(path);
    let file =
        open_no_follow(&other, false).map_err(|e| StateError::io(&other, "cannot open", e))?;
    let len = file
        .metadata()
        .map_err(|e| StateError::io(&other, "cannot read", e))?
        .len() as usize;
    let padded;
    let data = if bytes.len() < len {
        // JSON may end in any whitespace: the spaces go before the last
        // line break.
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(bytes.strip_suffix(b"\n").unwrap_or(bytes));
        v.resize(len - 1, b' ');
        v.push(b'\n');
        padded = v;
        &padded[..]
    } else {
        bytes
    };
    file.write_all_at(data, 0)
        .map_err(|e| StateError::io(&other, "cannot write", e))?;
    drop(file);
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    let (Some(from), Some(to)) = (c(&other), c(path)) else {
        return Ok(false);
    };
    // SAFETY: two valid C strings; renameat2 only reads them.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    Ok(r == 0)
}

/// The CPU time this thread has used (not the time it waited or was
/// preempted: a busy machine must not stretch the pauses reckoned on it).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec that we own; the clock always exists on
    // Linux.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Syncs the file at `path` and its directory to disk.
fn sync_file(path: &std::path::Path) -> Result<(), StateError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StateError::io(path, "cannot sync", e))?;
    sync_parent(path)
}

fn write_loop(
    path: &std::path::Path,
    shared: &(Mutex<Shared>, Condvar),
    free: &AtomicBool,
    done: &watch::Sender<u64>,
) {
    let (lock, cv) = shared;
    let mut synced: Option<Instant> = None;
    // Cleared for good the first time the file system cannot swap.
    let mut swap = true;
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
        let started = thread_cpu();
        let sync = synced.is_none_or(|t| t.elapsed() >= SYNC_EVERY);
        let result = if sync {
            // A whole new file, synced (the twin keeps an older version).
            write_atomic(path, &bytes)
        } else if swap {
            match write_swapped(path, &bytes) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    swap = false;
                    write_renamed(path, &bytes)
                }
                Err(e) => Err(e),
            }
        } else {
            write_renamed(path, &bytes)
        };
        if sync && result.is_ok() {
            synced = Some(Instant::now());
        }
        let unsynced = (!sync && result.is_ok()).then_some(bytes);
        let took = thread_cpu().saturating_sub(started);
        let failed = result.is_err();
        {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.unsynced = unsynced;
            if let Err(e) = result {
                if s.error.is_none() {
                    s.error = Some(e);
                }
                // Nothing later may be written over the failure.
                s.pending = None;
            }
        }
        done.send_replace(seq);
        // The pause: a cursor handed over meanwhile waits, and newer ones
        // replace it. A closing writer ends it.
        let pause = SPACING.max(took * 9).min(MAX_SPACING);
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !failed {
            let until = Instant::now() + pause;
            while !s.closed
                && let Some(left) = until.checked_duration_since(Instant::now())
            {
                s = cv
                    .wait_timeout(s, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        s.busy = false;
        if s.pending.is_none() {
            free.store(true, Ordering::Release);
        }
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
        // Free again once the last write's pause is over.
        let mut waited = std::time::Duration::ZERO;
        while !w.idle() && waited < MAX_SPACING * 4 {
            tokio::time::sleep(SPACING).await;
            waited += SPACING;
        }
        assert!(w.idle());
    }

    #[tokio::test]
    async fn writes_between_syncs_swap_with_the_twin_and_leave_valid_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let mut w = StateWriter::new(path.clone());
        let big = format!("{{\"v\":\"{}\"}}\n", "x".repeat(300));
        w.submit(big.clone().into_bytes()).unwrap();
        w.wait().await.unwrap();
        for i in 0..20 {
            while !w.idle() {
                tokio::time::sleep(SPACING).await;
            }
            w.submit(format!("{{\"v\":{i}}}\n").into_bytes()).unwrap();
            w.wait().await.unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["v"], i, "{text:?}");
            // The twin holds the version before, whole.
            let before: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(twin(&path)).unwrap()).unwrap();
            assert!(before["v"].is_string() || before["v"] == i - 1, "{before}");
        }
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
