//! Static fields (config.json's `"fields"`, such as `{"env": "prod",
//! "tenant": "{tenant}"}`) added to every event, in each format's own way:
//!
//! - CEF: extension keys `name=value` at the end of the extension;
//! - LEEF: attributes `name=value` at the end;
//! - key=value: pairs `name="value"` at the end;
//! - JSON: members at the end of the object;
//! - RFC 5424 structured data: an SD element of their own,
//!   `[fields@32473 name="value" ...]`, after the log's (written by
//!   `sd.rs`).
//!
//! Names are checked when config.json is read: a letter, then letters,
//! digits or `_` (a key in every format), none of the keys the formats
//! write themselves ([`is_reserved`]). The log's own data wins: where a
//! log has a field the format writes under the same name, the static field
//! is left out of that line, so no static value passes for the log's.
//! They are written whole: a size limit (`--max-message-size`) cuts the
//! log's fields first, with room kept for them.

use crate::event::Event;

/// The SD-ID of the static fields' element (32473: RFC 5612's example
/// number, as the log's own SD-ID).
pub const SD_ID: &str = "fields@32473";

/// Whether a static field may not take `name` (case aside): a key the
/// formats write themselves, or one of CEF's or LEEF's predefined keys,
/// which a SIEM would read as the event's own.
pub fn is_reserved(name: &str) -> bool {
    const OWN: &[&str] = &[
        "app",
        "timestamp",
        "siem_agent_truncated",
        "siemAgentTruncated",
        "app_original",
    ];
    OWN.iter().any(|k| k.eq_ignore_ascii_case(name))
        || super::cef::STANDARD_KEYS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
        || super::leef::PREDEFINED
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
}

/// The fields of `fields` that `ev`'s line can carry: those whose name
/// no field of the log is written under in `kv` (the widest rule: `_id`
/// is written `id`) or as is.
fn carried<'a>(
    ev: &Event,
    fields: &'a [(String, String)],
) -> impl Iterator<Item = &'a (String, String)> {
    let clash = |name: &str| {
        ev.fields()
            .iter()
            .any(|(k, _)| k.trim_start_matches('_').eq_ignore_ascii_case(name))
    };
    fields.iter().filter(move |(k, _)| !clash(k))
}

/// Whether a line ends with its header: its `n`th `|` (not escaped by a
/// `\\` when `escaped`, as in CEF's header) is its last byte.
fn header_only(line: &[u8], n: usize, escaped: bool) -> bool {
    let mut seen = 0;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' if escaped => i += 1,
            b'|' => {
                seen += 1;
                if seen == n {
                    return i + 1 == line.len();
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Appends the static fields to the CEF line `line` (from `start` in
/// `out`). Its log fields are custom keys of a prefix of their own or
/// mapped keys (which no static field may be named): all are written.
pub fn cef(fields: &[(String, String)], start: usize, out: &mut Vec<u8>) {
    let mut empty = header_only(&out[start..], 7, true);
    for (k, v) in fields {
        if !empty {
            out.push(b' ');
        }
        empty = false;
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        super::cef::escape_value(v, out);
    }
}

/// Appends the static fields to the LEEF line from `start` in `out`,
/// attributes separated by `delim` (`v2`: LEEF 2.0, whose header has the
/// delimiter field).
pub fn leef(
    ev: &Event,
    fields: &[(String, String)],
    delim: u8,
    v2: bool,
    start: usize,
    out: &mut Vec<u8>,
) {
    let mut empty = header_only(&out[start..], if v2 { 6 } else { 5 }, false);
    for (k, v) in carried(ev, fields) {
        if !empty {
            out.push(delim);
        }
        empty = false;
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        super::leef::escape_value(v, delim, out);
    }
}

/// Appends the static fields to a key=value line, pairs separated by
/// `sep` (a space, or `--kv-separator`).
pub fn kv(ev: &Event, fields: &[(String, String)], sep: &[u8], start: usize, out: &mut Vec<u8>) {
    for (k, v) in carried(ev, fields) {
        if out.len() > start {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        super::kv::escape(v, out);
        out.push(b'"');
    }
}

/// Adds the static fields as members at the end of a JSON object that
/// ends `out`.
pub fn json(ev: &Event, fields: &[(String, String)], out: &mut Vec<u8>) {
    if out.last() != Some(&b'}') {
        return;
    }
    for (k, v) in carried(ev, fields) {
        out.pop();
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        super::json::to_json(k, out);
        out.push(b':');
        super::json::to_json(v, out);
        out.push(b'}');
    }
}

/// The static fields' SD element, `[fields@32473 name="value" ...]`
/// (nothing when there are none).
pub fn sd(fields: &[(String, String)], out: &mut Vec<u8>) {
    if fields.is_empty() {
        return;
    }
    out.push(b'[');
    out.extend_from_slice(SD_ID.as_bytes());
    for (k, v) in fields {
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        super::sd::value(v, out);
    }
    out.push(b']');
}

/// How many bytes the static fields may take in a line (room kept under
/// a size limit): a bound, escapes included.
pub fn room(fields: &[(String, String)]) -> usize {
    fields
        .iter()
        .map(|(k, v)| k.len() + 2 * v.len() + 6)
        .sum::<usize>()
        + if fields.is_empty() {
            0
        } else {
            SD_ID.len() + 3
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use serde_json::json;

    fn ev(v: serde_json::Value) -> Event {
        Event::from_log(App::RestLogs, v.as_object().unwrap().clone())
    }

    #[test]
    fn a_header_alone_takes_no_separator_and_an_escaped_pipe_is_no_end() {
        let f = [("env".to_string(), "p|r=o\\d".to_string())];
        let mut out = b"CEF:0|a|b|c|d|e|5|".to_vec();
        cef(&f, 0, &mut out);
        assert_eq!(out, b"CEF:0|a|b|c|d|e|5|env=p|r\\=o\\\\d");
        // A header field ending in an escaped pipe, then a value ending in one.
        let mut out = b"CEF:0|a|b|c|d\\||e|5|msg=x|".to_vec();
        cef(&f, 0, &mut out);
        assert!(out.ends_with(b"msg=x| env=p|r\\=o\\\\d"));
        let mut out = b"LEEF:2.0|a|b|c|d|^|".to_vec();
        leef(&ev(json!({})), &f, b'^', true, 0, &mut out);
        assert_eq!(out, b"LEEF:2.0|a|b|c|d|^|env=p|r=o\\d");
        let mut out = b"LEEF:1.0|a|b|c|d|k=v".to_vec();
        leef(&ev(json!({})), &f, b'\t', false, 0, &mut out);
        assert_eq!(out, b"LEEF:1.0|a|b|c|d|k=v\tenv=p|r=o\\d");
    }

    #[test]
    fn a_log_field_written_under_the_name_keeps_it() {
        let f = [
            ("id".to_string(), "static".to_string()),
            ("env".to_string(), "prod".to_string()),
        ];
        let e = ev(json!({"_id": "x1"}));
        let mut out = br#"{"_id":"x1"}"#.to_vec();
        json(&e, &f, &mut out);
        assert_eq!(out, br#"{"_id":"x1","env":"prod"}"#);
        let mut out = Vec::new();
        kv(&e, &f, b" ", 0, &mut out);
        assert_eq!(out, br#"env="prod""#);
    }

    #[test]
    fn reserved_names_are_the_formats_own() {
        for k in [
            "src",
            "SUSER",
            "devTime",
            "app",
            "timestamp",
            "msg",
            "cs1Label",
        ] {
            assert!(is_reserved(k), "{k}");
        }
        for k in ["env", "tenant", "siem_tenant", "region"] {
            assert!(!is_reserved(k), "{k}");
        }
    }
}
