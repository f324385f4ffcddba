//! RFC 3164 headers: `<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG[PID]: `, the day
//! padded with a space (`Aug  7`).
//!
//! Two uses: the local form that glibc's syslog(3) writes to /dev/log (no
//! HOSTNAME, the time of writing: syslog daemons stamp local messages
//! themselves), and RFC 3164 on the network (HOSTNAME, the log's own time,
//! in local time or UTC).

use super::{Stamp, syslog_severity};
use crate::event::Event;

/// Which time the header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// The time of writing, in local time (as syslog(3)).
    Now,
    /// The log's own time (else now), in local time.
    EventLocal,
    /// The log's own time (else now), in UTC.
    EventUtc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub facility: u8,
    /// `None` for the local form.
    pub hostname: Option<String>,
    pub tag: String,
    pub pid: u32,
    pub time: TimeSource,
}

/// RFC 3164's limit for TAG.
pub const MAX_TAG: usize = 32;

impl Header {
    /// The form glibc's syslog(3) writes to /dev/log.
    pub fn local(facility: u8, tag: &str, pid: u32) -> Header {
        Header {
            facility,
            hostname: None,
            tag: tag.to_string(),
            pid,
            time: TimeSource::Now,
        }
    }

    /// Appends the header, through the space after `TAG[PID]:`.
    pub fn write(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        let pri = u16::from(self.facility) * 8 + u16::from(syslog_severity(ev));
        let utc = match self.time {
            TimeSource::Now => stamp.now,
            TimeSource::EventLocal | TimeSource::EventUtc => ev.time.unwrap_or(stamp.now),
        };
        let when = match self.time {
            TimeSource::EventUtc => utc.format("%b %e %H:%M:%S").to_string(),
            _ => utc
                .with_timezone(&(stamp.local_offset)(utc))
                .format("%b %e %H:%M:%S")
                .to_string(),
        };
        let mut tag: String = self
            .tag
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | ':'))
            .take(MAX_TAG)
            .collect();
        let head = match &self.hostname {
            Some(h) => {
                let h: String = h.chars().filter(char::is_ascii_graphic).take(255).collect();
                let h = if h.is_empty() { "-".to_string() } else { h };
                if tag.is_empty() {
                    // No TAG: `<PRI>TIMESTAMP HOSTNAME MSG`, the header the
                    // CEF and LEEF guides show.
                    format!("<{pri}>{when} {h} ")
                } else {
                    format!("<{pri}>{when} {h} {tag}[{}]: ", self.pid)
                }
            }
            None => {
                if tag.is_empty() {
                    tag = "siem-agent".into();
                }
                format!("<{pri}>{when} {tag}[{}]: ", self.pid)
            }
        };
        out.extend_from_slice(head.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use chrono::{DateTime, FixedOffset, Utc};
    use serde_json::json;

    fn plus2(_: DateTime<Utc>) -> FixedOffset {
        FixedOffset::east_opt(7200).unwrap()
    }
    fn utc(_: DateTime<Utc>) -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn write(h: &Header, now: &str, offset: fn(DateTime<Utc>) -> FixedOffset) -> String {
        let ev = Event::from_log(
            App::Investigate,
            json!({"severity": "warning", "created_timestamp": "2023-01-05T09:08:07"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let stamp = Stamp {
            now: crate::event::parse_timestamp(now).unwrap(),
            local_offset: offset,
        };
        let mut out = Vec::new();
        h.write(&ev, &stamp, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn local_form_is_glibcs_with_a_space_padded_day() {
        let h = Header::local(1, "siem-agent", 77);
        assert_eq!(
            write(&h, "2026-08-07T01:02:03", utc),
            "<12>Aug  7 01:02:03 siem-agent[77]: "
        );
        assert_eq!(
            write(&h, "2026-08-06T23:02:03", plus2),
            "<12>Aug  7 01:02:03 siem-agent[77]: "
        );
        assert_eq!(
            write(&h, "2026-11-23T10:00:00", utc),
            "<12>Nov 23 10:00:00 siem-agent[77]: "
        );
    }

    #[test]
    fn network_form_carries_hostname_and_the_logs_time() {
        let mut h = Header {
            facility: 16,
            hostname: Some("collector 1".into()),
            tag: "siem-agent".into(),
            pid: 5,
            time: TimeSource::EventLocal,
        };
        assert_eq!(
            write(&h, "2026-11-23T10:00:00", plus2),
            "<132>Jan  5 11:08:07 collector1 siem-agent[5]: "
        );
        h.time = TimeSource::EventUtc;
        assert_eq!(
            write(&h, "2026-11-23T10:00:00", plus2),
            "<132>Jan  5 09:08:07 collector1 siem-agent[5]: "
        );
        h.tag = String::new();
        assert_eq!(
            write(&h, "2026-11-23T10:00:00", plus2),
            "<132>Jan  5 09:08:07 collector1 "
        );
    }

    #[test]
    fn tag_is_cleaned_and_cut() {
        let w = |tag: &str| write(&Header::local(1, tag, 77), "2026-11-23T10:00:00", utc);
        assert_eq!(w("a b[c]:d"), "<12>Nov 23 10:00:00 abcd[77]: ");
        assert!(w(&"t".repeat(40)).contains(&format!(" {}[77]", "t".repeat(32))));
        assert!(w("").contains(" siem-agent[77]: "));
    }

    #[test]
    fn no_line_end_in_hostname_or_tag() {
        let h = Header {
            facility: 1,
            hostname: Some("col\u{2028}lec\u{85}tor\u{b}\u{c}1".into()),
            tag: "t\u{2029}a\u{85}g\u{b}".into(),
            pid: 5,
            time: TimeSource::EventUtc,
        };
        assert_eq!(
            write(&h, "2026-11-23T10:00:00", utc),
            "<12>Jan  5 09:08:07 collector1 tag[5]: "
        );
    }
}
