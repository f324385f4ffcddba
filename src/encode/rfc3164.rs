//! The header glibc's syslog(3) writes to /dev/log:
//! `<PRI>Mmm dd hh:mm:ss TAG[PID]: `, the day padded with a space, the
//! time of writing in local time (syslog daemons stamp local messages
//! with their own clock anyway).

use super::{Stamp, syslog_severity};
use crate::event::Event;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalHeader {
    pub facility: u8,
    pub tag: String,
    pub pid: u32,
}

/// RFC 3164's limit for TAG.
const MAX_TAG: usize = 32;

impl LocalHeader {
    /// Appends `<PRI>Mmm dd hh:mm:ss TAG[PID]: `.
    pub fn write(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        let pri = u16::from(self.facility) * 8 + u16::from(syslog_severity(ev));
        let local = stamp.now.with_timezone(&stamp.local_offset);
        let mut tag: String = self
            .tag
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | ':'))
            .take(MAX_TAG)
            .collect();
        if tag.is_empty() {
            tag = "siem-agent".into();
        }
        let head = format!(
            "<{pri}>{} {tag}[{}]: ",
            local.format("%b %e %H:%M:%S"),
            self.pid
        );
        out.extend_from_slice(head.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use chrono::FixedOffset;
    use serde_json::json;

    fn write(tag: &str, now: &str, offset: i32) -> String {
        let h = LocalHeader {
            facility: 1,
            tag: tag.into(),
            pid: 77,
        };
        let ev = Event::from_log(
            App::Investigate,
            json!({"severity": "warning"}).as_object().unwrap().clone(),
        );
        let stamp = Stamp {
            now: crate::event::parse_timestamp(now).unwrap(),
            local_offset: FixedOffset::east_opt(offset).unwrap(),
        };
        let mut out = Vec::new();
        h.write(&ev, &stamp, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn glibc_form_with_a_space_padded_day_in_local_time() {
        assert_eq!(
            write("siem-agent", "2026-08-07T01:02:03", 0),
            "<12>Aug  7 01:02:03 siem-agent[77]: "
        );
        assert_eq!(
            write("siem-agent", "2026-08-06T23:02:03", 7200),
            "<12>Aug  7 01:02:03 siem-agent[77]: "
        );
        assert_eq!(
            write("siem-agent", "2026-11-23T10:00:00", 0),
            "<12>Nov 23 10:00:00 siem-agent[77]: "
        );
    }

    #[test]
    fn tag_is_cleaned_and_cut() {
        assert_eq!(
            write("a b[c]:d", "2026-11-23T10:00:00", 0),
            "<12>Nov 23 10:00:00 abcd[77]: "
        );
        let long = write(&"t".repeat(40), "2026-11-23T10:00:00", 0);
        assert!(long.contains(&format!(" {}[77]", "t".repeat(32))));
        assert!(write("", "2026-11-23T10:00:00", 0).contains(" siem-agent[77]: "));
    }
}
