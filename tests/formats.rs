//! Snapshots of every format and syslog header on the sample logs of the
//! CloudSOC API reference: what a SIEM receives, byte for byte. Review a
//! change with `cargo insta review` (or INSTA_UPDATE=always, then git diff).

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};
use siem_agent::encode::{Encoder, Envelope, Format, Framing, Stamp, rfc3164, rfc5424};
use siem_agent::event::{App, Event, parse_timestamp};

fn investigate() -> Event {
    log(
        App::Investigate,
        json!({"_id": "AXk3b9f2", "created_timestamp": "2023-01-01T23:23:59",
         "inserted_timestamp": "2023-01-01T23:24:41", "_latency": 42,
         "severity": "informational", "service": "Box", "user": "jdoe@acme.com",
         "user_name": "John Doe", "_domain": "acme.com", "activity_type": "Share",
         "object_type": "File", "name": "Q4.xlsx", "object_name": "/Finance/Q4.xlsx",
         "object_url": "https://app.box.com/f/1", "message": "User shared Q4.xlsx",
         "source": "API", "host": "203.0.113.7", "location": "Paris (France)",
         "city": "Paris", "country": "France", "latitude": "48.85",
         "longitude": "2.35", "browser": "Chrome", "device": "Windows 10",
         "user-agent": "Mozilla/5.0", "transaction_id": "t-1", "policy_type": "DLP"}),
    )
}

fn detect() -> Event {
    log(
        App::Detect,
        json!({"_id": "5f1c0a", "from_detect": 1, "incident_start_time": "2023-01-02T23:23:59",
         "inserted_timestamp": "2023-01-02T23:25:00", "updated_timestamp": "2023-01-02T23:30:00",
         "severity": "high", "threat_score": 87, "ioi_code": "TOO_MANY_DOWNLOADS",
         "message": "Anomalous download volume", "user": "jdoe@acme.com",
         "user_name": "John Doe", "service": "Office 365", "object_type": "File",
         "activity_type": "Download", "hosts": "198.51.100.4",
         "locations": "Paris (France)", "browsers": ["Chrome"], "devices": ["Windows 10"]}),
    )
}

/// A hostile log: every character a format must neutralise.
fn hostile() -> Event {
    log(
        App::Investigate,
        json!({"_id": "h|1=\\\"]", "created_timestamp": "2023-01-03T01:02:03",
         "severity": "critical", "user": "a\tb^c", "message": "line1\nCEF:0|x|y|1|2|forged|10|\r\u{0}end]\"",
         "object_type": "F|i=le", "app": "forged", "nested": {"k": [1, null, true]}, "empty": null}),
    )
}

/// Pipes and a backslash for the LEEF header, TAB and every line end but
/// CR and LF (VT, FF, NEL, U+2028, U+2029) in the values.
fn line_ends() -> Event {
    let ends = "tab\there vt\u{b}ff\u{c}nel\u{85}ls\u{2028}ps\u{2029}end";
    log(
        App::Investigate,
        json!({"_id": "e1", "created_timestamp": "2023-01-03T01:02:03",
         "activity_type": "pipe|in|value\\", "user": ends, "message": ends, "other": ends}),
    )
}

fn log(app: App, v: Value) -> Event {
    Event::from_log(app, v.as_object().unwrap().clone())
}

fn plus_one(_: DateTime<Utc>) -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

fn stamp() -> Stamp {
    Stamp {
        now: parse_timestamp("2026-11-23T10:00:00").unwrap(),
        local_offset: plus_one,
    }
}

const FORMATS: [(&str, Format); 6] = Format::ALL;

fn envelopes() -> Vec<(&'static str, Envelope)> {
    vec![
        ("none", Envelope::None),
        (
            "rfc5424",
            Envelope::Rfc5424(rfc5424::Header {
                facility: 1,
                hostname: "collector-1".into(),
                app_name: "siem-agent".into(),
                procid: "4242".into(),
                bom: false,
            }),
        ),
        (
            "rfc3164",
            Envelope::Rfc3164(rfc3164::Header {
                facility: 1,
                hostname: Some("collector-1".into()),
                tag: "siem-agent".into(),
                pid: 4242,
                time: rfc3164::TimeSource::EventLocal,
            }),
        ),
        (
            "rfc3164 no tag, --utc",
            Envelope::Rfc3164(rfc3164::Header {
                facility: 1,
                hostname: Some("collector-1".into()),
                tag: String::new(),
                pid: 4242,
                time: rfc3164::TimeSource::EventUtc,
            }),
        ),
        (
            "local syslog(3)",
            Envelope::Rfc3164(rfc3164::Header::local(1, "siem-agent", 4242)),
        ),
    ]
}

fn encode(ev: &Event, format: Format, envelope: Envelope, max: Option<usize>) -> String {
    let enc = Encoder {
        format,
        envelope,
        framing: Framing::Datagram,
        version: "1.0".into(),
        max_message_size: max,
        extra: Default::default(),
    };
    let mut out = Vec::new();
    enc.encode(ev, &stamp(), &mut out);
    String::from_utf8(out).unwrap()
}

/// Shows tabs, line ends other than LF, and the BOM if any, visibly.
fn visible(line: &str) -> String {
    line.replace('\t', "<TAB>")
        .replace('\u{feff}', "<BOM>")
        .replace('\u{b}', "<VT>")
        .replace('\u{c}', "<FF>")
        .replace('\u{85}', "<NEL>")
        .replace('\u{2028}', "<LS>")
        .replace('\u{2029}', "<PS>")
}

fn table(ev: &Event) -> String {
    let mut s = String::new();
    for (fname, format) in FORMATS {
        for (ename, envelope) in envelopes() {
            let line = visible(&encode(ev, format, envelope, None));
            s.push_str(&format!("--- {fname} / {ename}\n{line}\n"));
        }
    }
    s
}

#[test]
fn investigate_sample() {
    insta::assert_snapshot!(table(&investigate()));
}

#[test]
fn detect_sample() {
    insta::assert_snapshot!(table(&detect()));
}

#[test]
fn hostile_log() {
    insta::assert_snapshot!(table(&hostile()));
}

/// Each format alone, on a log with TAB, every other line end and a LEEF
/// header field holding pipes and a backslash.
#[test]
fn tabs_line_ends_and_header_pipes() {
    let mut s = String::new();
    for (fname, format) in FORMATS {
        let line = visible(&encode(&line_ends(), format, Envelope::None, None));
        s.push_str(&format!("--- {fname}\n{line}\n"));
    }
    insta::assert_snapshot!(s);
}

#[test]
fn cut_to_480_bytes() {
    let mut s = String::new();
    for (fname, format) in FORMATS {
        let (_, envelope) = envelopes().remove(1);
        let line = encode(&investigate(), format, envelope, Some(480));
        assert!(line.len() <= 480, "{fname}: {} {line}", line.len());
        s.push_str(&format!(
            "--- {fname} ({} bytes)\n{}\n",
            line.len(),
            visible(&line)
        ));
    }
    insta::assert_snapshot!(s);
}
