//! TCP and TLS count a batch as delivered only once the receiver has
//! acknowledged it. A receiver that accepts connections and never reads
//! (its receive buffer small) used to get the first connection stuck; the
//! agent timed out, reconnected, and the kernel of each new connection took
//! what was left: the run ended with success and the logs reached no one.
//! Now that run fails, its cursor claims only what the receiver read or
//! its kernel acknowledged (it is all in the receiver's sockets), and a run
//! against a receiver that reads delivers the rest.

mod util;

use std::collections::HashSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_rustls::rustls;
use util::agent::{Agent, Sim, cef_id};
use util::certs::Certs;

/// The logs of the simulator (all Investigate).
const EVENTS: usize = 2000;

/// What the receiver reads of its first connection before it stops
/// reading (so that the agent has something to confirm, and the cursor
/// something to claim).
const READ_FIRST: usize = 256 * 1024;

/// The receive buffer asked for on the receiver's sockets (the kernel
/// doubles it): a few logs.
const RECEIVE_BUFFER: libc::c_int = 4096;

/// A listener on 127.0.0.1 whose connections have a receive buffer of
/// `size` bytes (set before `listen`, so that the window offered fits it
/// from the handshake on; std's `TcpListener::bind` listens at once).
fn listener_with_buffer(size: libc::c_int) -> TcpListener {
    // SAFETY: plain socket calls on a descriptor made here, with pointers
    // to locals of the sizes given; the descriptor is handed to the
    // listener, which owns it from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let listener = TcpListener::from_raw_fd(fd);
        let r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        let r = libc::bind(
            fd,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        assert_eq!(
            libc::listen(fd, 128),
            0,
            "listen: {}",
            std::io::Error::last_os_error()
        );
        listener
    }
}

/// How many bytes wait unread in a socket's receive queue.
fn unread(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: an open socket, and FIONREAD writes one int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    assert_eq!(r, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// The test server's TLS configuration (the certificate of `certs`).
fn server_config(certs: &Certs) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs.path("server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.path("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// A connection the receiver holds without reading: its socket and, over
/// TLS, its session (which may hold bytes read with the handshake); and
/// the lines it read before it stopped.
struct Held {
    tcp: TcpStream,
    tls: Option<rustls::ServerConnection>,
    read: Vec<String>,
}

impl Held {
    /// Reads at least `n` bytes (whole lines kept, in `read`), then stops.
    fn read_first(&mut self, n: usize) {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while bytes.len() < n {
            let got = match &mut self.tls {
                None => self.tcp.read(&mut buf),
                Some(s) => rustls::Stream::new(s, &mut self.tcp).read(&mut buf),
            }
            .unwrap();
            assert!(got > 0, "the agent closed after {} bytes", bytes.len());
            bytes.extend_from_slice(&buf[..got]);
        }
        // A line cut at the end is read whole, so that none is counted twice
        // or half.
        while bytes.last() != Some(&b'\n') {
            let got = match &mut self.tls {
                None => self.tcp.read(&mut buf[..1]),
                Some(s) => rustls::Stream::new(s, &mut self.tcp).read(&mut buf[..1]),
            }
            .unwrap();
            assert!(got > 0, "the agent closed inside a line");
            bytes.push(buf[0]);
        }
        self.read = lines(&bytes);
    }

    /// The whole lines among what the connection has now: its unread bytes
    /// (exactly those: reading lets the sender's kernel send more) and,
    /// over TLS, what its session read with the handshake.
    fn what_it_has(mut self) -> Vec<String> {
        let mut bytes = vec![0u8; unread(&self.tcp)];
        self.tcp.read_exact(&mut bytes).unwrap();
        let plain = match &mut self.tls {
            None => bytes,
            Some(session) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    session.read_tls(&mut rest).unwrap();
                    session.process_new_packets().unwrap();
                }
                session.process_new_packets().unwrap();
                let mut plain = Vec::new();
                match session.reader().read_to_end(&mut plain) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("TLS: {e}"),
                }
                plain
            }
        };
        let mut all = self.read;
        all.extend(lines(&plain));
        all
    }
}

/// The whole lines (LF-framed messages) of `bytes`.
fn lines(bytes: &[u8]) -> Vec<String> {
    let mut all: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    all.pop(); // after the last LF: a cut message, or nothing
    all.iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// What a receiver reads of the connections it accepts.
#[derive(Clone, Copy, PartialEq)]
enum Reads {
    /// Each, to the end.
    All,
    /// [`READ_FIRST`] bytes of the first one, then nothing of any.
    First,
    /// Nothing.
    Nothing,
}

/// Accepts connections on `listener` in a thread until stopped: over TLS
/// it completes the handshake of each; then it reads them as `reads` says,
/// to the end into `got`, or keeping them.
struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(TcpListener, Vec<Held>)>>,
    got: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        reads: Reads,
    ) -> Receiver {
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (stop2, got2) = (stop.clone(), got.clone());
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let mut tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Polling the listener: the stop flag is seen soon.
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let session = tls.as_ref().map(|config| {
                    let mut s = rustls::ServerConnection::new(config.clone()).unwrap();
                    while s.is_handshaking() {
                        s.complete_io(&mut tcp).unwrap();
                    }
                    s
                });
                if reads == Reads::All {
                    let got = got2.clone();
                    std::thread::spawn(move || {
                        let mut all = Vec::new();
                        // The end: the agent's close (its TLS close_notify,
                        // or a close without it, or a reset).
                        let _ = match session {
                            None => tcp.read_to_end(&mut all),
                            Some(s) => rustls::StreamOwned::new(s, tcp).read_to_end(&mut all),
                        };
                        got.lock().unwrap().extend(lines(&all));
                    });
                } else {
                    let mut h = Held {
                        tcp,
                        tls: session,
                        read: Vec::new(),
                    };
                    if reads == Reads::First && held.is_empty() {
                        h.read_first(READ_FIRST);
                    }
                    held.push(h);
                }
            }
            (listener, held)
        });
        Receiver {
            stop,
            thread: Some(thread),
            got,
        }
    }

    /// Stops accepting; returns the listener and the connections held.
    fn stop(mut self) -> (TcpListener, Vec<Held>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }

    fn ids(&self) -> HashSet<String> {
        ids(&self.got.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The ids (CEF `externalId`) of `lines`.
fn ids(lines: &[String]) -> HashSet<String> {
    lines.iter().filter_map(|l| cef_id(l)).collect()
}

/// The keys every app's cursor remembers at its second.
fn cursor_ids(a: &Agent) -> Vec<String> {
    let Some(state) = a.state() else {
        return Vec::new(); // nothing confirmed: no cursor yet
    };
    state["cursors"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c["ids"].as_array().cloned().unwrap_or_default())
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// The agent's flags for `target` over `socket_type` (`extra` after).
fn args(socket_type: &str, target: &str, extra: &[&str]) -> Vec<String> {
    [
        "-o",
        "REMOTE",
        "--socket-type",
        socket_type,
        "--framing",
        "lf",
        "--severity",
        "all",
        "-t",
        target,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// A run to a receiver that never reads fails, naming it, and its cursor
/// claims only what the receiver has; a run to one that reads delivers
/// the rest.
fn unread_then_read(socket_type: &str, tls: Option<Arc<rustls::ServerConfig>>, extra: &[&str]) {
    let sim = Sim::start(&["--events", &EVENTS.to_string(), "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let listener = listener_with_buffer(RECEIVE_BUFFER);
    let target = listener.local_addr().unwrap().to_string();
    let receiver = Receiver::start(listener, tls.clone(), Reads::First);
    // One stream: the empty Detect stream, ended while Investigate sends,
    // would confirm the outputs on its own (closing the connection) and
    // meet the stuck receiver first; what this test watches is one
    // stream's cursor against what the receiver has.
    let quick = [
        extra,
        &[
            "--send-timeout",
            "1",
            "--send-retries",
            "2",
            "--elastica_app",
            "investigate",
        ],
    ]
    .concat();
    let out = a
        .cmd()
        .args(args(socket_type, &target, &quick))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (listener, held) = receiver.stop();
    let mut had = HashSet::new();
    for h in held {
        had.extend(ids(&h.what_it_has()));
    }
    // Every log the cursor claims is in the receiver's sockets.
    let claimed = cursor_ids(&a);
    println!(
        "{socket_type}: the receiver had {} of {EVENTS} logs; the cursor remembers {claimed:?}; exit {:?}: {}",
        had.len(),
        out.status.code(),
        stderr.trim_end().lines().last().unwrap_or_default()
    );
    let missing: Vec<&String> = claimed.iter().filter(|id| !had.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "the cursor claims {missing:?}, which the receiver never had ({} logs had; exit {:?}): {stderr}",
        had.len(),
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("error") && last.contains(&target),
        "one line naming the destination: {stderr}"
    );
    assert!(
        !claimed.is_empty() && had.len() < EVENTS,
        "the receiver read some logs, and had not every one: {stderr}"
    );

    // Then it reads: the next run delivers the rest.
    let receiver = Receiver::start(listener, tls, Reads::All);
    let out = a
        .cmd()
        .args(args(socket_type, &target, extra))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = || receiver.ids().union(&had).count();
    util::wait_until(Duration::from_secs(30), Duration::from_millis(20), || {
        all() >= EVENTS
    });
    assert_eq!(all(), EVENTS, "every log arrived at least once");
    receiver.stop();
}

#[test]
fn tcp_to_a_receiver_that_never_reads_fails_and_the_cursor_keeps_the_rest() {
    unread_then_read("TCP", None, &[]);
}

#[test]
fn tls_to_a_receiver_that_never_reads_fails_and_the_cursor_keeps_the_rest() {
    let certs = Certs::new();
    let ca = certs.path("ca.pem");
    unread_then_read(
        "TLS",
        Some(server_config(&certs)),
        &["--tls-ca", ca.to_str().unwrap()],
    );
}

/// A receiver that never reads, its buffer large: each new connection
/// takes what its kernel acknowledges (many batches), and
/// what the agent's kernel queues, and then its writes block. Those
/// connections use up the retries: a new one does not get them all again
/// because the receiver acknowledged something on it.
///
/// One stream (Investigate): a stream that ends while another is still
/// sending confirms what it was given by closing the connection (the next
/// frame opens another), a connection more that is no retry; with the
/// empty Detect stream read side by side, that made 4 connections about
/// half the time.
#[test]
fn tcp_retries_are_not_renewed_by_each_connection_a_stuck_receiver_takes() {
    let sim = Sim::start(&["--events", "20000", "--detect-events", "0"]);
    let a = Agent::new(&sim.url());
    let listener = listener_with_buffer(1 << 20);
    let target = listener.local_addr().unwrap().to_string();
    let receiver = Receiver::start(listener, None, Reads::Nothing);
    let out = a
        .cmd()
        .args(args(
            "TCP",
            &target,
            &[
                "--send-timeout",
                "1",
                "--send-retries",
                "2",
                "--elastica_app",
                "investigate",
            ],
        ))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (_, held) = receiver.stop();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        held.len() <= 3,
        "{} connections for 2 retries: {stderr}",
        held.len()
    );
}
