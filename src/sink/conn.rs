//! Byte-stream connections for the stream transports (TCP, TLS, unix stream
//! sockets, and RELP over them): connecting with a timeout, telling
//! whether the peer has closed without blocking, and how many of the bytes
//! written the peer has acknowledged.

use super::tls::Tls;
use super::{CONNECT_TIMEOUT, SinkError};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
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
    Tcp(Counted<TcpStream>),
    Tls(Box<TlsStream<Counted<TcpStream>>>),
    Unix(Counted<UnixStream>),
}

/// A socket that counts the bytes the kernel took from it (for TLS, the
/// records: what the kernel's count of unacknowledged bytes is in).
pub struct Counted<S> {
    inner: S,
    written: u64,
}

impl<S> Counted<S> {
    pub fn new(inner: S) -> Counted<S> {
        Counted { inner, written: 0 }
    }
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
            Ok(Conn::Unix(Counted::new(s)))
        }
        Endpoint::Inet { host, port } => {
            let tcp =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), *port)))
                    .await
                    .map_err(|_| timed(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(timed)?;
            let _ = tcp.set_nodelay(true);
            let tcp = Counted::new(tcp);
            match tls {
                None => Ok(Conn::Tcp(tcp)),
                Some(tls) => {
                    let s = tokio::time::timeout(CONNECT_TIMEOUT, tls.handshake(host, tcp))
                        .await
                        // Connected, then silence: the TLS handshake's, not
                        // the connection's.
                        .map_err(|_| SinkError::Tls {
                            target: target.clone(),
                            reason: format!(
                                "the TLS handshake got no answer in {} s: the receiver does not speak TLS on this port (a plain TCP listener? use tcp://), or is stuck",
                                CONNECT_TIMEOUT.as_secs()
                            ),
                        })?
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

    /// Bytes written to the connection so far (with TLS, its records).
    pub fn written(&self) -> u64 {
        match self {
            Conn::Tcp(s) => s.written,
            Conn::Tls(s) => s.get_ref().0.written,
            Conn::Unix(s) => s.written,
        }
    }

    /// How many of the bytes [`Conn::written`] the peer has acknowledged:
    /// for TCP and TLS, all but those the kernel still holds for it
    /// (unsent, or sent and not acknowledged: `SIOCOUTQ`), so that a
    /// receiver that stops reading, whose window closes, acknowledges none
    /// of what is written after. A unix stream socket counts what it was
    /// given as delivered, as it always has.
    pub fn acknowledged(&self) -> std::io::Result<u64> {
        let fd = match self {
            Conn::Tcp(s) => s.inner.as_raw_fd(),
            Conn::Tls(s) => s.get_ref().0.inner.as_raw_fd(),
            Conn::Unix(_) => return Ok(self.written()),
        };
        Ok(self.written().saturating_sub(unacknowledged(fd)?))
    }
}

/// The bytes a TCP socket holds that its peer has not acknowledged.
#[cfg(target_os = "linux")]
fn unacknowledged(fd: RawFd) -> std::io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is an open TCP socket (borrowed from its stream for
    // this call) and TIOCOUTQ (= SIOCOUTQ) writes one int to `n`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Elsewhere the kernel's queue is not asked: what was written counts as
/// acknowledged, as before.
#[cfg(not(target_os = "linux"))]
fn unacknowledged(_: RawFd) -> std::io::Result<u64> {
    Ok(0)
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
