//! REMOTE over UDP: one message per datagram. "Accepted" means sent: UDP
//! gives no proof of delivery. A receiver that is not listening is noticed
//! when the kernel reports it (ICMP port unreachable) on a later send.

use super::{CONNECT_TIMEOUT, SinkError};
use tokio::net::UdpSocket;

/// The largest payload of an IPv4 UDP datagram.
pub const MAX_DATAGRAM: usize = 65_507;

pub struct UdpSink {
    target: String,
    socket: UdpSocket,
}

impl UdpSink {
    pub async fn connect(host: &str, port: u16) -> Result<UdpSink, SinkError> {
        let target = super::tcp::display_target(host, port);
        let addrs = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| SinkError::connect(&target, std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| SinkError::connect(&target, e))?;
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address found");
        for addr in addrs {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            match UdpSocket::bind(bind).await {
                Ok(socket) => match socket.connect(addr).await {
                    Ok(()) => return Ok(UdpSink { target, socket }),
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
        }
        Err(SinkError::connect(&target, last))
    }

    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        let frame = &frame[..frame.len().min(MAX_DATAGRAM)];
        self.socket
            .send(frame)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::write(&self.target, e))
    }
}
