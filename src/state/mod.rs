//! State: the cursor (`export_log.state`), the lock (`export_log.lock`) and
//! the status of the last run (`last_job.status`), all in the state
//! directory. The cursor is written atomically, and only after the output
//! has accepted the events it covers.

pub mod cursor;
pub mod lock;
pub mod status;
pub mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use cursor::{Cursor, CursorFile};
pub use lock::Lock;
pub use status::Status;

pub const STATE_FILE: &str = "export_log.state";
pub const LOCK_FILE: &str = "export_log.lock";
pub const STATUS_FILE: &str = "last_job.status";

const RECOVERY: &str = "run once with -r to start over from the earliest log the API keeps, \
or with --start_date YYYY-MM-DD to restart from a date";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("{path}: {reason}; nothing was sent. To recover, {RECOVERY}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: cannot be read ({source}); fix its owner or permissions (the saved cursor is intact; nothing was sent)"
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: holds the cursor of source {file}, not of {run}; nothing was sent. Give each source its own --state-dir"
    )]
    OtherSource {
        path: PathBuf,
        file: crate::source::Vendor,
        run: crate::source::Vendor,
    },
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

impl StateError {
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> StateError {
        StateError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// The state directory and its files.
#[derive(Clone, Debug)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    /// Uses `dir`, creating it (mode 700) if missing.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StateError::io(dir, "cannot create the state directory", e))?;
        }
        if !dir.is_dir() {
            return Err(StateError::io(
                dir,
                "the state directory",
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        // Its files are never followed through a symbolic link (the lock
        // is opened without following one): a link planted there would
        // lead the cursor, or the status, anywhere.
        for name in [STATE_FILE, STATUS_FILE, LOCK_FILE] {
            let path = dir.join(name);
            if is_link(&path) {
                return Err(StateError::io(&path, "cannot open", link_refused()));
            }
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Removes temporary files (`.tmp-*`) that a run killed between a
    /// write and its rename left behind. Only with the lock held: then no
    /// other run is writing one. Returns how many went.
    pub fn remove_stray_temps(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// Removes a state file if it exists.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::io(&path, "cannot remove", e)),
        }
    }
}

/// Whether `path` is a symbolic link (to anything, or to nothing).
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The error of a state file that is a symbolic link, as the lock's.
fn link_refused() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "is a symbolic link; refusing to follow it (replace it with the file itself)",
    )
}

/// Opens a state file (the lock) for reading and writing, creating it
/// (mode 600) if missing: never through a symbolic link, and only a
/// regular file.
pub fn open_no_follow(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    crate::fsx::open_write(path, append, 0o600, crate::fsx::Kind::Regular)
}

/// Like [`write_atomic`], with the file's permission bits set to `mode`
/// (the metrics file is read by node_exporter's user: 644).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    write_atomic_with(path, bytes, Some(mode))
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves either
/// the old or the new file, whole: a temporary file in the same directory,
/// written and fsynced, renamed over the old one, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic_with(path, bytes, None)
}

/// Replaces `path` with `bytes` by a rename, syncing nothing: a process
/// killed at any moment leaves the old file or the new one, whole (the
/// kernel has both); after a power loss an older one may be back, or, on
/// a file system that does not order a rename after the data it names,
/// an empty one. The cursor is written so between the synced writes.
pub fn write_renamed(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_and_rename(path, bytes, None, false).map(drop)
}

/// Fsyncs the directory of `path` (making a rename into it durable).
pub fn sync_parent(path: &Path) -> Result<(), StateError> {
    sync_dir(parent_of(path))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn write_atomic_with(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), StateError> {
    sync_dir(write_and_rename(path, bytes, mode, true)?)
}

fn write_and_rename<'p>(
    path: &'p Path,
    bytes: &[u8],
    mode: Option<u32>,
    sync: bool,
) -> Result<&'p Path, StateError> {
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| StateError::io(path, "cannot create a temporary file beside", e))?;
    if let Some(m) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(m))
            .map_err(|e| StateError::io(path, "cannot set the mode of", e))?;
    }
    tmp.write_all(bytes)
        .and_then(|()| {
            if sync {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| StateError::io(path, "cannot write", e))?;
    tmp.persist(path)
        .map_err(|e| StateError::io(path, "cannot replace", e.error))?;
    Ok(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io(dir, "cannot sync the directory", e))
}
