//! The sink stage's options: which output, where, over what. The command
//! line builds them (`cli::settings`); the sinks only read them.

use super::hec::HecOptions;
use super::tls::TlsOptions;
use crate::encode::Framing;
use std::path::PathBuf;

/// The transport of a REMOTE output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketType {
    /// Datagrams (a unix datagram socket with a path).
    Udp,
    /// A byte stream, LF-framed by default (a unix stream socket with a path).
    Tcp,
    /// TCP with TLS (RFC 5425), octet-counted by default.
    Tls,
    /// RELP: each message confirmed by the receiver.
    Relp,
    /// RELP over TLS.
    RelpTls,
}

impl SocketType {
    pub const ALL: [SocketType; 5] = [
        SocketType::Udp,
        SocketType::Tcp,
        SocketType::Tls,
        SocketType::Relp,
        SocketType::RelpTls,
    ];

    /// The command-line spelling (`--socket-type`).
    pub fn name(self) -> &'static str {
        match self {
            SocketType::Udp => "UDP",
            SocketType::Tcp => "TCP",
            SocketType::Tls => "TLS",
            SocketType::Relp => "RELP",
            SocketType::RelpTls => "RELP-TLS",
        }
    }
}

/// A STREAM output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// Where a REMOTE output connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Host name or address, and port.
    Inet { host: String, port: u16 },
    /// A unix socket path.
    Unix(PathBuf),
}

impl Target {
    /// Parses `HOST:PORT`, `[IPv6]:PORT` or an absolute path; `HOST` or
    /// `[IPv6]` alone take `default_port` (none: a port is required).
    pub fn parse_with_port(s: &str, default_port: Option<u16>) -> Option<Target> {
        if s.starts_with('/') || s.starts_with("./") {
            return Some(Target::Unix(PathBuf::from(s)));
        }
        let default = default_port.map(|p| p.to_string());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            match (rest.split_once("]:"), rest.strip_suffix(']'), &default) {
                (Some((h, p)), _, _) => (h, p),
                (None, Some(h), Some(d)) => (h, d.as_str()),
                _ => return None,
            }
        } else {
            match (s.rsplit_once(':'), &default) {
                (Some((h, _)), _) if h.contains(':') => return None,
                (Some((h, p)), _) => (h, p),
                (None, Some(d)) => (s, d.as_str()),
                (None, None) => return None,
            }
        };
        let port: u16 = port.parse().ok()?;
        if host.is_empty() || port == 0 {
            return None;
        }
        Some(Target::Inet {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Inet { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Inet { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The output, with the options that apply to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Syslog {
        socket: PathBuf,
    },
    Remote {
        target: Target,
        socket_type: SocketType,
        framing: Framing,
        /// Used with `SocketType::Tls`.
        tls: TlsOptions,
    },
    Stream(StreamKind),
    File {
        path: PathBuf,
        max_bytes: u64,
        backup_count: u32,
    },
    /// Splunk HEC (URL and token may still come from config.json).
    Hec(HecOptions),
}

impl Output {
    /// UDP over the network (not a local datagram socket, which makes the
    /// sender wait).
    pub fn is_udp(&self) -> bool {
        matches!(
            self,
            Output::Remote {
                socket_type: SocketType::Udp,
                target: Target::Inet { .. },
                ..
            }
        )
    }
}
