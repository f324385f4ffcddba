//! `export_log.lock`: an OS file lock held for the whole run, so that two
//! runs never overlap. The kernel drops it when the process ends, however it
//! ends, so a crashed run never blocks the next one.

use super::{LOCK_FILE, StateDir, StateError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, or returns `None` when another process holds it.
    pub fn acquire(state: &StateDir) -> Result<Option<Lock>, StateError> {
        let path = state.path(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StateError::io(&path, "cannot open", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(StateError::io(&path, "cannot lock", e)),
        }
        // The pid, for people looking at a running agent; never read back.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Some(Lock { _file: file }))
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
        drop(first);
        assert!(Lock::acquire(&state).unwrap().is_some());
    }
}
