//! Opening the files the agent writes (its lock, its log, the FILE
//! output) without being led elsewhere: a symbolic link planted where such
//! a file belongs would otherwise make a root-run agent truncate or create
//! files anywhere. Paths are opened with `O_NOFOLLOW`; where a link is
//! expected (`/dev/stdout` is one), only a link to a device or a FIFO is
//! followed, never one to a regular file or to nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What may stand at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file only (state files).
    Regular,
    /// A regular file, or a device or FIFO, also through a link
    /// (`/dev/stdout`, `/dev/null`, a named pipe); any link under `/dev`.
    RegularOrStream,
}

/// Opens `path` for writing: appending (created with `mode` if missing) or
/// read-write without truncating (`append` false). Never waits for a FIFO
/// reader: a FIFO nobody reads is an error.
pub fn open_write(path: &Path, append: bool, mode: u32, kind: Kind) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    if append {
        opts.append(true);
    } else {
        opts.read(true).write(true);
    }
    opts.create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let target = std::fs::metadata(path).ok();
            let stream = target
                .as_ref()
                .map(|m| m.file_type())
                .is_some_and(|t| t.is_char_device() || t.is_fifo() || t.is_block_device());
            // Links under /dev (root's: /dev/stdout -> /proc/self/fd/1)
            // lead where the system says, whatever they point at.
            let system = path.starts_with("/dev/");
            if kind == Kind::Regular || !(stream || system && target.is_some()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link; refusing to follow it (replace it with the file itself)",
                ));
            }
            // A link to a device or FIFO: followed, never created.
            let mut opts = OpenOptions::new();
            if append {
                opts.append(true);
            } else {
                opts.read(true).write(true);
            }
            opts.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .map_err(fifo_error)?
        }
        Err(e) => return Err(fifo_error(e)),
    };
    let meta = file.metadata()?;
    let t = meta.file_type();
    let ok = match kind {
        Kind::Regular => t.is_file(),
        Kind::RegularOrStream => {
            t.is_file() || t.is_char_device() || t.is_fifo() || t.is_block_device()
        }
    };
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    // A regular file blocks as usual from here on; a FIFO or device stays
    // non-blocking, for [`DeadlineWriter`].
    if t.is_file() {
        set_blocking(&file)?;
    }
    Ok(file)
}

/// The error of a write that made no progress for `deadline`
/// (`--send-timeout`): a receiver or reader that stopped taking data.
pub fn no_progress(deadline: std::time::Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the receiver took nothing for {} s (--send-timeout)",
            deadline.as_secs()
        ),
    )
}

/// Writes to a file; when it is a FIFO or device opened non-blocking, a
/// write that can make no progress for `deadline` (a reader that stopped
/// reading) fails with `TimedOut` instead of hanging the run.
#[derive(Debug)]
pub struct DeadlineWriter {
    pub file: File,
    pub deadline: std::time::Duration,
}

impl io::Write for DeadlineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let started = std::time::Instant::now();
        loop {
            match self.file.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = self.deadline.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(no_progress(self.deadline));
                    }
                    let mut p = libc::pollfd {
                        fd: self.file.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    let ms = left.as_millis().min(i32::MAX as u128) as i32;
                    // SAFETY: one pollfd of a descriptor this writer owns.
                    unsafe { libc::poll(&mut p, 1, ms.max(1)) };
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn fifo_error(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ENXIO) {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "is a FIFO that nobody reads (start its reader first)",
        )
    } else {
        e
    }
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_only_to_devices() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_write(&link, true, 0o640, Kind::RegularOrStream).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(open_write(&dangling, true, 0o640, Kind::RegularOrStream).is_err());
        assert!(!dir.path().join("nowhere").exists());
        let null = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        assert!(open_write(&null, true, 0o640, Kind::RegularOrStream).is_ok());
        assert!(open_write(&null, true, 0o640, Kind::Regular).is_err());
        assert!(open_write(Path::new("/dev/null"), true, 0o640, Kind::RegularOrStream).is_ok());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "x");
    }

    #[test]
    fn a_fifo_without_reader_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_write(&p, true, 0o640, Kind::RegularOrStream).unwrap_err();
        assert!(e.to_string().contains("nobody reads"), "{e}");
    }
}
