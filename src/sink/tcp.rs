//! REMOTE over a byte stream: TCP, TLS (RFC 5425) or a unix stream socket.
//!
//! Frames are buffered and written in large writes. A flush confirms them:
//! written, flushed, and the connection still open afterwards (a peer that
//! has closed shows as end-of-file on a non-blocking read). Frames stay
//! held until confirmed; when the connection is lost (checked before each
//! write too), the sink reconnects with backoff and writes them all again,
//! so a receiver may see the unconfirmed ones twice but never miss one.

use super::conn::{self, Conn, Endpoint};
use super::tls::Tls;
use super::{SendRetry, SinkError};
use tokio::io::AsyncWriteExt;

/// Bytes buffered before a write is made without waiting for flush.
const BUFFER: usize = 64 * 1024;

pub struct TcpSink {
    endpoint: Endpoint,
    tls: Option<Tls>,
    target: String,
    conn: Option<Conn>,
    /// Frames not yet confirmed.
    pending: Vec<u8>,
    /// How much of `pending` the current connection has been given.
    written: usize,
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
            pending: Vec::with_capacity(BUFFER),
            written: 0,
            retry,
        };
        sink.deliver(false).await?;
        Ok(sink)
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.pending.extend_from_slice(frame);
        if self.pending.len() - self.written >= BUFFER {
            self.deliver(false).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.deliver(true).await?;
        self.pending.clear();
        self.written = 0;
        Ok(())
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
            // The connection may have lost anything it was given.
            self.conn = None;
            self.written = 0;
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
        if self.written < self.pending.len() {
            super::with_deadline(deadline, c.write_all(&self.pending[self.written..]))
                .await
                .map_err(|e| SinkError::write(&self.target, e))?;
            self.written = self.pending.len();
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
