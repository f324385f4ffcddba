//! The Splunk HTTP Event Collector envelope: one JSON object per log,
//! `{"time":1672615439.000,"host":"...","source":"...","sourcetype":"...",
//! "index":"...","event":PAYLOAD}`. `time` is the log's own time (epoch
//! seconds with milliseconds), else the time of writing. The payload is
//! the log's JSON object with `--format json`, else the formatted line as
//! a JSON string. Objects are separated by LF, which HEC accepts in a
//! batch.

use super::Stamp;
use crate::event::{App, Event};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub host: String,
    pub source: String,
    /// `--hec-sourcetype` or config.json's `hec_sourcetype`; `None`: the
    /// stream's own ([`sourcetype_of`]).
    pub sourcetype: Option<String>,
    pub index: Option<String>,
}

impl Header {
    /// Appends everything before the payload, through `"event":`.
    pub fn write_prefix(&self, ev: &Event, stamp: &Stamp, out: &mut Vec<u8>) {
        let t = ev.time.unwrap_or(stamp.now);
        out.extend_from_slice(
            format!(
                "{{\"time\":{}.{:03},\"host\":",
                t.timestamp(),
                t.timestamp_subsec_millis()
            )
            .as_bytes(),
        );
        json_str(&self.host, out);
        out.extend_from_slice(b",\"source\":");
        json_str(&self.source, out);
        out.extend_from_slice(b",\"sourcetype\":");
        json_str(
            self.sourcetype
                .as_deref()
                .unwrap_or_else(|| sourcetype_of(ev.app)),
            out,
        );
        if let Some(index) = &self.index {
            out.extend_from_slice(b",\"index\":");
            json_str(index, out);
        }
        out.extend_from_slice(b",\"event\":");
    }
}

/// Each stream's own sourcetype, so that a Splunk search or props.conf
/// can tell the sources apart.
pub fn sourcetype_of(app: App) -> &'static str {
    match app {
        App::Investigate => "symantec:cloudsoc:investigate",
        App::Detect => "symantec:cloudsoc:detect",
        App::Alerts => "ms:defender:cloudapps:alert",
        App::Activities => "ms:defender:cloudapps:activity",
        App::CirrusLogs => "cirrus:identity:log",
        App::RestLogs => "siem-agent:rest",
        App::SlsShard(_) => "alibaba:sls:log",
    }
}

/// Appends `s` as a JSON string (NEL, U+2028 and U+2029 escaped, as in
/// the `json` format).
pub fn json_str(s: &str, out: &mut Vec<u8>) {
    super::json::to_json(s, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, Envelope, Format, Framing};
    use chrono::{DateTime, FixedOffset, Utc};
    use serde_json::{Value, json};

    fn utc(_: DateTime<Utc>) -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn encode(format: Format, index: Option<&str>) -> Value {
        let ev = Event::from_log(
            App::Detect,
            json!({"_id": "d1", "incident_start_time": "2023-01-02T23:23:59.250", "severity": "high", "message": "a\nb\"c"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let enc = Encoder {
            format,
            envelope: Envelope::Hec(Header {
                host: "collector-1".into(),
                source: "siem-agent".into(),
                sourcetype: None,
                index: index.map(String::from),
            }),
            framing: Framing::Lf,
            version: "1.0".into(),
            max_message_size: None,
            extra: Default::default(),
        };
        let mut out = Vec::new();
        enc.encode(
            &ev,
            &Stamp {
                now: Utc::now(),
                local_offset: utc,
            },
            &mut out,
        );
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn json_logs_are_objects_with_the_logs_time() {
        let v = encode(Format::Json, Some("security"));
        assert_eq!(v["time"], json!(1672701839.25));
        assert_eq!(v["host"], "collector-1");
        assert_eq!(v["sourcetype"], "symantec:cloudsoc:detect");
        assert_eq!(v["index"], "security");
        assert_eq!(v["event"]["app"], "Detect");
        assert_eq!(v["event"]["message"], "a\nb\"c");
    }

    #[test]
    fn header_strings_escape_unicode_line_ends() {
        let mut out = Vec::new();
        json_str("a\u{2028}b\u{85}", &mut out);
        assert_eq!(out, br#""a\u2028b\u0085""#);
    }

    #[test]
    fn other_formats_are_strings() {
        let v = encode(Format::Kv, None);
        assert!(v.get("index").is_none());
        let e = v["event"].as_str().unwrap();
        assert!(
            e.starts_with("timestamp=\"2023-01-02T23:23:59.250Z\" app=\"Detect\""),
            "{e}"
        );
        assert!(e.contains(r#"message="a\nb\"c""#), "{e}");
    }
}
