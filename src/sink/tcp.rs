//! REMOTE over a byte stream: TCP, TLS (RFC 5425) or a unix stream socket.
//!
//! Frames are buffered and written in large writes. A flush writes them
//! and checks that the connection is still open (a peer that has closed
//! shows as end-of-file or a reset on a non-blocking read). A flushed batch
//! is confirmed only once the same connection is still open [`HOLD`] after
//! it was flushed, or after [`HOLD_BYTES`] more were written on it: a
//! receiver stopped with the batch unread in its socket resets the
//! connection, and the sink learns it before the batch counts as delivered.
//! Frames stay held until confirmed; when the connection is lost (checked
//! before each write too), the sink reconnects with backoff and writes them
//! all again, so a receiver may see the unconfirmed ones twice but never
//! miss one it took in.

use super::conn::{self, Conn, Endpoint};
use super::tls::Tls;
use super::{SendRetry, SinkError};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

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
        };
        sink.deliver(false).await?;
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
            });
        }
        let chunk = self.chunks.back_mut().expect("one is being filled");
        chunk.bytes.extend_from_slice(frame);
        chunk.frames += 1;
        self.frames += 1;
        self.bytes += frame.len();
        if chunk.bytes.len() >= BUFFER {
            self.deliver(false).await?;
        }
        Ok(())
    }

    /// How many of the frames sent are not confirmed yet (after a flush:
    /// those held, see the module's doc).
    pub fn unconfirmed(&self) -> u64 {
        self.frames
    }

    /// Writes and flushes every frame, and confirms those held long
    /// enough; the others stay held (see the module's doc).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.deliver(true).await?;
        // The connection is open now.
        let now = Instant::now();
        for c in self.chunks.iter_mut().rev() {
            if c.flushed.is_some() {
                break;
            }
            c.flushed = Some(now);
        }
        while let Some(c) = self.chunks.front() {
            let held_enough = c.flushed.is_some_and(|t| now - t >= HOLD);
            if !held_enough && self.bytes - c.bytes.len() < HOLD_BYTES {
                break;
            }
            let Some(mut c) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= c.bytes.len();
            self.frames -= c.frames;
            self.written -= 1;
            // Kept for reuse (at most what HOLD_BYTES holds): the memory
            // of a new buffer costs more than its contents.
            if self.spare.len() <= HOLD_BYTES / BUFFER && c.bytes.capacity() <= 2 * BUFFER {
                c.bytes.clear();
                self.spare.push(c.bytes);
            }
        }
        Ok(())
    }

    /// Flushes and waits until every frame is confirmed (about [`HOLD`]).
    pub async fn confirm_all(&mut self) -> Result<(), SinkError> {
        loop {
            self.flush().await?;
            match self.chunks.front().and_then(|c| c.flushed) {
                None => return Ok(()),
                Some(t) => tokio::time::sleep_until((t + HOLD).into()).await,
            }
        }
    }

    /// Writes what the connection has not been given yet (and, with
    /// `confirm`, flushes and checks the connection), reconnecting and
    /// starting over from the first unconfirmed frame when it fails.
    async fn deliver(&mut self, confirm: bool) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            let result = self.try_deliver(confirm).await;
            let Err(e) = result else {
                return Ok(());
            };
            // The connection may have lost anything it was given; what it
            // held is held again on the next one.
            self.conn = None;
            self.written = 0;
            for c in &mut self.chunks {
                c.flushed = None;
            }
            if matches!(e, SinkError::Tls { .. }) {
                return Err(e);
            }
            self.retry.back_off(attempt, e, "reconnecting").await?;
            attempt += 1;
        }
    }

    async fn try_deliver(&mut self, confirm: bool) -> Result<(), SinkError> {
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
        if confirm {
            super::with_deadline(deadline, c.flush())
                .await
                .map_err(|e| SinkError::write(&self.target, e))?;
            check_open(c, &self.target)?;
        }
        Ok(())
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
    }

    #[tokio::test]
    async fn a_batch_is_confirmed_after_the_hold_on_an_open_connection() {
        let (mut sink, listener) = sink_and_listener().await;
        let (mut peer, _) = listener.accept().await.unwrap();
        sink.send(b"one\n").await.unwrap();
        sink.flush().await.unwrap();
        sink.send(b"two\n").await.unwrap();
        sink.flush().await.unwrap();
        assert_eq!(sink.unconfirmed(), 2, "held");
        assert_eq!(read_n(&mut peer, 8).await, b"one\ntwo\n");
        let started = Instant::now();
        sink.confirm_all().await.unwrap();
        assert_eq!(sink.unconfirmed(), 0);
        assert!(started.elapsed() < 3 * HOLD + Duration::from_secs(5));
        // Nothing was written twice.
        sink.send(b"three\n").await.unwrap();
        sink.confirm_all().await.unwrap();
        assert_eq!(read_n(&mut peer, 6).await, b"three\n");
    }

    #[tokio::test]
    async fn enough_bytes_after_a_batch_confirm_it_before_the_hold() {
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
    }
}
