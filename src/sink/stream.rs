//! STREAM: stdout or stderr, one record per line. Accepted means written
//! and flushed, and, when the stream is a pipe, taken out of the pipe by
//! its reader: a reader that goes away (`| head`) leaves what it never
//! read unconfirmed, so the cursor does not move past it. A write that
//! makes no progress for `--send-timeout` is an error.

use super::SinkError;
use super::StreamKind;
use std::io::Write;
use std::time::Duration;

pub struct StreamSink {
    kind: StreamKind,
    buf: Vec<u8>,
    deadline: Duration,
}

impl StreamSink {
    pub fn new(kind: StreamKind, deadline: Duration) -> StreamSink {
        StreamSink {
            kind,
            buf: Vec::with_capacity(64 * 1024),
            deadline,
        }
    }

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.buf.extend_from_slice(frame);
        if self.buf.len() >= 64 * 1024 {
            self.write_out(false).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out(true).await
    }

    /// Writes the buffer on a blocking thread (a stalled reader must not
    /// stall the run past the deadline); with `drain`, then waits until a
    /// pipe's reader has taken everything.
    async fn write_out(&mut self, drain: bool) -> Result<(), SinkError> {
        let buf = std::mem::take(&mut self.buf);
        let kind = self.kind;
        let deadline = self.deadline;
        let task = tokio::task::spawn_blocking(move || {
            let res = match kind {
                StreamKind::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf).and_then(|()| out.flush())
                }
                StreamKind::Stderr => {
                    let mut out = std::io::stderr().lock();
                    out.write_all(&buf).and_then(|()| out.flush())
                }
            };
            (buf, res)
        });
        let (mut buf, res) = match tokio::time::timeout(deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(SinkError::write(self.name(), std::io::Error::other(e))),
            Err(_) => {
                return Err(SinkError::write(
                    self.name(),
                    crate::fsx::no_progress(deadline),
                ));
            }
        };
        buf.clear();
        self.buf = buf;
        res.map_err(|e| self.error(e))?;
        if drain {
            let fd = match kind {
                StreamKind::Stdout => 1,
                StreamKind::Stderr => 2,
            };
            pipe_drained(fd, deadline)
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn error(&self, e: std::io::Error) -> SinkError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            SinkError::ReaderGone {
                target: self.name().to_string(),
            }
        } else {
            SinkError::write(self.name(), e)
        }
    }
}

/// When `fd` is a pipe: waits until its reader has taken every byte
/// written (or has gone: `BrokenPipe`). Anything else returns at once.
async fn pipe_drained(fd: i32, deadline: Duration) -> std::io::Result<()> {
    // SAFETY: fstat on a file descriptor the process owns, into a zeroed
    // struct that it fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut wait = Duration::from_micros(200);
    loop {
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } != 0 {
            return Ok(()); // cannot tell: written is what we know
        }
        if unread == 0 {
            return Ok(());
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) };
        if p.revents & libc::POLLERR != 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if started.elapsed() > deadline {
            return Err(crate::fsx::no_progress(deadline));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(20));
    }
}
