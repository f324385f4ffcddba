//! Encode: event in, bytes out. Pure: no I/O and no clock (the caller
//! passes the time in a [`Stamp`]), so every rule here is unit- and
//! property-testable.
//!
//! Three independent layers, each one file per variant:
//! - [`Format`]: the payload a SIEM parses (CEF, JSON);
//! - [`Envelope`]: the syslog header around it (RFC 5424, the local
//!   syslog(3) form, or none);
//! - [`Framing`]: how a message is delimited on the wire (LF, octet
//!   counting, or nothing for datagrams).

pub mod cef;
pub mod framing;
pub mod json;
pub mod rfc3164;
pub mod rfc5424;
pub mod text;

use crate::event::Event;
use chrono::{DateTime, FixedOffset, Utc};

pub use framing::Framing;

/// The clock readings an encoder may need, taken once by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Now, in UTC: used where the event has no time of its own, and by
    /// the local syslog header (which, like syslog(3), carries the time of
    /// writing).
    pub now: DateTime<Utc>,
    /// The local time zone's offset now, for headers in local time.
    pub local_offset: FixedOffset,
}

impl Stamp {
    /// Reads the system clock and the local offset.
    pub fn now() -> Stamp {
        let local = chrono::Local::now();
        Stamp {
            now: local.with_timezone(&Utc),
            local_offset: *local.offset(),
        }
    }
}

/// The payload format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cef,
    Json,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["cef", "json"];

    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "cef" => Some(Format::Cef),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Appends the payload for `ev`. Never writes CR, LF or NUL.
    pub fn write(self, ev: &Event, version: &str, out: &mut Vec<u8>) {
        match self {
            Format::Cef => cef::write(ev, version, out),
            Format::Json => json::write(ev, out),
        }
    }
}

/// The syslog header written before the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// The payload alone (STREAM and FILE outputs).
    None,
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (REMOTE).
    Rfc5424(rfc5424::Header),
    /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, as glibc's syslog(3) writes
    /// to /dev/log (SYSLOG).
    Local(rfc3164::LocalHeader),
}

impl Envelope {
    /// Appends the header (including the separator before the payload).
    pub fn write_header(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        match self {
            Envelope::None => {}
            Envelope::Rfc5424(h) => h.write(ev, stamp, out),
            Envelope::Local(h) => h.write(ev, stamp, out),
        }
    }
}

/// Syslog facility `user`, the default.
pub const FACILITY_USER: u8 = 1;

/// The syslog severity (RFC 5424 numbering) for a log's own severity:
/// critical and high 2 (crit), error 3 (err), warning and medium 4
/// (warning), low 5 (notice), informational 6 (info), anything else 5.
pub fn syslog_severity(ev: &Event) -> u8 {
    match ev.severity().as_deref() {
        Some("critical") | Some("high") => 2,
        Some("error") => 3,
        Some("warning") | Some("medium") => 4,
        Some("low") => 5,
        Some("informational") => 6,
        _ => 5,
    }
}

/// Everything needed to turn an event into one frame for a sink.
#[derive(Clone, Debug)]
pub struct Encoder {
    pub format: Format,
    pub envelope: Envelope,
    pub framing: Framing,
    /// The agent's version, as CEF's header Version.
    pub version: String,
}

impl Encoder {
    /// Appends one complete frame for `ev` to `out`.
    pub fn encode(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        let mut msg = Vec::with_capacity(512);
        self.envelope.write_header(ev, stamp, &mut msg);
        self.format.write(ev, &self.version, &mut msg);
        self.framing.frame(&msg, out);
    }
}
