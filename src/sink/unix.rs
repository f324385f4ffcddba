//! Unix sockets: the local syslog (/dev/log, datagrams) and REMOTE with a
//! socket path (datagram with UDP, stream with TCP). A datagram is
//! accepted once the kernel has queued it for the receiver; when the
//! receiver's queue is full, sending waits rather than dropping.

use super::{SinkError, peer_open};
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixDatagram, UnixStream};

pub struct UnixDatagramSink {
    target: String,
    socket: UnixDatagram,
}

impl UnixDatagramSink {
    pub async fn connect(path: &Path) -> Result<UnixDatagramSink, SinkError> {
        let target = path.display().to_string();
        let socket = UnixDatagram::unbound().map_err(|e| SinkError::connect(&target, e))?;
        socket
            .connect(path)
            .map_err(|e| SinkError::connect(&target, e))?;
        Ok(UnixDatagramSink { target, socket })
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        match self.socket.send(frame).await {
            Ok(_) => Ok(()),
            // EMSGSIZE: larger than the socket takes; send the first 64 KiB.
            Err(e) if e.raw_os_error() == Some(90) && frame.len() > 65_536 => self
                .socket
                .send(&frame[..65_536])
                .await
                .map(|_| ())
                .map_err(|e| SinkError::write(&self.target, e)),
            Err(e) => Err(SinkError::write(&self.target, e)),
        }
    }
}

pub struct UnixStreamSink {
    target: String,
    stream: UnixStream,
    buf: Vec<u8>,
}

impl UnixStreamSink {
    pub async fn connect(path: &Path) -> Result<UnixStreamSink, SinkError> {
        let target = path.display().to_string();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| SinkError::connect(&target, e))?;
        Ok(UnixStreamSink {
            target,
            stream,
            buf: Vec::new(),
        })
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        self.buf.extend_from_slice(frame);
        if self.buf.len() >= 64 * 1024 {
            self.write_out().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out().await?;
        let mut probe = [0u8; 64];
        peer_open(self.stream.try_read(&mut probe), &self.target)
    }

    async fn write_out(&mut self) -> Result<(), SinkError> {
        if !self.buf.is_empty() {
            self.stream
                .write_all(&self.buf)
                .await
                .map_err(|e| SinkError::write(&self.target, e))?;
            self.buf.clear();
        }
        Ok(())
    }
}
