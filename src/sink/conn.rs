//! Byte-stream connections for the stream transports (TCP, TLS, unix stream
//! sockets, and RELP over them): connecting with a timeout, and telling
//! whether the peer has closed without blocking.

use super::tls::Tls;
use super::{CONNECT_TIMEOUT, SinkError};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

/// Where a stream transport connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Inet { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Inet { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Inet { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An open connection.
pub enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// Connects to `endpoint`, with TLS when `tls` is set (TCP only).
pub async fn connect(endpoint: &Endpoint, tls: Option<&Tls>) -> Result<Conn, SinkError> {
    let target = endpoint.to_string();
    let timed = |e: std::io::Error| SinkError::connect(&target, e);
    match endpoint {
        Endpoint::Unix(path) => {
            let s = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path))
                .await
                .map_err(|_| timed(std::io::ErrorKind::TimedOut.into()))?
                .map_err(timed)?;
            Ok(Conn::Unix(s))
        }
        Endpoint::Inet { host, port } => {
            let tcp =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), *port)))
                    .await
                    .map_err(|_| timed(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(timed)?;
            let _ = tcp.set_nodelay(true);
            match tls {
                None => Ok(Conn::Tcp(tcp)),
                Some(tls) => {
                    let s = tokio::time::timeout(CONNECT_TIMEOUT, tls.handshake(host, tcp))
                        .await
                        .map_err(|_| timed(std::io::ErrorKind::TimedOut.into()))?
                        .map_err(|e| SinkError::Tls {
                            target: target.clone(),
                            reason: super::tls::explain(&e),
                        })?;
                    Ok(Conn::Tls(Box::new(s)))
                }
            }
        }
    }
}

impl Conn {
    /// Reads what the peer has sent, without waiting: `Ok(None)` when
    /// nothing is there, `Ok(Some(0))` when the peer has closed.
    pub fn poll_now(&mut self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut rb = ReadBuf::new(buf);
        match Pin::new(self).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(Some(rb.filled().len())),
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(None),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
