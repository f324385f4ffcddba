//! `export_log.lock`: an OS file lock held for the whole run, so that two
//! runs never overlap. The kernel drops it when the process ends, however it
//! ends, so a crashed run never blocks the next one. The file holds the
//! holder's pid, and its modification time says when the lock was taken
//! (`--stale-after` reports a run that has held it too long).

use super::{LOCK_FILE, StateDir, StateError};
use std::fs::{File, TryLockError};
use std::io::Write;
use std::time::Duration;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, or returns `None` when another process holds it.
    /// The file is never followed through a symbolic link and must be a
    /// regular file.
    pub fn acquire(state: &StateDir) -> Result<Option<Lock>, StateError> {
        let path = state.path(LOCK_FILE);
        let mut file = super::open_no_follow(&path, false)
            .map_err(|e| StateError::io(&path, "cannot open", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(StateError::io(&path, "cannot lock", e)),
        }
        // The pid, for people looking at a running agent and for
        // --stale-after; writing it also stamps when the lock was taken.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Some(Lock { _file: file }))
    }

    /// The holder's pid (when the file names one) and how long ago it took
    /// the lock.
    pub fn holder(state: &StateDir) -> Option<(Option<u32>, Duration)> {
        let path = state.path(LOCK_FILE);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let age = meta.modified().ok()?.elapsed().unwrap_or_default();
        let pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        Some((pid, age))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let first = Lock::acquire(&state).unwrap();
        assert!(first.is_some());
        assert!(Lock::acquire(&state).unwrap().is_none());
        let (pid, age) = Lock::holder(&state).unwrap();
        assert_eq!(pid, Some(std::process::id()));
        assert!(age < Duration::from_secs(60));
        drop(first);
        assert!(Lock::acquire(&state).unwrap().is_some());
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let state_dir = dir.path().join("state");
        std::fs::create_dir(&state_dir).unwrap();
        // Planted after the directory was opened (which refuses it too).
        let state = StateDir::open(&state_dir).unwrap();
        std::os::unix::fs::symlink(&victim, state_dir.join(LOCK_FILE)).unwrap();
        let e = StateDir::open(&state_dir).unwrap_err().to_string();
        assert!(
            e.contains("export_log.lock: cannot open: is a symbolic link"),
            "{e}"
        );
        let e = Lock::acquire(&state).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // A FIFO in its place is refused too, without blocking.
        std::fs::remove_file(state_dir.join(LOCK_FILE)).unwrap();
        let fifo = std::ffi::CString::new(state_dir.join(LOCK_FILE).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = Lock::acquire(&state).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
