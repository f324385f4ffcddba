//! Unix datagram sockets: the local syslog (/dev/log) and REMOTE with a
//! socket path and UDP (a stream socket path is handled by `tcp.rs`). A datagram is
//! accepted once the kernel has queued it for the receiver; when the
//! receiver's queue is full, sending waits rather than dropping.

use super::SinkError;
use std::path::Path;
use tokio::net::UnixDatagram;

pub struct UnixDatagramSink {
    target: String,
    socket: UnixDatagram,
    deadline: std::time::Duration,
}

impl UnixDatagramSink {
    pub async fn connect(
        path: &Path,
        deadline: std::time::Duration,
    ) -> Result<UnixDatagramSink, SinkError> {
        let target = path.display().to_string();
        let socket = UnixDatagram::unbound().map_err(|e| SinkError::connect(&target, e))?;
        socket
            .connect(path)
            .map_err(|e| SinkError::connect(&target, e))?;
        Ok(UnixDatagramSink {
            target,
            socket,
            deadline,
        })
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        // A receiver whose queue stays full is a stalled receiver.
        match super::with_deadline(self.deadline, self.socket.send(frame)).await {
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
