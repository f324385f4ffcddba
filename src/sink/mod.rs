//! Sink: where encoded frames go. One file per transport, one enum arm
//! each. A sink takes frames with [`Sink::send`] and confirms them with
//! [`Sink::flush`]: when `flush` returns `Ok`, every frame sent so far
//! except the last [`Sink::held`] has been accepted as far as the transport
//! can tell (see each transport), and the cursor may move past them.
//! [`Sink::confirm_all`] waits until none is held.

pub mod conn;
pub mod file;
pub mod hec;
pub mod output;
pub mod relp;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;

pub use output::{Output, SocketType, StreamKind, Target};
use std::time::Duration;
use thiserror::Error;

/// How long a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot open {target}: {source}")]
    Open {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot write to {target}: {source}")]
    Write {
        target: String,
        source: std::io::Error,
    },
    #[error("{target} closed the connection; the frames of this page were not confirmed")]
    Closed { target: String },
    #[error("TLS with {target} failed: {reason}")]
    Tls { target: String, reason: String },
    #[error(transparent)]
    TlsSetup(#[from] tls::TlsError),
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<SinkError> },
    #[error("{target}: {reason}")]
    Refused { target: String, reason: String },
    #[error("the reader of {target} closed it; what it had not read was not confirmed")]
    ReaderGone { target: String },
}

/// How a stream output retries: reconnects, and the first delay (doubled
/// each time, at most 30 s); and how long one write or flush may take
/// (`--send-timeout`) before the connection counts as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendRetry {
    pub retries: u32,
    pub base: Duration,
    pub timeout: Duration,
}

/// The default `--send-timeout`.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs an I/O step with a deadline; running past it is a `TimedOut`
/// error (a receiver that stopped reading).
pub async fn with_deadline<T>(
    deadline: Duration,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r,
        Err(_) => Err(crate::fsx::no_progress(deadline)),
    }
}

impl SendRetry {
    /// The wait before retry `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        (self.base * 2u32.saturating_pow(attempt.min(16))).min(Duration::from_secs(30))
    }

    /// After attempt `attempt` (0-based) failed with `e`: when retries
    /// remain, says so (`doing` in a while) and waits; else returns the
    /// error to stop with (`... (gave up after N attempts)` after retries).
    pub async fn back_off(&self, attempt: u32, e: SinkError, doing: &str) -> Result<(), SinkError> {
        if attempt >= self.retries {
            return Err(if attempt == 0 {
                e
            } else {
                SinkError::GaveUp {
                    attempts: attempt + 1,
                    last: Box::new(e),
                }
            });
        }
        let wait = self.delay(attempt);
        tracing::warn!(
            "{e}; {doing} in {:.1}s (retry {} of {})",
            wait.as_secs_f64(),
            attempt + 1,
            self.retries
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

impl SinkError {
    pub fn write(target: &str, source: std::io::Error) -> SinkError {
        SinkError::Write {
            target: target.to_string(),
            source,
        }
    }

    pub fn connect(target: &str, source: std::io::Error) -> SinkError {
        SinkError::Connect {
            target: target.to_string(),
            source,
        }
    }
}

pub enum Sink {
    Udp(udp::UdpSink),
    Tcp(tcp::TcpSink),
    Relp(relp::RelpSink),
    Hec(Box<hec::HecSink>),
    UnixDatagram(unix::UnixDatagramSink),
    Stream(stream::StreamSink),
    File(file::SharedFile),
}

impl Sink {
    /// Opens the output.
    pub async fn open(output: &Output, retry: SendRetry) -> Result<Sink, SinkError> {
        Ok(match output {
            Output::Syslog { socket } => {
                Sink::UnixDatagram(unix::UnixDatagramSink::connect(socket, retry.timeout).await?)
            }
            Output::Remote {
                target: Target::Unix(path),
                socket_type: SocketType::Udp,
                ..
            } => Sink::UnixDatagram(unix::UnixDatagramSink::connect(path, retry.timeout).await?),
            Output::Remote {
                target: Target::Inet { host, port },
                socket_type: SocketType::Udp,
                ..
            } => Sink::Udp(udp::UdpSink::connect(host, *port).await?),
            Output::Remote {
                target,
                socket_type,
                tls,
                ..
            } => {
                let tls = match socket_type {
                    SocketType::Tls | SocketType::RelpTls => Some(tls::Tls::new(tls)?),
                    _ => None,
                };
                match socket_type {
                    SocketType::Relp | SocketType::RelpTls => {
                        Sink::Relp(relp::RelpSink::connect(endpoint(target), tls, retry).await?)
                    }
                    _ => Sink::Tcp(tcp::TcpSink::connect(endpoint(target), tls, retry).await?),
                }
            }
            Output::Stream(kind) => Sink::Stream(stream::StreamSink::new(*kind, retry.timeout)),
            Output::Hec(opts) => Sink::Hec(Box::new(hec::HecSink::new(opts, retry)?)),
            Output::File {
                path,
                max_bytes,
                backup_count,
            } => Sink::File(
                file::SharedFile::open(path, *max_bytes, *backup_count, retry.timeout)
                    .map_err(|e| open_error(path, e))?,
            ),
        })
    }

    /// Hands one frame to the transport.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        match self {
            Sink::Udp(s) => s.send(frame).await,
            Sink::Tcp(s) => s.send(frame).await,
            Sink::Relp(s) => s.send(frame).await,
            Sink::Hec(s) => s.send(frame).await,
            Sink::UnixDatagram(s) => s.send(frame).await,
            Sink::Stream(s) => s.send(frame).await,
            Sink::File(f) => {
                let r = f.send(frame).await;
                r.map_err(|e| SinkError::write(&f.path().display().to_string(), e))
            }
        }
    }

    /// How many frames (since the sink was opened) the transport has
    /// confirmed without a flush: every one for datagrams (sent is all
    /// they promise), RELP's answered ones, HEC's accepted batches
    /// (without `--hec-ack`). `None`: only a flush confirms.
    pub fn confirmed_by_itself(&self) -> Option<u64> {
        match self {
            Sink::Udp(_) | Sink::UnixDatagram(_) => Some(u64::MAX),
            Sink::Relp(s) => Some(s.answered),
            Sink::Hec(s) => Some(s.confirmed()),
            Sink::Tcp(_) | Sink::Stream(_) | Sink::File(_) => None,
        }
    }

    /// After how many unconfirmed bytes a flush is worth making inside a
    /// page, so that the cursor can follow (`None`: the transport confirms
    /// by itself, or confirming costs too much to do before the page ends).
    pub fn flush_batch(&self) -> Option<usize> {
        const BATCH: usize = 64 * 1024;
        match self {
            Sink::Tcp(_) | Sink::Stream(_) => Some(BATCH),
            // Each confirmation of a file is an fsync.
            Sink::File(_) => Some(4 * BATCH),
            Sink::Udp(_) | Sink::UnixDatagram(_) | Sink::Relp(_) | Sink::Hec(_) => None,
        }
    }

    /// How many of the frames sent a successful [`Sink::flush`] left
    /// unconfirmed: the last ones, held by TCP and TLS (see `tcp`).
    pub fn held(&self) -> u64 {
        match self {
            Sink::Tcp(s) => s.unconfirmed(),
            _ => 0,
        }
    }

    /// Flushes and waits until every frame sent so far is confirmed.
    pub async fn confirm_all(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Tcp(s) => s.confirm_all().await,
            other => other.flush().await,
        }
    }

    /// Confirms the frames sent so far but the [`Sink::held`] ones (see
    /// the module's doc).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Udp(_) | Sink::UnixDatagram(_) => Ok(()),
            Sink::Tcp(s) => s.flush().await,
            Sink::Relp(s) => s.flush().await,
            Sink::Hec(s) => s.flush().await,
            Sink::Stream(s) => s.flush().await,
            Sink::File(f) => {
                let r = f.sync().await;
                r.map_err(|e| SinkError::write(&f.path().display().to_string(), e))
            }
        }
    }
}

impl Sink {
    /// `check`: what opening did not already prove (HEC's health and token).
    pub async fn probe(&self) -> Result<(), SinkError> {
        match self {
            Sink::Hec(h) => h.probe().await,
            _ => Ok(()),
        }
    }

    /// Confirms everything and ends the session cleanly (RELP's `close`).
    pub async fn close(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Relp(s) => s.close().await,
            other => other.confirm_all().await,
        }
    }
}

/// Why a file output cannot be opened, in its own words.
fn open_error(path: &std::path::Path, e: std::io::Error) -> SinkError {
    let target = path.display().to_string();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(d) if e.kind() == std::io::ErrorKind::NotFound && !d.exists() => SinkError::Open {
            target,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the directory {} does not exist", d.display()),
            ),
        },
        _ => SinkError::Open { target, source: e },
    }
}

/// The stream endpoint of a REMOTE target.
fn endpoint(target: &Target) -> conn::Endpoint {
    match target {
        Target::Inet { host, port } => conn::Endpoint::Inet {
            host: host.clone(),
            port: *port,
        },
        Target::Unix(p) => conn::Endpoint::Unix(p.clone()),
    }
}

/// A description of the output for messages.
pub fn describe(output: &Output) -> String {
    match output {
        Output::Syslog { socket } => format!("syslog ({})", socket.display()),
        Output::Remote {
            target,
            socket_type,
            ..
        } => format!("{target} ({})", socket_type.name()),
        Output::Stream(StreamKind::Stdout) => "stdout".into(),
        Output::Stream(StreamKind::Stderr) => "stderr".into(),
        Output::File { path, .. } => path.display().to_string(),
        Output::Hec(h) => format!(
            "HEC {}",
            h.url
                .as_deref()
                .map(crate::secret::strip_userinfo)
                .unwrap_or_else(|| "(no URL)".into())
        ),
    }
}
