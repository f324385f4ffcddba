//! The RFC 5424 header: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID `.
//! STRUCTURED-DATA (`-`, or what the `rfc5424` format writes), the space
//! and the optional BOM before MSG are placed by [`super::Encoder`].

use super::{Stamp, syslog_severity};
use crate::event::Event;
use chrono::{DateTime, Timelike, Utc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    /// Start MSG with the UTF-8 BOM, as RFC 5424 asks (many SIEMs show it
    /// as garbage, hence off by default).
    pub bom: bool,
}

/// The BOM that may start a UTF-8 MSG.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Header {
    /// Appends the header up to MSGID and the space after it. TIMESTAMP is
    /// the log's own time (else `stamp.now`), in UTC.
    pub fn write_prefix(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        let pri = u16::from(self.facility) * 8 + u16::from(syslog_severity(ev));
        out.push(b'<');
        super::clock::push_padded(u32::from(pri), 1, out);
        out.extend_from_slice(b">1 ");
        write_timestamp(ev.time.unwrap_or(stamp.now), out);
        out.push(b' ');
        write_token(&self.hostname, 255, out);
        out.push(b' ');
        write_token(&self.app_name, 48, out);
        out.push(b' ');
        write_token(&self.procid, 128, out);
        out.push(b' ');
        write_token(ev.app.as_str(), 32, out);
        out.push(b' ');
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffZ`: milliseconds always (QRadar requires
/// them), microseconds when the time has them.
fn write_timestamp(t: DateTime<Utc>, out: &mut Vec<u8>) {
    let micros = t.nanosecond() / 1000 % 1_000_000;
    super::clock::push_iso_seconds(t, out);
    out.push(b'.');
    if micros.is_multiple_of(1000) {
        super::clock::push_padded(micros / 1000, 3, out);
    } else {
        super::clock::push_padded(micros, 6, out);
    }
    out.push(b'Z');
}

/// A header field: printable ASCII (33..126) only, at most `max`, `-` if
/// nothing is left.
fn write_token(s: &str, max: usize, out: &mut Vec<u8>) {
    // Usually the whole token is already clean.
    if !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b)) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let start = out.len();
    out.extend(s.bytes().filter(|b| (33..=126).contains(b)).take(max));
    if out.len() == start {
        out.push(b'-');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use chrono::FixedOffset;
    use serde_json::json;

    fn header() -> Header {
        Header {
            facility: 1,
            hostname: "collector-1".into(),
            app_name: "siem-agent".into(),
            procid: "4242".into(),
            bom: false,
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            now: crate::event::parse_timestamp("2026-11-23T10:00:00.5").unwrap(),
            local_offset: |_| FixedOffset::east_opt(3600).unwrap(),
        }
    }

    /// The header as the encoder writes it with no structured data.
    fn write(h: &Header, ev: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        h.write_prefix(ev, &stamp(), &mut out);
        out.extend_from_slice(b"- ");
        if h.bom {
            out.extend_from_slice(BOM);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn a_token_is_its_printable_ascii_cut_or_a_dash(s in "[ -~\\x00-\\x1fé]{0,12}", max in 1usize..10) {
            let mut out = Vec::new();
            write_token(&s, max, &mut out);
            let kept: Vec<u8> = s.bytes().filter(|b| (33..=126).contains(b)).take(max).collect();
            let want = if kept.is_empty() { b"-".to_vec() } else { kept };
            proptest::prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn header_with_the_logs_own_time() {
        let ev = Event::from_log(
            App::Investigate,
            json!({"created_timestamp": "2023-01-01T23:23:59", "severity": "critical"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            write(&header(), &ev),
            b"<10>1 2023-01-01T23:23:59.000Z collector-1 siem-agent 4242 Investigate - "
        );
    }

    #[test]
    fn without_a_time_now_is_used_and_bad_tokens_are_cleaned() {
        let ev = Event::from_log(
            App::Detect,
            json!({"severity": "low"}).as_object().unwrap().clone(),
        );
        let h = Header {
            hostname: "bad host\u{e9}".into(),
            app_name: "x".repeat(60),
            procid: String::new(),
            bom: true,
            ..header()
        };
        let out = write(&h, &ev);
        let expected = format!(
            "<13>1 2026-11-23T10:00:00.500Z badhost {} - Detect - \u{feff}",
            "x".repeat(48)
        );
        assert_eq!(out, expected.as_bytes());
    }

    #[test]
    fn no_line_end_in_header_fields() {
        let ev = Event::from_log(App::Detect, serde_json::Map::new());
        let h = Header {
            hostname: "a\u{2028}b\u{85}c\u{b}d\u{c}e".into(),
            app_name: "x\u{2029}y".into(),
            procid: "\u{2028}".into(),
            ..header()
        };
        assert_eq!(
            write(&h, &ev),
            b"<13>1 2026-11-23T10:00:00.500Z abcde xy - Detect - "
        );
    }

    #[test]
    fn parses_with_an_independent_rfc5424_parser() {
        let ev = Event::from_log(
            App::Detect,
            json!({"incident_start_time": "2023-01-02T23:23:59", "severity": "high"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut line = write(&header(), &ev);
        line.extend_from_slice(b"CEF:0|x");
        let msg = syslog_rfc5424::parse_message(String::from_utf8(line).unwrap()).unwrap();
        assert_eq!(msg.hostname.as_deref(), Some("collector-1"));
        assert_eq!(msg.appname.as_deref(), Some("siem-agent"));
        assert_eq!(msg.msgid.as_deref(), Some("Detect"));
        assert_eq!(msg.severity, syslog_rfc5424::SyslogSeverity::SEV_CRIT);
        assert_eq!(msg.facility, syslog_rfc5424::SyslogFacility::LOG_USER);
        assert_eq!(msg.timestamp, Some(1_672_701_839));
        assert_eq!(msg.msg, "CEF:0|x");
    }
}
