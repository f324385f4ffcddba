//! Encode: event in, bytes out. Pure: no I/O and no clock (the caller
//! passes the time in a [`Stamp`]), so every rule here is unit- and
//! property-testable.
//!
//! Three independent layers, each one file per variant:
//! - [`Format`]: the payload a SIEM parses (CEF, LEEF, key=value, JSON,
//!   RFC 5424 structured data);
//! - [`Envelope`]: the syslog header around it (RFC 5424, RFC 3164 and the
//!   local syslog(3) form, or none);
//! - [`Framing`]: how a message is delimited on the wire (LF, octet
//!   counting, or nothing for datagrams).

pub mod cef;
pub mod clock;
pub mod declared;
pub mod fields;
pub mod framing;
pub mod hec;
pub mod json;
pub mod kv;
pub mod leef;
pub mod mcas;
pub mod page_keys;
pub mod rfc3164;
pub mod rfc5424;
pub mod sd;
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
    /// The local time zone: its UTC offset at a given instant (it differs
    /// across daylight-saving changes, so a backfill needs it per event).
    pub local_offset: fn(DateTime<Utc>) -> FixedOffset,
}

impl Stamp {
    /// Reads the system clock; local times use the system's time zone.
    pub fn now() -> Stamp {
        Stamp {
            now: Utc::now(),
            local_offset: system_offset,
        }
    }
}

/// The system time zone's offset at `t`.
pub fn system_offset(t: DateTime<Utc>) -> FixedOffset {
    *t.with_timezone(&chrono::Local).offset()
}

/// How much of a payload fits: each format writes its fields whole while
/// they end within `limit`, and from the first that does not, none (a
/// message is cut on a field boundary, never inside a value or escape).
/// `cut` tells the format to end the payload with its truncation flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: usize,
    pub cut: bool,
}

impl Budget {
    /// No limit.
    pub fn unlimited() -> Budget {
        Budget {
            limit: usize::MAX,
            cut: false,
        }
    }

    /// At most `limit` bytes, or no limit.
    pub fn of(limit: Option<usize>) -> Budget {
        Budget {
            limit: limit.unwrap_or(usize::MAX),
            cut: false,
        }
    }

    /// Called after writing a field that began at `start`: keeps it if
    /// nothing was cut before and it ends within the limit, else removes
    /// it (and marks the payload cut).
    pub fn fits(&mut self, out: &mut Vec<u8>, start: usize) -> bool {
        if !self.cut && out.len() <= self.limit {
            return true;
        }
        self.cut = true;
        out.truncate(start);
        false
    }
}

/// Room kept for a truncation flag and the payload's closing characters.
const FLAG_ROOM: usize = 40;

/// The payload format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ArcSight CEF.
    Cef,
    /// QRadar LEEF 2.0 with the given attribute delimiter.
    Leef { delimiter: u8 },
    /// QRadar LEEF 1.0 (tab-delimited).
    Leef1,
    /// Splunk `key="value"` pairs.
    Kv,
    /// `SEPkey=value` pairs (`--kv-separator`, the Log Service seed
    /// program's form): the separator's bytes, 1 to 4.
    KvSeparated { sep: [u8; 4], len: u8 },
    /// One JSON object.
    Json,
    /// Every field as RFC 5424 structured data, the message as MSG.
    Rfc5424,
}

impl Format {
    /// Every format, by its `--format` name (LEEF with its default
    /// delimiter, a tab): what tests and benchmarks go through.
    pub const ALL: [(&'static str, Format); 6] = [
        ("cef", Format::Cef),
        ("leef", Format::Leef { delimiter: b'\t' }),
        ("leef1", Format::Leef1),
        ("kv", Format::Kv),
        ("json", Format::Json),
        ("rfc5424", Format::Rfc5424),
    ];

    /// Appends the payload for `ev` within `budget`. Never writes CR, LF
    /// or NUL. `bom` applies to the `rfc5424` format only (it starts MSG).
    pub fn write(
        self,
        ev: &Event,
        version: &str,
        bom: bool,
        extra: &Extra,
        out: &mut Vec<u8>,
        budget: &mut Budget,
    ) {
        let start = out.len();
        let statics = &extra.fields[..];
        let mapping = extra
            .mapping
            .as_ref()
            .filter(|_| ev.app == crate::event::App::RestLogs);
        match (self, mapping) {
            (Format::Cef, Some(m)) => cef::write_mapped(ev, version, m, out, budget),
            (Format::Leef { delimiter }, Some(m)) => {
                leef::write_mapped(ev, version, leef::Version::V2(delimiter), m, out, budget)
            }
            (Format::Leef1, Some(m)) => {
                leef::write_mapped(ev, version, leef::Version::V1, m, out, budget)
            }
            _ => self.write_own(ev, version, bom, statics, out, budget),
        }
        if statics.is_empty() {
            return;
        }
        match self {
            Format::Cef => fields::cef(statics, start, out),
            Format::Leef { delimiter } => fields::leef(ev, statics, delimiter, true, start, out),
            Format::Leef1 => fields::leef(ev, statics, b'\t', false, start, out),
            Format::Kv => fields::kv(ev, statics, b" ", start, out),
            Format::KvSeparated { sep, len } => {
                fields::kv(ev, statics, &sep[..usize::from(len)], start, out)
            }
            Format::Json => fields::json(ev, statics, out),
            Format::Rfc5424 => {}
        }
    }

    /// The format's own layout of `ev`.
    fn write_own(
        self,
        ev: &Event,
        version: &str,
        bom: bool,
        statics: &[(String, String)],
        out: &mut Vec<u8>,
        budget: &mut Budget,
    ) {
        match self {
            Format::Cef => cef::write(ev, version, out, budget),
            Format::Leef { delimiter } => {
                leef::write(ev, version, leef::Version::V2(delimiter), out, budget)
            }
            Format::Leef1 => leef::write(ev, version, leef::Version::V1, out, budget),
            Format::Kv => kv::write(ev, out, budget),
            Format::KvSeparated { sep, len } => {
                kv::write_separated(ev, &sep[..usize::from(len)], out, budget)
            }
            Format::Json => json::write(ev, out, budget),
            Format::Rfc5424 => sd::write(ev, bom, statics, out, budget),
        }
    }
}

/// The syslog header written before the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// The payload alone.
    None,
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
    Rfc5424(rfc5424::Header),
    /// `<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG[PID]: MSG` (RFC 3164, and the
    /// local syslog(3) form without HOSTNAME).
    Rfc3164(rfc3164::Header),
    /// A Splunk HEC event object around the payload.
    Hec(hec::Header),
}

/// Syslog facility `user`, the default.
pub const FACILITY_USER: u8 = 1;

/// The facility names, by number (RFC 5424 table 1, as syslog(3) and
/// rsyslog name them).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Parses `--facility`: a name (any case) or 0..23.
pub fn parse_facility(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>() {
        return if n < 24 {
            Ok(n)
        } else {
            Err(format!("'{s}' is not a facility number (0-23)"))
        };
    }
    FACILITIES
        .iter()
        .position(|f| f.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| format!("'{s}' is not a facility (kern, user, mail, daemon, auth, syslog, ..., local0-local7, or 0-23)"))
}

/// The syslog severity (RFC 5424 numbering) for a log's own severity:
/// critical and high 2 (crit), error 3 (err), warning and medium 4
/// (warning), low 5 (notice), informational 6 (info), anything else 5
/// (6 for a Log Service log, as the seed program writes every log).
pub fn syslog_severity(ev: &Event) -> u8 {
    match ev.severity().as_deref() {
        Some("critical") | Some("high") => 2,
        Some("error") => 3,
        Some("warning") | Some("medium") => 4,
        Some("low") => 5,
        Some("informational") => 6,
        // The Log Service seed program's default.
        _ if matches!(ev.app, crate::event::App::SlsShard(_)) => 6,
        _ => 5,
    }
}

/// The SIEM severity (CEF 0..10, LEEF `sev` 1..10) for a log's severity:
/// informational 3, warning 5, error 7, critical 10; low 3, medium 6,
/// high 9; anything else 5.
pub fn severity_number(ev: &Event) -> u8 {
    match ev.severity().as_deref() {
        Some("informational") | Some("low") => 3,
        Some("warning") => 5,
        Some("medium") => 6,
        Some("error") => 7,
        Some("high") => 9,
        Some("critical") => 10,
        _ => 5,
    }
}

/// Everything needed to turn an event into one frame for a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoder {
    pub format: Format,
    pub envelope: Envelope,
    pub framing: Framing,
    /// The agent's version, as CEF's and LEEF's header Version.
    pub version: String,
    /// `--max-message-size`: longer messages (without framing) are cut.
    pub max_message_size: Option<usize>,
    /// What the config adds: static fields, a declared API's mapping.
    pub extra: std::sync::Arc<Extra>,
}

/// What one config adds to the encoding of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// Static fields added to every event (config.json's `"fields"`).
    pub fields: Vec<(String, String)>,
    /// How a declared REST API's records look in CEF and LEEF.
    pub mapping: Option<declared::Mapping>,
}

impl Encoder {
    /// Appends one complete frame for `ev` to `out`.
    pub fn encode(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        ev.prefetch();
        if out.is_empty() && self.framing.ends_the_message() {
            // The message is the start of the frame: written in place.
            self.write_message(ev, stamp, out);
            self.framing.end(out);
            return;
        }
        thread_local! {
            /// The message before framing, kept from one log to the next.
            static MSG: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        MSG.with(|m| match m.try_borrow_mut() {
            Ok(mut msg) => {
                msg.clear();
                self.encode_with(ev, stamp, &mut msg, out);
                if msg.capacity() > 1 << 20 {
                    *msg = Vec::new(); // not kept after a huge log
                }
            }
            Err(_) => self.encode_with(ev, stamp, &mut Vec::new(), out),
        })
    }

    fn encode_with(&self, ev: &Event, stamp: &Stamp, msg: &mut Vec<u8>, out: &mut Vec<u8>) {
        self.write_message(ev, stamp, msg);
        self.framing.frame(msg, out);
    }

    /// Writes the message for `ev` (no framing) to `msg`, which is empty.
    fn write_message(&self, ev: &Event, stamp: &Stamp, msg: &mut Vec<u8>) {
        debug_assert!(msg.is_empty());
        if let Envelope::Hec(h) = &self.envelope {
            h.write_prefix(ev, stamp, msg);
            if self.format == Format::Json {
                self.format.write(
                    ev,
                    &self.version,
                    false,
                    &self.extra,
                    msg,
                    &mut Budget::unlimited(),
                );
            } else {
                let mut payload = Vec::with_capacity(1024);
                self.format.write(
                    ev,
                    &self.version,
                    false,
                    &self.extra,
                    &mut payload,
                    &mut Budget::unlimited(),
                );
                hec::json_str(&String::from_utf8_lossy(&payload), msg);
            }
            msg.push(b'}');
            return;
        }
        let bom = match &self.envelope {
            Envelope::Hec(_) => unreachable!("handled above"),
            Envelope::None => false,
            Envelope::Rfc3164(h) => {
                h.write(ev, stamp, msg);
                false
            }
            Envelope::Rfc5424(h) => {
                h.write_prefix(ev, stamp, msg);
                if self.format != Format::Rfc5424 {
                    // No structured data: `-`, then MSG (the payload).
                    msg.extend_from_slice(b"- ");
                    if h.bom {
                        msg.extend_from_slice(rfc5424::BOM);
                    }
                }
                h.bom
            }
        };
        let payload = msg.len();
        self.format.write(
            ev,
            &self.version,
            bom,
            &self.extra,
            msg,
            &mut Budget::unlimited(),
        );
        if let Some(max) = self.max_message_size
            && msg.len() > max
        {
            msg.truncate(payload);
            // Room kept for the static fields, written whole after the
            // log's.
            let mut budget = Budget {
                limit: max.saturating_sub(FLAG_ROOM + fields::room(&self.extra.fields)),
                cut: false,
            };
            self.format
                .write(ev, &self.version, bom, &self.extra, msg, &mut budget);
            if msg.len() > max {
                // Not even the header fits: a hard cut.
                hard_cut(msg, max);
            }
        }
    }
}

#[cfg(test)]
impl Encoder {
    /// `format` in RFC 5424 (host `h`, app `a`), LF-framed, cut at
    /// `max_message_size`.
    pub(crate) fn for_tests(format: Format, max_message_size: Option<usize>) -> Encoder {
        Encoder {
            format,
            envelope: Envelope::Rfc5424(rfc5424::Header {
                facility: 1,
                hostname: "h".into(),
                app_name: "a".into(),
                procid: "1".into(),
                bom: false,
            }),
            framing: Framing::Lf,
            version: "1".into(),
            max_message_size,
            extra: Default::default(),
        }
    }
}

/// Cuts `msg` to at most `max` bytes on a character boundary, dropping a
/// backslash left dangling at the end (the start of a cut escape).
fn hard_cut(msg: &mut Vec<u8>, max: usize) {
    let mut end = max.min(msg.len());
    while end > 0 && end < msg.len() && (msg[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    msg.truncate(end);
    let backslashes = msg.iter().rev().take_while(|&&b| b == b'\\').count();
    if backslashes % 2 == 1 {
        msg.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use serde_json::json;

    fn utc(_: DateTime<Utc>) -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn one_lf_framed_line_per_event_whatever_the_format() {
        let ev = Event::from_log(
            App::Investigate,
            json!({"_id": "a\nb", "message": "x\r\ny", "created_timestamp": "2023-01-01T00:00:00"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let stamp = Stamp {
            now: ev.time.unwrap(),
            local_offset: utc,
        };
        for (_, format) in Format::ALL {
            let enc = Encoder::for_tests(format, None);
            let mut out = Vec::new();
            enc.encode(&ev, &stamp, &mut out);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "{format:?}");
            assert_eq!(out.last(), Some(&b'\n'));
            let line = String::from_utf8(out).unwrap();
            let parsed = syslog_rfc5424::parse_message(line.trim_end()).unwrap();
            assert_eq!(parsed.msgid.as_deref(), Some("Investigate"), "{format:?}");
            if format == Format::Rfc5424 {
                assert!(parsed.sd.find_tuple(sd::SD_ID, "_id").is_some(), "{line}");
            }
        }
    }

    #[test]
    fn severity_numbers() {
        for (s, n) in [
            ("informational", 3),
            ("warning", 5),
            ("error", 7),
            ("critical", 10),
            ("low", 3),
            ("medium", 6),
            ("high", 9),
            ("odd", 5),
        ] {
            let ev = Event::from_log(
                App::Investigate,
                json!({"severity": s}).as_object().unwrap().clone(),
            );
            assert_eq!(severity_number(&ev), n, "{s}");
        }
    }

    fn envelopes() -> Vec<Envelope> {
        vec![
            Envelope::None,
            Envelope::Rfc5424(rfc5424::Header {
                facility: 16,
                hostname: "collector-1".into(),
                app_name: "siem-agent".into(),
                procid: "4242".into(),
                bom: true,
            }),
            Envelope::Rfc3164(rfc3164::Header::local(1, "siem-agent", 4242)),
            Envelope::Rfc3164(rfc3164::Header {
                facility: 1,
                hostname: Some("collector-1".into()),
                tag: String::new(),
                pid: 4242,
                time: rfc3164::TimeSource::EventUtc,
            }),
        ]
    }

    const FORMATS: [Format; 6] = [
        Format::Cef,
        Format::Leef { delimiter: b'^' },
        Format::Leef1,
        Format::Kv,
        Format::Json,
        Format::Rfc5424,
    ];

    #[test]
    fn a_hard_cut_never_splits_a_character_or_leaves_half_an_escape() {
        let mut m = "abé".as_bytes().to_vec();
        hard_cut(&mut m, 3);
        assert_eq!(m, b"ab");
        let mut m = br"ab\\\n".to_vec(); // cut after the 3rd backslash
        hard_cut(&mut m, 5);
        assert_eq!(m, b"ab\\\\");
        let mut m = b"a\\n".to_vec();
        hard_cut(&mut m, 2);
        assert_eq!(m, b"a");
    }

    use proptest::prelude::*;

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[|=\\\\\"\\]^\t\r\n\u{0}\u{b}\u{c}\u{85}\u{2028}\u{2029} a-z\u{e9}]{0,30}",
            ".{500,3000}"
        ]
    }

    proptest! {
        #[test]
        fn every_format_and_envelope_gives_one_frame_within_the_limit(
            other in prop::collection::btree_map("[a-z_]{1,10}", hostile(), 0..10),
            message in hostile(),
            max in prop::option::of(480usize..4000),
            octets in any::<bool>(),
            statics in prop::collection::vec(
                ("[a-z][a-z0-9_]{0,8}".prop_filter("not reserved", |k| !fields::is_reserved(k)),
                 "[|=\\\\\"\\]^\t\r\n\u{85} a-z]{0,20}"),
                0..3,
            ),
        ) {
            let mut fields = serde_json::Map::new();
            fields.insert("_id".into(), json!("id-1"));
            fields.insert("created_timestamp".into(), json!("2023-01-01T23:23:59"));
            fields.insert("message".into(), serde_json::Value::String(message));
            // Other fields never replace the three above (a generated
            // `_id` did, once).
            for (k, v) in other {
                if !matches!(k.as_str(), "_id" | "created_timestamp" | "message") {
                    fields.insert(k, serde_json::Value::String(v));
                }
            }
            let ev = Event::from_log(App::Investigate, fields);
            let stamp = Stamp { now: ev.time.unwrap(), local_offset: utc };
            for format in FORMATS {
                for envelope in envelopes() {
                    let is5424 = matches!(envelope, Envelope::Rfc5424(_));
                    let enc = Encoder {
                        format,
                        envelope,
                        framing: if octets { Framing::OctetCounted } else { Framing::Lf },
                        version: "1.0".into(),
                        max_message_size: max,
                        extra: std::sync::Arc::new(Extra { fields: statics.clone(), mapping: None }),
                    };
                    let mut out = Vec::new();
                    enc.encode(&ev, &stamp, &mut out);
                    let msg = if octets {
                        let sp = out.iter().position(|&b| b == b' ').unwrap();
                        let len: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
                        prop_assert_eq!(len, out.len() - sp - 1, "{:?}", format);
                        out[sp + 1..].to_vec()
                    } else {
                        prop_assert_eq!(out.last(), Some(&b'\n'));
                        out[..out.len() - 1].to_vec()
                    };
                    prop_assert!(!msg.contains(&b'\n') && !msg.contains(&b'\r') && !msg.contains(&0), "{:?}", format);
                    if let Some(max) = max {
                        prop_assert!(msg.len() <= max, "{:?}: {} > {}", format, msg.len(), max);
                    }
                    let text = String::from_utf8(msg).unwrap();
                    // No other line end either, header or payload.
                    prop_assert!(!text.contains(['\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}']), "{:?}: {}", format, text);
                    if is5424 {
                        let parsed = syslog_rfc5424::parse_message(&text);
                        prop_assert!(parsed.is_ok(), "{:?}: {}", format, text);
                        let parsed = parsed.unwrap();
                        prop_assert_eq!(parsed.msgid.as_deref(), Some("Investigate"));
                        prop_assert_eq!(parsed.hostname.as_deref(), Some("collector-1"));
                        if format == Format::Rfc5424 {
                            prop_assert_eq!(parsed.sd.find_tuple(sd::SD_ID, "_id").map(String::as_str), Some("id-1"));
                            // Each static field whole, however the log was cut.
                            for (k, _) in &statics {
                                prop_assert!(parsed.sd.find_tuple(fields::SD_ID, k).is_some(), "{}", text);
                            }
                        }
                    }
                }
            }
        }
    }
}
