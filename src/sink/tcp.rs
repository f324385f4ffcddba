//! REMOTE over TCP. Frames are buffered and written at each flush; "accepted"
//! means written, flushed, and the connection still open afterwards (a peer
//! that has closed shows as end-of-file on a non-blocking read).

use super::{CONNECT_TIMEOUT, SinkError, peer_open};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes buffered before a write is made without waiting for flush.
const BUFFER: usize = 64 * 1024;

pub struct TcpSink {
    target: String,
    stream: TcpStream,
    buf: Vec<u8>,
}

pub fn display_target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl TcpSink {
    pub async fn connect(host: &str, port: u16) -> Result<TcpSink, SinkError> {
        let target = display_target(host, port);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| SinkError::connect(&target, std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| SinkError::connect(&target, e))?;
        let _ = stream.set_nodelay(true);
        Ok(TcpSink {
            target,
            stream,
            buf: Vec::with_capacity(BUFFER),
        })
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.buf.extend_from_slice(frame);
        if self.buf.len() >= BUFFER {
            self.write_out().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out().await?;
        self.stream
            .flush()
            .await
            .map_err(|e| SinkError::write(&self.target, e))?;
        self.check_open()
    }

    async fn write_out(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.check_open()?;
        self.stream
            .write_all(&self.buf)
            .await
            .map_err(|e| SinkError::write(&self.target, e))?;
        self.buf.clear();
        Ok(())
    }

    /// Fails if the peer has closed its side (or reset the connection).
    fn check_open(&self) -> Result<(), SinkError> {
        let mut probe = [0u8; 64];
        peer_open(self.stream.try_read(&mut probe), &self.target)
    }
}
