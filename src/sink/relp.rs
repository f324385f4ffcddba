//! RELP (the Reliable Event Logging Protocol, v1), over TCP or TLS.
//!
//! Every frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. The session
//! starts with `open` (our offers: `relp_version=0`, our software,
//! `commands=syslog`) and ends with `close`. Each message is a `syslog`
//! command; the server answers each with `rsp` and a status, in order. Up
//! to [`WINDOW`] messages may await their answer.
//!
//! A message counts as delivered only when its `200 OK` has come back: a
//! flush waits for all. When the connection is lost (an I/O error, the
//! server's `serverclose`, no answer in time), the sink reconnects with
//! backoff, opens a new session and resends every unanswered message in
//! order; the receiver may then hold some of those twice, never none.

use super::conn::{self, Conn, Endpoint};
use super::tls::Tls;
use super::{SendRetry, SinkError};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

/// Messages that may await their answer (librelp's default window).
pub const WINDOW: usize = 128;
/// Bytes of frames gathered before a write.
const WRITE_BUFFER: usize = 64 * 1024;
/// The largest TXNR; the next one is 1 again.
const MAX_TXNR: u64 = 999_999_999;

/// One frame of the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u64,
    pub command: String,
    pub data: Vec<u8>,
}

/// Appends `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
pub fn write_frame(txnr: u64, command: &str, data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{txnr} {command} {}", data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Parses one frame from the start of `buf`: `Ok(None)` if it is not all
/// there yet, else the frame and the bytes it took.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let bad = |why: &str| {
        format!(
            "malformed RELP frame ({why}): {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(60)])
        )
    };
    // Header: TXNR SP COMMAND SP DATALEN, then SP DATA or LF.
    let mut fields = [0usize; 3];
    let mut pos = 0;
    let mut starts = [0usize; 3];
    for (i, f) in fields.iter_mut().enumerate() {
        starts[i] = pos;
        while pos < buf.len() && buf[pos] != b' ' && buf[pos] != b'\n' {
            pos += 1;
            if pos - starts[i] > 32 {
                return Err(bad("field too long"));
            }
        }
        if pos == buf.len() {
            return Ok(None);
        }
        *f = pos;
        if i < 2 {
            if buf[pos] != b' ' {
                return Err(bad("short header"));
            }
            pos += 1;
        }
    }
    let num = |a: usize, b: usize| -> Option<u64> {
        let s = std::str::from_utf8(&buf[a..b]).ok()?;
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let txnr = num(starts[0], fields[0]).ok_or_else(|| bad("TXNR"))?;
    let command = std::str::from_utf8(&buf[starts[1]..fields[1]])
        .map_err(|_| bad("command"))?
        .to_string();
    let len = num(starts[2], fields[2]).ok_or_else(|| bad("DATALEN"))? as usize;
    let after = fields[2];
    let (data_start, end) = if len == 0 {
        (after, after)
    } else {
        if buf[after] != b' ' {
            return Err(bad("no data"));
        }
        (after + 1, after + 1 + len)
    };
    if buf.len() <= end {
        return Ok(None);
    }
    if buf[end] != b'\n' {
        return Err(bad("no LF trailer"));
    }
    Ok(Some((
        Frame {
            txnr,
            command,
            data: buf[data_start..end].to_vec(),
        },
        end + 1,
    )))
}

pub struct RelpSink {
    endpoint: Endpoint,
    tls: Option<Tls>,
    target: String,
    conn: Option<Conn>,
    next_txnr: u64,
    /// Sent (or to be sent) and not yet answered: (TXNR, message).
    unanswered: VecDeque<(u64, Vec<u8>)>,
    /// How many of `unanswered` have been written to the connection.
    written: usize,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    retry: SendRetry,
    /// Messages sent again after a lost connection (the receiver may hold
    /// these twice).
    pub resent: u64,
    /// Messages answered `200 OK` since the sink was opened.
    pub answered: u64,
}

impl RelpSink {
    pub async fn connect(
        endpoint: Endpoint,
        tls: Option<Tls>,
        retry: SendRetry,
    ) -> Result<RelpSink, SinkError> {
        let mut sink = RelpSink {
            target: endpoint.to_string(),
            endpoint,
            tls,
            conn: None,
            next_txnr: 1,
            unanswered: VecDeque::with_capacity(WINDOW),
            written: 0,
            wbuf: Vec::with_capacity(WRITE_BUFFER),
            rbuf: Vec::with_capacity(4096),
            retry,
            resent: 0,
            answered: 0,
        };
        sink.with_retry(Step::Connect).await?;
        Ok(sink)
    }

    pub async fn send(&mut self, msg: &[u8]) -> Result<(), SinkError> {
        self.unanswered.push_back((0, msg.to_vec()));
        self.with_retry(Step::Send).await
    }

    /// Returns when every message sent so far has been answered `200 OK`.
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.with_retry(Step::Flush).await
    }

    /// Ends the session (`close`), after a flush.
    pub async fn close(&mut self) -> Result<(), SinkError> {
        self.flush().await?;
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        let txnr = self.next_txnr;
        let mut frame = Vec::new();
        write_frame(txnr, "close", b"", &mut frame);
        let target = self.target.clone();
        let result: Result<(), SinkError> = async {
            c.write_all(&frame)
                .await
                .map_err(|e| SinkError::write(&target, e))?;
            c.flush().await.map_err(|e| SinkError::write(&target, e))?;
            Ok(())
        }
        .await;
        if result.is_ok() {
            // The answer is a courtesy; the messages are confirmed already.
            let _ = tokio::time::timeout(Duration::from_secs(2), self.read_frame()).await;
        }
        self.conn = None;
        Ok(())
    }

    async fn with_retry(&mut self, step: Step) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            let Err(e) = self.try_step(step).await else {
                return Ok(());
            };
            if matches!(e, SinkError::Tls { .. } | SinkError::Refused { .. }) {
                return Err(e);
            }
            self.lost();
            self.retry.back_off(attempt, e, "reconnecting").await?;
            attempt += 1;
        }
    }

    /// The connection is gone: what it was given must be sent again.
    fn lost(&mut self) {
        self.conn = None;
        self.wbuf.clear();
        self.rbuf.clear();
        if self.written > 0 {
            warn!(
                "RELP {}: connection lost with {} messages unanswered; they will be sent again (the receiver may get them twice)",
                self.target, self.written
            );
            self.resent += self.written as u64;
        }
        self.written = 0;
    }

    async fn try_step(&mut self, step: Step) -> Result<(), SinkError> {
        if self.conn.is_none() {
            self.open().await?;
        }
        // Frames for the messages not written yet (all of them after a
        // reconnect), without going past the window.
        while self.written < self.unanswered.len() {
            if self.written >= WINDOW {
                self.write_out().await?;
                self.await_answer().await?;
                continue;
            }
            let txnr = self.take_txnr();
            let (slot, msg) = &mut self.unanswered[self.written];
            *slot = txnr;
            write_frame(txnr, "syslog", msg, &mut self.wbuf);
            self.written += 1;
            if self.wbuf.len() >= WRITE_BUFFER {
                self.write_out().await?;
            }
        }
        match step {
            Step::Connect | Step::Send => Ok(()),
            Step::Flush => {
                self.write_out().await?;
                while !self.unanswered.is_empty() {
                    self.await_answer().await?;
                }
                Ok(())
            }
        }
    }

    fn take_txnr(&mut self) -> u64 {
        let t = self.next_txnr;
        self.next_txnr = if t >= MAX_TXNR { 1 } else { t + 1 };
        t
    }

    /// Connects and opens a session.
    async fn open(&mut self) -> Result<(), SinkError> {
        self.conn = Some(conn::connect(&self.endpoint, self.tls.as_ref()).await?);
        self.next_txnr = 1;
        let offers = format!(
            "relp_version=0\nrelp_software=siem-agent,{},https://github.com/siem-agent\ncommands=syslog",
            env!("CARGO_PKG_VERSION")
        );
        let txnr = self.take_txnr();
        write_frame(txnr, "open", offers.as_bytes(), &mut self.wbuf);
        self.write_out().await?;
        // A listener that does not speak RELP (a plain TCP syslog port)
        // takes the open as a message and never answers: said as soon as
        // a TLS handshake's silence is, and not retried.
        let answer = tokio::time::timeout(super::CONNECT_TIMEOUT, self.read_frame())
            .await
            .map_err(|_| SinkError::Refused {
                target: self.target.clone(),
                reason: format!(
                    "no answer to the RELP open in {} s: the receiver does not speak RELP on this port (a plain TCP syslog listener? use tcp://)",
                    super::CONNECT_TIMEOUT.as_secs()
                ),
            })??;
        let text = String::from_utf8_lossy(&answer.data).to_string();
        if answer.command != "rsp" || answer.txnr != txnr || !text.starts_with("200") {
            return Err(SinkError::Refused {
                target: self.target.clone(),
                reason: format!(
                    "the RELP session was not opened: {}",
                    text.lines().next().unwrap_or("")
                ),
            });
        }
        if !text.lines().any(|l| {
            l.trim() == "commands=syslog"
                || l.trim().starts_with("commands=") && l.contains("syslog")
        }) {
            return Err(SinkError::Refused {
                target: self.target.clone(),
                reason: "the RELP server does not offer the syslog command".into(),
            });
        }
        debug!("RELP {}: session open", self.target);
        Ok(())
    }

    async fn write_out(&mut self) -> Result<(), SinkError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let c = self.conn.as_mut().expect("connected");
        let deadline = self.retry.timeout;
        super::with_deadline(deadline, async {
            c.write_all(&self.wbuf).await?;
            c.flush().await
        })
        .await
        .map_err(|e| SinkError::write(&self.target, e))?;
        self.wbuf.clear();
        Ok(())
    }

    /// Reads the answer to the oldest unanswered message.
    async fn await_answer(&mut self) -> Result<(), SinkError> {
        let f = self.read_frame().await?;
        let Some(&(txnr, _)) = self.unanswered.front() else {
            return Ok(());
        };
        if f.command != "rsp" || f.txnr != txnr {
            return Err(SinkError::write(
                &self.target,
                std::io::Error::other(format!(
                    "unexpected RELP answer '{} {}' (awaiting the answer to {txnr})",
                    f.txnr, f.command
                )),
            ));
        }
        let status = String::from_utf8_lossy(&f.data);
        if !status.starts_with("200") {
            return Err(SinkError::Refused {
                target: self.target.clone(),
                reason: format!(
                    "the RELP server refused a message: {}",
                    status.lines().next().unwrap_or("")
                ),
            });
        }
        self.unanswered.pop_front();
        self.written -= 1;
        self.answered += 1;
        Ok(())
    }

    /// Reads the next frame; `serverclose`, end-of-file or a silent server
    /// are a lost connection.
    async fn read_frame(&mut self) -> Result<Frame, SinkError> {
        loop {
            match parse_frame(&self.rbuf) {
                Ok(Some((frame, used))) => {
                    self.rbuf.drain(..used);
                    if frame.command == "serverclose" {
                        return Err(SinkError::Closed {
                            target: self.target.clone(),
                        });
                    }
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(why) => return Err(SinkError::write(&self.target, std::io::Error::other(why))),
            }
            let c = self.conn.as_mut().expect("connected");
            let mut chunk = [0u8; 4096];
            // An answer that does not come within --send-timeout: the
            // connection counts as lost.
            let wait = self.retry.timeout;
            let n = tokio::time::timeout(wait, c.read(&mut chunk))
                .await
                .map_err(|_| {
                    SinkError::write(
                        &self.target,
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no RELP answer in {} s (--send-timeout)", wait.as_secs()),
                        ),
                    )
                })?
                .map_err(|e| SinkError::write(&self.target, e))?;
            if n == 0 {
                return Err(SinkError::Closed {
                    target: self.target.clone(),
                });
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[derive(Clone, Copy)]
enum Step {
    Connect,
    Send,
    Flush,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_as_librelp_reads_them() {
        let mut out = Vec::new();
        write_frame(1, "open", b"relp_version=0", &mut out);
        write_frame(2, "syslog", b"<13>hello", &mut out);
        write_frame(3, "close", b"", &mut out);
        assert_eq!(
            out,
            b"1 open 14 relp_version=0\n2 syslog 9 <13>hello\n3 close 0\n"
        );
    }

    #[test]
    fn answers_parse_whole_or_wait_for_more() {
        let buf = b"1 rsp 6 200 OK\n0 serverclose 0\n";
        let (f, used) = parse_frame(buf).unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.data.as_slice(), used),
            (1, "rsp", &b"200 OK"[..], 15)
        );
        let (f, _) = parse_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.data.len()),
            (0, "serverclose", 0)
        );
        for cut in 0..15 {
            assert_eq!(parse_frame(&buf[..cut]).unwrap(), None, "{cut}");
        }
        // Data may hold LF (the open answer does).
        let open = b"1 rsp 22 200 OK\nrelp_version=0\n\n";
        let (f, used) = parse_frame(open).unwrap().unwrap();
        assert_eq!((f.data.len(), used), (22, open.len()));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"x rsp 6 200 OK\n"[..],
            b"1 rsp 6 200 OKX",
            b"1 rsp six 200 OK\n",
            b"1\n",
        ] {
            assert!(
                parse_frame(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
