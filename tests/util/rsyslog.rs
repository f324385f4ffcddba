//! A private rsyslogd for tests, on 127.0.0.1 and unix sockets in its own
//! temp dir, writing every message it receives (raw bytes and its own
//! parse) as JSON lines. Started with readiness checked, stopped by pid.
//!
//! ```ignore
//! let rs = Rsyslog::builder().udp().tcp().unix_socket().start();
//! // send to rs.udp_addr(), rs.tcp_addr(), rs.unix_socket_path() ...
//! let got = rs.wait_for(10, Duration::from_secs(10));
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One message as rsyslog received and parsed it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Received {
    pub raw: String,
    pub pri: String,
    pub version: String,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub structured_data: String,
    pub msg: String,
    pub input: String,
}

/// A TLS input: the server's certificate and key, the CA that signs
/// clients, and whether a client certificate is required.
#[derive(Clone, Debug)]
pub struct TlsInput {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub require_client_cert: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Builder {
    udp: bool,
    tcp: bool,
    unix: bool,
    max_message_size: Option<usize>,
    tls: Option<TlsInput>,
    relp: bool,
    relp_tls: Option<TlsInput>,
}

pub struct Rsyslog {
    dir: tempfile::TempDir,
    child: Option<Child>,
    config: Builder,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    relp: Option<SocketAddr>,
    relp_tls: Option<SocketAddr>,
}

/// Ports free now, all different: each probe is held until all are
/// picked (a port let go may be handed out again at once, and two inputs
/// on one port is a receiver that never answers one of them).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Builder {
    pub fn udp(mut self) -> Self {
        self.udp = true;
        self
    }
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }
    /// `<dir>/devlog` as syslog(3)'s /dev/log is read (imuxsock's local
    /// parser), and `<dir>/devlog5424`, read with the regular parsers.
    pub fn unix_socket(mut self) -> Self {
        self.unix = true;
        self
    }
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.max_message_size = Some(n);
        self
    }
    /// A TLS syslog input (RFC 5425, imtcp with GnuTLS).
    pub fn tls(mut self, input: TlsInput) -> Self {
        self.tls = Some(input);
        self
    }
    /// A RELP input (imrelp).
    pub fn relp(mut self) -> Self {
        self.relp = true;
        self
    }
    /// A RELP input over TLS.
    pub fn relp_tls(mut self, input: TlsInput) -> Self {
        self.relp_tls = Some(input);
        self
    }

    pub fn start(self) -> Rsyslog {
        which_rsyslogd();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let mut rs = Rsyslog {
            dir,
            child: None,
            config: self,
            udp: None,
            tcp: None,
            tls: None,
            relp: None,
            relp_tls: None,
        };
        // A port picked free can be taken before rsyslogd binds it: retry.
        for attempt in 0..5 {
            let mut ports = free_ports(5).into_iter();
            let mut port = |on: bool| {
                let p = ports.next().unwrap();
                on.then(|| SocketAddr::from(([127, 0, 0, 1], p)))
            };
            rs.udp = port(rs.config.udp);
            rs.tcp = port(rs.config.tcp);
            rs.tls = port(rs.config.tls.is_some());
            rs.relp = port(rs.config.relp);
            rs.relp_tls = port(rs.config.relp_tls.is_some());
            if rs.launch() {
                return rs;
            }
            eprintln!("rsyslogd did not get ready (attempt {attempt}); retrying with other ports");
        }
        panic!("rsyslogd did not start; its log:\n{}", rs.internal_log());
    }
}

fn which_rsyslogd() {
    let found = Command::new("rsyslogd")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "rsyslogd not found: run ./install.sh --test-deps");
}

impl Rsyslog {
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp.expect("built without .udp()")
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp.expect("built without .tcp()")
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.tls.expect("built without .tls()")
    }

    pub fn relp_addr(&self) -> SocketAddr {
        self.relp.expect("built without .relp()")
    }

    pub fn relp_tls_addr(&self) -> SocketAddr {
        self.relp_tls.expect("built without .relp_tls()")
    }

    /// The /dev/log stand-in (local syslog(3) format).
    pub fn unix_socket_path(&self) -> PathBuf {
        assert!(self.config.unix, "built without .unix_socket()");
        self.path("devlog")
    }

    /// A unix datagram socket parsed like a network input (RFC 5424).
    pub fn unix_socket_5424_path(&self) -> PathBuf {
        assert!(self.config.unix, "built without .unix_socket()");
        self.path("devlog5424")
    }

    fn conf(&self) -> String {
        let d = self.dir.path().display();
        let mut c = format!(
            "global(workDirectory=\"{d}/work\" processInternalMessages=\"on\" \
             parser.escapeControlCharactersOnReceive=\"off\" maxMessageSize=\"{}\")\n",
            self.config.max_message_size.unwrap_or(64 * 1024)
        );
        c.push_str("module(load=\"imuxsock\" SysSock.Use=\"off\")\n");
        if let Some(a) = self.udp {
            c.push_str(&format!(
                "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{}\" name=\"udp\")\n",
                a.port()
            ));
        }
        if let Some(t) = &self.config.tls {
            c.push_str(&format!(
                "global(defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" \
                 defaultNetstreamDriverKeyFile=\"{}\")\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        if self.tcp.is_some() || self.tls.is_some() {
            c.push_str("module(load=\"imtcp\")\n");
        }
        if let Some(a) = self.tcp {
            c.push_str(&format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" name=\"tcp\")\n",
                a.port()
            ));
        }
        if let (Some(a), Some(t)) = (self.tls, &self.config.tls) {
            let auth = if t.require_client_cert {
                "x509/certvalid"
            } else {
                "anon"
            };
            c.push_str(&format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" name=\"tls\" \
                 streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{auth}\")\n",
                a.port()
            ));
        }
        if self.relp.is_some() || self.relp_tls.is_some() {
            c.push_str("module(load=\"imrelp\")\n");
        }
        if let Some(a) = self.relp {
            c.push_str(&format!(
                "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{}\" name=\"relp\")\n",
                a.port()
            ));
        }
        if let (Some(a), Some(t)) = (self.relp_tls, &self.config.relp_tls) {
            let auth = if t.require_client_cert {
                " tls.authMode=\"certvalid\""
            } else {
                ""
            };
            c.push_str(&format!(
                "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{}\" name=\"relptls\" tls=\"on\" \
                 tls.caCert=\"{}\" tls.myCert=\"{}\" tls.myPrivKey=\"{}\"{auth})\n",
                a.port(),
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        if self.config.unix {
            c.push_str(&format!(
                "input(type=\"imuxsock\" Socket=\"{d}/devlog\" CreatePath=\"on\")\n"
            ));
            c.push_str(&format!(
                "input(type=\"imuxsock\" Socket=\"{d}/devlog5424\" UseSpecialParser=\"off\" ParseHostname=\"on\")\n"
            ));
        }
        c.push_str(
            "template(name=\"json\" type=\"list\" option.jsonf=\"on\") {\n\
             property(outname=\"raw\" name=\"rawmsg\" format=\"jsonf\")\n\
             property(outname=\"pri\" name=\"pri\" format=\"jsonf\")\n\
             property(outname=\"version\" name=\"protocol-version\" format=\"jsonf\")\n\
             property(outname=\"timestamp\" name=\"timereported\" dateFormat=\"rfc3339\" format=\"jsonf\")\n\
             property(outname=\"hostname\" name=\"hostname\" format=\"jsonf\")\n\
             property(outname=\"app_name\" name=\"app-name\" format=\"jsonf\")\n\
             property(outname=\"procid\" name=\"procid\" format=\"jsonf\")\n\
             property(outname=\"msgid\" name=\"msgid\" format=\"jsonf\")\n\
             property(outname=\"structured_data\" name=\"structured-data\" format=\"jsonf\")\n\
             property(outname=\"msg\" name=\"msg\" format=\"jsonf\")\n\
             property(outname=\"input\" name=\"inputname\" format=\"jsonf\")\n\
             }\n",
        );
        c.push_str(&format!(
            "if $inputname == \"rsyslogd\" then {{\n action(type=\"omfile\" file=\"{d}/internal.log\")\n stop\n}}\n\
             action(type=\"omfile\" file=\"{d}/received.jsonl\" template=\"json\")\n"
        ));
        c
    }

    /// Writes the config, checks it, starts rsyslogd, waits for `] start`.
    fn launch(&mut self) -> bool {
        let conf = self.path("rsyslog.conf");
        std::fs::write(&conf, self.conf()).unwrap();
        let check = Command::new("rsyslogd")
            .arg("-N1")
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "rsyslog.conf is invalid:\n{}\n{}",
            String::from_utf8_lossy(&check.stderr),
            self.conf()
        );
        let _ = std::fs::remove_file(self.path("internal.log"));
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(self.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let ready = super::wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
            self.internal_log()
                .lines()
                .any(|l| l.trim_end().ends_with("] start"))
                || self
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        let started = ready && alive && self.internal_log().contains("] start");
        // Bound ports: a failed bind is logged by rsyslogd.
        let bind_failed = self.internal_log().contains("Address already in use");
        if started && !bind_failed {
            return true;
        }
        self.stop();
        false
    }

    /// rsyslogd's own messages.
    pub fn internal_log(&self) -> String {
        std::fs::read_to_string(self.path("internal.log")).unwrap_or_default()
    }

    /// Every message received so far (a line rsyslogd is still writing is
    /// left for the next call).
    pub fn received(&self) -> Vec<Received> {
        let mut text = std::fs::read_to_string(self.path("received.jsonl")).unwrap_or_default();
        match text.rfind('\n') {
            Some(end) => text.truncate(end + 1),
            None => text.clear(),
        }
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("rsyslog output line {l:?}: {e}"))
            })
            .collect()
    }

    /// Waits until at least `n` messages have arrived; panics with what
    /// did arrive after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut got = Vec::new();
        let ok = super::wait_until(timeout, Duration::from_millis(20), || {
            got = self.received();
            got.len() >= n
        });
        assert!(
            ok,
            "rsyslog received {} of {n} messages; last: {:?}",
            got.len(),
            got.last()
        );
        got
    }

    /// Stops rsyslogd (SIGTERM by pid, SIGKILL if it lingers).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let exited = super::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Stops and starts again on the same ports, keeping what was received.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "rsyslogd did not restart: {}",
            self.internal_log()
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}
