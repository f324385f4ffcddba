//! TLS for the stream transports (RFC 5425 syslog, RELP over TLS): TLS 1.2
//! or 1.3, the server's certificate checked against the system's roots or
//! `--tls-ca`, and its name against the target's host; a client
//! certificate with `--tls-cert` and `--tls-key`.

use super::conn::Counted;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, SignatureScheme, sign};

/// The TLS options of the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust instead of the system's.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), presented when the server asks.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

/// A bad TLS file or option: found before anything is sent.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{flag} {path}: {reason}")]
    File {
        flag: &'static str,
        path: String,
        reason: String,
    },
    #[error("no trusted CA certificates: the system has none and --tls-ca was not given")]
    NoRoots,
    #[error("--tls-cert and --tls-key go together")]
    HalfClientCert,
    #[error("the client certificate and key do not fit together: {0}")]
    ClientCert(String),
}

/// A ready TLS client.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    client: Arc<ClientCert>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// Our client certificate, if any, and whether the server asked for one:
/// with TLS 1.3 a server that rejects the client (no certificate, or one
/// it does not trust) says so only after the handshake, when data may
/// already be written and seem delivered.
#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<sign::CertifiedKey>>,
    asked: AtomicBool,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<sign::CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// How long, after a handshake in which the server asked for a client
/// certificate, the agent waits for the server to accept (a TLS 1.3
/// session ticket) or reject (an alert, a close) the client before it
/// writes. Servers that accept send their ticket at once.
const CLIENT_VERDICT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A bad TLS file, named with its flag.
pub(crate) fn file_error(
    flag: &'static str,
    path: &Path,
    reason: impl std::fmt::Display,
) -> TlsError {
    TlsError::File {
        flag,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = std::fs::read(path).map_err(|e| file_error(flag, path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(flag, path, format!("not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(file_error(flag, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

impl Tls {
    /// Builds the client from the options (reads the files now, so that a
    /// bad one stops the run before anything is fetched or sent).
    pub fn new(opts: &TlsOptions) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder_provider = provider.clone();
        let mut roots = RootCertStore::empty();
        match &opts.ca {
            Some(path) => {
                for cert in read_certs("--tls-ca", path)? {
                    roots.add(cert).map_err(|e| {
                        file_error(
                            "--tls-ca",
                            path,
                            format!("not a usable CA certificate ({e})"),
                        )
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(TlsError::NoRoots);
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(builder_provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::ClientCert(e.to_string()))?
            .with_root_certificates(roots);
        let key = match (&opts.cert, &opts.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let chain = read_certs("--tls-cert", cert)?;
                let text = std::fs::read(key).map_err(|e| file_error("--tls-key", key, e))?;
                let key_der = PrivateKeyDer::from_pem_slice(&text)
                    .map_err(|_| file_error("--tls-key", key, "holds no PEM private key"))?;
                let certified = sign::CertifiedKey::from_der(chain, key_der, &provider)
                    .map_err(|e| TlsError::ClientCert(e.to_string()))?;
                Some(Arc::new(certified))
            }
            _ => return Err(TlsError::HalfClientCert),
        };
        let client = Arc::new(ClientCert {
            key,
            asked: AtomicBool::new(false),
        });
        let config = builder.with_client_cert_resolver(client.clone());
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            client,
        })
    }

    /// Runs the handshake over `tcp`; the certificate must be valid for
    /// `host` (a name or an IP address).
    pub async fn handshake(
        &self,
        host: &str,
        tcp: Counted<TcpStream>,
    ) -> std::io::Result<TlsStream<Counted<TcpStream>>> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("'{host}' is not a valid TLS server name"),
            )
        })?;
        self.client.asked.store(false, Ordering::SeqCst);
        let mut stream = self.connector.connect(name, tcp).await?;
        if self.client.asked.load(Ordering::SeqCst) {
            await_client_verdict(&mut stream, self.client.key.is_some()).await?;
        }
        Ok(stream)
    }
}

/// After a TLS 1.3 handshake in which the server asked for our
/// certificate: waits (at most [`CLIENT_VERDICT_WAIT`]) for a session
/// ticket, which means the server accepted us, or a close or alert, which
/// means it did not. TLS 1.2 settles this inside the handshake.
async fn await_client_verdict(
    stream: &mut TlsStream<Counted<TcpStream>>,
    presented: bool,
) -> std::io::Result<()> {
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::{AsyncRead, ReadBuf};
    if stream.get_ref().1.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return Ok(());
    }
    let rejected = |cause: Option<std::io::Error>| {
        let why = if presented {
            "the server rejected our client certificate (--tls-cert)"
        } else {
            "the server closed the connection after the handshake: it requires a client certificate (give one with --tls-cert and --tls-key)"
        };
        std::io::Error::other(ClientRejected(match cause {
            Some(e) => format!("{why}: {e}"),
            None => why.to_string(),
        }))
    };
    let verdict = std::future::poll_fn(|cx| {
        let mut buf = [0u8; 512];
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    return Poll::Ready(Err(rejected(None)));
                }
                Poll::Ready(Ok(())) => continue, // a syslog server sends nothing; ignore
                Poll::Ready(Err(e)) => return Poll::Ready(Err(rejected(Some(e)))),
                Poll::Pending if stream.get_ref().1.tls13_tickets_received() > 0 => {
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    match tokio::time::timeout(CLIENT_VERDICT_WAIT, verdict).await {
        Ok(result) => result,
        // Neither: a server that sends no tickets; go on.
        Err(_) => Ok(()),
    }
}

impl Tls {
    /// Whether a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        self.client.key.is_some()
    }
}

/// The server turned the client down after the handshake.
#[derive(Debug, Error)]
#[error("{0}")]
struct ClientRejected(String);

/// If a rustls error is among the causes of `e`, it in words a user can
/// act on.
pub fn explain_chain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(explain(&std::io::Error::other(r.clone())));
        }
        // io::Error's source() skips the error it wraps: descend into it.
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// A handshake failure in words a user can act on.
pub fn explain(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as R};
    if let Some(w) = e.get_ref().and_then(|i| i.downcast_ref::<ClientRejected>()) {
        return w.to_string();
    }
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<R>()) else {
        return e.to_string();
    };
    match inner {
        R::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA (see --tls-ca)".into()
        }
        R::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".into(),
        R::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is not valid yet".into(),
        R::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for this host name".into(),
        R::AlertReceived(alert) => format!(
            "the server refused the connection ({alert:?}; does it require a client certificate? see --tls-cert)"
        ),
        other => other.to_string(),
    }
}
