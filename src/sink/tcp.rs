//! REMOTE over a byte stream: TCP, TLS (RFC 5425) or a unix stream socket.
//!
//! Frames are buffered and written in large writes. A flush writes them
//! (with TLS, its own buffer too) and checks that the connection is still
//! open (a peer that has closed shows as end-of-file or a reset on a
//! non-blocking read). A flushed batch is confirmed only once the peer has
//! acknowledged its bytes (the kernel holds none of them any more, see
//! [`Conn::acknowledged`]): a receiver that stops reading closes its
//! window, and what the kernel took after that was never delivered, though
//! every write succeeded. And, acknowledged, only once the same connection
//! is still open [`HOLD`] after it was flushed, or after [`HOLD_BYTES`]
//! more were written on it: a receiver stopped with the batch unread in its
//! socket resets the connection, and the sink learns it before the batch
//! counts as delivered. Frames stay held until confirmed; when the
//! connection is lost (checked before each write too), the sink reconnects
//! with backoff and writes them all again, so a receiver may see the
//! unconfirmed ones twice but never miss one it took in. A flush does not
//! wait for the acknowledgements (the next flush finds them); the end of a
//! run does ([`TcpSink::confirm_all`]), at most `--send-timeout` without
//! any, and a connection that does not get what it was given acknowledged
//! counts as lost.

use super::conn::{self, Conn, Endpoint};
use super::tls::Tls;
use super::{SendRetry, SinkError};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How far [`TcpSink::deliver`] goes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Upto {
    /// Write what fills the buffer.
    Write,
    /// Write everything, flush it and check the connection.
    Flush,
    /// Then wait until the peer has acknowledged every byte.
    Acknowledged,
}

/// The first and the longest pause between two looks at what the peer
/// has acknowledged, while waiting for it.
const ACK_POLL_FIRST: Duration = Duration::from_millis(1);
const ACK_POLL_MAX: Duration = Duration::from_millis(50);

/// Bytes buffered before a write is made without waiting for flush.
const BUFFER: usize = 64 * 1024;

/// How long a flushed batch waits, on an open connection, before it counts
/// as confirmed: time for a receiver to read it, or for the reset of one
/// that stopped without reading it to arrive.
pub const HOLD: Duration = Duration::from_millis(100);

/// Bytes written after a flushed batch, on the same open connection, that
/// confirm it sooner than [`HOLD`] (they bound the memory held at speed).
pub const HOLD_BYTES: usize = 2 << 20;

/// Frames given to the connection in one write (or fewer, at a flush),
/// kept until they are confirmed.
struct Chunk {
    bytes: Vec<u8>,
    frames: u64,
    /// When a flush after its last frame found the connection open.
    flushed: Option<Instant>,
    /// The connection's [`Conn::written`] after that flush: the chunk is
    /// acknowledged once the peer has acknowledged this many bytes.
    end: u64,
}

pub struct TcpSink {
    endpoint: Endpoint,
    tls: Option<Tls>,
    target: String,
    conn: Option<Conn>,
    /// Frames not yet confirmed, oldest first.
    chunks: VecDeque<Chunk>,
    /// How many of `chunks` the current connection was given (whole; the
    /// rest not at all). Frames are added to the last chunk only when it
    /// was not given yet.
    written: usize,
    /// Bytes and frames in `chunks`.
    bytes: usize,
    frames: u64,
    /// Buffers of confirmed chunks, for the next ones.
    spare: Vec<Vec<u8>>,
    retry: SendRetry,
    /// Connections lost in a row: a new connection that is given frames
    /// again counts as good only once they are all confirmed, so that a
    /// receiver that takes each new connection and never reads uses up
    /// the retries (its kernel would take a little on each).
    failures: u32,
    /// Frames given again to the current connection, not yet confirmed.
    resent: u64,
}

pub fn display_target(host: &str, port: u16) -> String {
    Endpoint::Inet {
        host: host.to_string(),
        port,
    }
    .to_string()
}

impl TcpSink {
    /// Connects (retrying as `retry` allows).
    pub async fn connect(
        endpoint: Endpoint,
        tls: Option<Tls>,
        retry: SendRetry,
    ) -> Result<TcpSink, SinkError> {
        let mut sink = TcpSink {
            target: endpoint.to_string(),
            endpoint,
            tls,
            conn: None,
            chunks: VecDeque::new(),
            written: 0,
            bytes: 0,
            frames: 0,
            spare: Vec::new(),
            retry,
            failures: 0,
            resent: 0,
        };
        sink.deliver(Upto::Write).await?;
        Ok(sink)
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        if self.written >= self.chunks.len() {
            let bytes = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BUFFER + 4096));
            self.chunks.push_back(Chunk {
                bytes,
                frames: 0,
                flushed: None,
                end: 0,
            });
        }
        let chunk = self.chunks.back_mut().expect("one is being filled");
        chunk.bytes.extend_from_slice(frame);
        chunk.frames += 1;
        self.frames += 1;
        self.bytes += frame.len();
        if chunk.bytes.len() >= BUFFER {
            self.deliver(Upto::Write).await?;
        }
        Ok(())
    }

    /// How many of the frames sent are not confirmed yet (after a flush:
    /// those held, see the module's doc).
    pub fn unconfirmed(&self) -> u64 {
        self.frames
    }

    /// Writes and flushes every frame, and confirms those acknowledged and
    /// held long enough; the others stay held (see the module's doc).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.confirm(Upto::Flush).await
    }

    /// Delivers up to `upto` (at least a flush), then confirms what the
    /// peer has acknowledged and what was held long enough.
    async fn confirm(&mut self, upto: Upto) -> Result<(), SinkError> {
        if self.chunks.is_empty() && self.conn.is_none() {
            return Ok(()); // nothing to confirm, no connection to keep
        }
        self.deliver(upto).await?;
        // The connection is open now, and has taken every chunk.
        let c = self.conn.as_ref().expect("delivered");
        let end = c.written();
        let acknowledged = c
            .acknowledged()
            .map_err(|e| SinkError::write(&self.target, e))?;
        let now = Instant::now();
        for c in self.chunks.iter_mut().rev() {
            if c.flushed.is_some() {
                break;
            }
            c.flushed = Some(now);
            c.end = end;
        }
        while let Some(c) = self.chunks.front() {
            let held_enough = c.flushed.is_some_and(|t| now - t >= HOLD);
            if c.end > acknowledged || (!held_enough && self.bytes - c.bytes.len() < HOLD_BYTES) {
                break;
            }
            self.release_first();
        }
        Ok(())
    }

    /// Confirms the oldest chunk.
    fn release_first(&mut self) {
        let Some(mut c) = self.chunks.pop_front() else {
            return;
        };
        self.bytes -= c.bytes.len();
        self.frames -= c.frames;
        self.written = self.written.saturating_sub(1);
        if self.resent > 0 {
            self.resent = self.resent.saturating_sub(c.frames);
            if self.resent == 0 {
                // What the connection was given again is delivered.
                self.failures = 0;
            }
        }
        // Kept for reuse (at most what HOLD_BYTES holds): the memory of a
        // new buffer costs more than its contents.
        if self.spare.len() <= HOLD_BYTES / BUFFER && c.bytes.capacity() <= 2 * BUFFER {
            c.bytes.clear();
            self.spare.push(c.bytes);
        }
    }

    /// Flushes, waits until the peer has acknowledged every frame and
    /// confirms them all, then closes the connection (the next frame opens
    /// another). Our side is closed first: a receiver that reads to the
    /// end closes its own, which confirms everything at once; one stopped
    /// with frames unread resets the connection, and they are sent again
    /// on a new one (then held as by [`TcpSink::flush`], in case the
    /// receiver resets whatever it read); one that does neither within
    /// [`HOLD`] has kept the connection open that long, as a flush asks.
    /// A receiver that acknowledges nothing for `--send-timeout` (it does
    /// not read) loses the connection, as a write that long would.
    pub async fn confirm_all(&mut self) -> Result<(), SinkError> {
        let mut close_first = true;
        loop {
            self.confirm(Upto::Acknowledged).await?;
            if self.chunks.is_empty() {
                return Ok(());
            }
            if !close_first {
                let t = self.chunks.front().and_then(|c| c.flushed);
                tokio::time::sleep_until((t.unwrap_or_else(Instant::now) + HOLD).into()).await;
                continue;
            }
            close_first = false;
            let Some(mut conn) = self.conn.take() else {
                continue;
            };
            match closed_by_peer(&mut conn, &self.target, self.retry.timeout).await {
                Ok(()) => {
                    while !self.chunks.is_empty() {
                        self.release_first();
                    }
                    self.written = 0;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!("{e}; sending again what it was not seen to read");
                    self.written = 0;
                    self.resent = self.frames;
                    for c in &mut self.chunks {
                        c.flushed = None;
                    }
                }
            }
        }
    }

    /// Writes what the connection has not been given yet (and, as `upto`
    /// asks, flushes and checks the connection, and waits for the peer's
    /// acknowledgement), reconnecting and starting over from the first
    /// unconfirmed frame when it fails.
    async fn deliver(&mut self, upto: Upto) -> Result<(), SinkError> {
        loop {
            let result = self.try_deliver(upto).await;
            let Err(e) = result else {
                if self.resent == 0 {
                    self.failures = 0;
                }
                return Ok(());
            };
            // The connection may have lost anything it was given; what it
            // held is held again on the next one.
            self.conn = None;
            self.written = 0;
            self.resent = self.frames;
            for c in &mut self.chunks {
                c.flushed = None;
            }
            if matches!(e, SinkError::Tls { .. }) {
                return Err(e);
            }
            self.retry
                .back_off(self.failures, e, "reconnecting")
                .await?;
            self.failures += 1;
        }
    }

    async fn try_deliver(&mut self, upto: Upto) -> Result<(), SinkError> {
        if let Some(c) = &mut self.conn {
            check_open(c, &self.target)?;
        } else {
            self.conn = Some(conn::connect(&self.endpoint, self.tls.as_ref()).await?);
        }
        let c = self.conn.as_mut().expect("connected above");
        let deadline = self.retry.timeout;
        while let Some(chunk) = self.chunks.get(self.written) {
            super::with_deadline(deadline, c.write_all(&chunk.bytes))
                .await
                .map_err(|e| SinkError::write(&self.target, e))?;
            self.written += 1;
        }
        if upto >= Upto::Flush {
            super::with_deadline(deadline, c.flush())
                .await
                .map_err(|e| SinkError::write(&self.target, e))?;
            check_open(c, &self.target)?;
        }
        if upto >= Upto::Acknowledged {
            acknowledged(c, &self.target, deadline).await?;
        }
        Ok(())
    }
}

/// Waits until the peer has acknowledged every byte written to `c`,
/// looking at it after a pause that doubles from [`ACK_POLL_FIRST`] to
/// [`ACK_POLL_MAX`]; fails when the peer closes or resets the connection,
/// or acknowledges nothing for `timeout`.
async fn acknowledged(c: &mut Conn, target: &str, timeout: Duration) -> Result<(), SinkError> {
    let asked = |c: &Conn| c.acknowledged().map_err(|e| SinkError::write(target, e));
    let mut done = asked(c)?;
    let mut progress = Instant::now();
    let mut pause = ACK_POLL_FIRST;
    while done < c.written() {
        check_open(c, target)?;
        if progress.elapsed() >= timeout {
            return Err(SinkError::write(target, unacknowledged(timeout)));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ACK_POLL_MAX);
        let now = asked(c)?;
        if now > done {
            done = now;
            progress = Instant::now();
        }
    }
    Ok(())
}

/// The error of a peer that acknowledged nothing for `timeout`.
fn unacknowledged(timeout: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the receiver acknowledged none of what it was sent for {} s (--send-timeout): it does not read, or cannot be reached",
            timeout.as_secs()
        ),
    )
}

/// Closes our side of `c` and waits for the peer: `Ok` when it closes its
/// own (it read everything) or keeps the connection open for [`HOLD`],
/// an error when it resets it.
async fn closed_by_peer(c: &mut Conn, target: &str, timeout: Duration) -> Result<(), SinkError> {
    use tokio::io::AsyncReadExt;
    super::with_deadline(timeout, c.shutdown())
        .await
        .map_err(|e| SinkError::write(target, e))?;
    let until = tokio::time::Instant::now() + HOLD;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(until, c.read(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => return Ok(()),
            // A TLS peer that closes without its close_notify (as rsyslog
            // does) has still closed, not reset.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            // Syslog receivers do not talk back; anything read is ignored.
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(SinkError::write(target, e)),
        }
    }
}

/// Fails if the peer has closed its side (or reset the connection).
fn check_open(c: &mut Conn, target: &str) -> Result<(), SinkError> {
    let mut probe = [0u8; 512];
    loop {
        match c.poll_now(&mut probe) {
            Ok(Some(0)) => {
                return Err(SinkError::Closed {
                    target: target.to_string(),
                });
            }
            // Syslog receivers do not talk back; anything read is ignored.
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(()),
            Err(e) => return Err(SinkError::write(target, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// Runs a test's body, failing it if it has not ended in 30 s (a sink
    /// that does not do what is expected may leave a peer waiting).
    async fn bounded(body: impl std::future::Future<Output = ()>) {
        tokio::time::timeout(Duration::from_secs(30), body)
            .await
            .expect("the test ended in time");
    }

    async fn sink_and_listener() -> (TcpSink, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = Endpoint::Inet {
            host: "127.0.0.1".into(),
            port,
        };
        let retry = SendRetry {
            retries: 3,
            base: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
        };
        let sink = TcpSink::connect(endpoint, None, retry).await.unwrap();
        (sink, listener)
    }

    /// Reads from `c` until `want` bytes came.
    async fn read_n(c: &mut tokio::net::TcpStream, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < want {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn a_batch_the_receiver_drops_unread_is_sent_again() {
        bounded(async {
            let (mut sink, listener) = sink_and_listener().await;
            let (first, _) = listener.accept().await.unwrap();
            sink.send(b"one\n").await.unwrap();
            sink.send(b"two\n").await.unwrap();
            sink.flush().await.unwrap();
            // Flushed on an open connection, but not yet confirmed.
            assert_eq!(sink.unconfirmed(), 2);
            // The receiver stops with the batch unread: its close resets.
            let mut peek = [0u8; 8];
            first.peek(&mut peek).await.unwrap();
            drop(first);
            let again = tokio::spawn(async move {
                let (mut second, _) = listener.accept().await.unwrap();
                // Kept open (in the task's result) while the sink holds.
                (read_n(&mut second, 8).await, second)
            });
            sink.confirm_all().await.unwrap();
            assert_eq!(sink.unconfirmed(), 0);
            assert_eq!(again.await.unwrap().0, b"one\ntwo\n");
        })
        .await;
    }

    #[tokio::test]
    async fn a_batch_is_held_until_the_receiver_has_read_it() {
        bounded(async {
            let (mut sink, listener) = sink_and_listener().await;
            let (mut peer, _) = listener.accept().await.unwrap();
            sink.send(b"one\n").await.unwrap();
            sink.flush().await.unwrap();
            sink.send(b"two\n").await.unwrap();
            sink.flush().await.unwrap();
            assert_eq!(sink.unconfirmed(), 2, "held");
            // A receiver that reads to the end and then closes, as rsyslog does.
            let reader = tokio::spawn(async move {
                let mut all = Vec::new();
                peer.read_to_end(&mut all).await.unwrap();
                all
            });
            sink.confirm_all().await.unwrap();
            assert_eq!(sink.unconfirmed(), 0);
            // Our side was closed after the frames: the receiver saw the end.
            assert_eq!(reader.await.unwrap(), b"one\ntwo\n");
            // The next frame goes on a new connection, once.
            sink.send(b"three\n").await.unwrap();
            let reader = tokio::spawn(async move {
                let (mut next, _) = listener.accept().await.unwrap();
                let mut all = Vec::new();
                next.read_to_end(&mut all).await.unwrap();
                all
            });
            sink.confirm_all().await.unwrap();
            assert_eq!(reader.await.unwrap(), b"three\n");
        })
        .await;
    }

    #[tokio::test]
    async fn a_reset_after_our_close_sends_everything_again() {
        bounded(async {
            let (mut sink, listener) = sink_and_listener().await;
            sink.send(b"one\n").await.unwrap();
            sink.flush().await.unwrap();
            // A receiver that answers our close with a reset (as one stopped
            // with frames unread does): what it had is sent again, on a new
            // connection, and confirmed by the hold there.
            let peer = tokio::spawn(async move {
                let (mut first, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                first.read_to_end(&mut got).await.unwrap();
                #[allow(deprecated)] // set_linger: wanted here, for the reset
                first.set_linger(Some(Duration::ZERO)).unwrap();
                drop(first);
                let (mut second, _) = listener.accept().await.unwrap();
                let mut again = Vec::new();
                second.read_to_end(&mut again).await.unwrap();
                (got, again)
            });
            sink.confirm_all().await.unwrap();
            assert_eq!(sink.unconfirmed(), 0);
            drop(sink);
            let (got, again) = tokio::time::timeout(Duration::from_secs(10), peer)
                .await
                .expect("sent again on a new connection")
                .unwrap();
            assert_eq!(
                (got.as_slice(), again.as_slice()),
                (&b"one\n"[..], &b"one\n"[..])
            );
        })
        .await;
    }

    #[tokio::test]
    async fn what_the_peer_has_not_acknowledged_is_never_confirmed() {
        bounded(async {
            // A receiver with a small buffer that never reads: its kernel
            // acknowledges a few KiB, then closes the window.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(8).unwrap();
            let endpoint = Endpoint::Inet {
                host: "127.0.0.1".into(),
                port: listener.local_addr().unwrap().port(),
            };
            let retry = SendRetry {
                retries: 0,
                base: Duration::from_millis(10),
                timeout: Duration::from_secs(1),
            };
            let mut sink = TcpSink::connect(endpoint, None, retry).await.unwrap();
            let (_peer, _) = listener.accept().await.unwrap();
            let frame = [b'x'; 1023]
                .iter()
                .chain(b"\n")
                .copied()
                .collect::<Vec<u8>>();
            // One chunk, which the kernel on our side takes whole.
            for _ in 0..64 {
                sink.send(&frame).await.unwrap();
            }
            sink.flush().await.unwrap();
            // Held long enough, on an open connection: not acknowledged.
            tokio::time::sleep(HOLD * 2).await;
            sink.flush().await.unwrap();
            assert_eq!(sink.unconfirmed(), 64);
            let e = sink.confirm_all().await.unwrap_err();
            assert!(e.to_string().contains("acknowledged none"), "{e}");
            assert_eq!(sink.unconfirmed(), 64);
        })
        .await;
    }

    #[tokio::test]
    async fn enough_bytes_after_a_batch_confirm_it_before_the_hold() {
        bounded(async {
            let (mut sink, listener) = sink_and_listener().await;
            let (mut peer, _) = listener.accept().await.unwrap();
            let frame = [b'x'; 1023]
                .iter()
                .chain(b"\n")
                .copied()
                .collect::<Vec<u8>>();
            let total = HOLD_BYTES / frame.len() + 2;
            let reader = tokio::spawn(async move { read_n(&mut peer, total * 1024).await.len() });
            sink.send(&frame).await.unwrap();
            sink.flush().await.unwrap();
            for _ in 1..total {
                sink.send(&frame).await.unwrap();
            }
            sink.flush().await.unwrap();
            // The first frame is confirmed at once; the rest is held.
            assert_eq!(sink.unconfirmed(), total as u64 - 1);
            assert_eq!(reader.await.unwrap(), total * 1024);
        })
        .await;
    }
}
