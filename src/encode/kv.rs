//! Splunk key=value: `timestamp="2023-01-01T23:23:59Z" app="Investigate"
//! key="value" ...`, every field of the log in the API's order.
//!
//! - `timestamp` (the log's own time, UTC, when it has one) and `app` come
//!   first, so Splunk's timestamp recognition finds the log's time.
//! - Keys follow Splunk's field-name rules: letters, digits and `_`, not
//!   starting with `_` or a digit. Other characters become `_`, leading
//!   underscores are dropped (`_id` is written `id`), a key that would
//!   start with a digit (or be empty) gets an `f` in front, and a key
//!   already written gets `_2`, `_3`, ... (a log field named `app` is
//!   written `app_2`).
//! - Values are always in double quotes. `"` and `\` are escaped as `\"`
//!   and `\\`, LF and CR as `\n` and `\r` (Splunk's `KV_MODE =
//!   auto_escaped` reads the quote and backslash escapes); every other
//!   control character, TAB included (`\t` is not among Splunk's
//!   auto_escaped escapes), and the Unicode line ends NEL, U+2028 and
//!   U+2029 become a space. Numbers and booleans are written as JSON writes
//!   them, null as `""`, arrays and objects as compact JSON.

use super::Budget;
use super::page_keys::{self, Made, PageKeys};
use super::text::{escape_into_fast, put};
use crate::event::Event;
use chrono::SecondsFormat;
use std::cell::RefCell;

/// The key that flags a line cut by `--max-message-size` (a log field of
/// that name is written `siem_agent_truncated_2`).
pub const TRUNCATED: &str = "siem_agent_truncated";

/// Appends the key=value line for `ev`. Pairs are written whole while they
/// fit `budget`; when one does not, the rest are left out and the line
/// ends with `siem_agent_truncated="true"`.
pub fn write(ev: &Event, out: &mut Vec<u8>, budget: &mut Budget) {
    // Keys worked out once per page (see `page_keys`): when none can
    // repeat another in a line, no line needs its keys tracked.
    page_keys::with(&PAGE_KEYS, ev, &make_key, OWN, |cache| match cache {
        Some(cache) => write_with(ev, cache, out, budget),
        None => write_one_by_one(ev, out, budget),
    });
}

/// What a line writes before its own values.
const OWN: &[&[u8]] = &[b"timestamp=\"", b"app=\"", b"siem_agent_truncated=\""];

/// A field's key and `="`.
fn make_key(name: &str, out: &mut Vec<u8>) -> Made {
    out.extend_from_slice(key(name).as_bytes());
    out.extend_from_slice(b"=\"");
    Made::Compared
}

/// [`write`] with the keys of the page, none the same as another.
fn write_with(ev: &Event, cache: &PageKeys, out: &mut Vec<u8>, budget: &mut Budget) {
    let line = out.len();
    let mut first = true;
    let mut field = |key: &[u8], value: &dyn Fn(&mut Vec<u8>), out: &mut Vec<u8>| {
        if budget.cut {
            return;
        }
        let start = out.len();
        if !first {
            out.push(b' ');
        }
        put(out, key);
        value(out);
        out.push(b'"');
        if budget.fits(out, start) {
            first = false;
        }
    };
    if let Some(t) = ev.time {
        field(b"timestamp=\"", &|out| push_time(t, out), out);
    }
    field(b"app=\"", &|out| escape(ev.app.as_str(), out), out);
    for e in ev.fields().slots() {
        field(cache.key(e.key_id), &|out| escape(e.text, out), out);
    }
    if budget.cut {
        if out.len() > line {
            out.push(b' ');
        }
        out.extend_from_slice(TRUNCATED.as_bytes());
        out.extend_from_slice(b"=\"true\"");
    }
}

/// The Log Service seed program's form (`--kv-separator SEP`):
/// `SEPkey=value` for every field of the log, keys as the API names them
/// (`__topic__`, `__tag__:__client_ip__`), values bare. A Log Service
/// log's `__time__` is left out, as the seed program does (it is the
/// syslog header's time). Unlike the seed program, nothing can forge a
/// pair or a line: `\` is written `\\`, LF and CR `\n` and `\r`, the
/// separator's first character `\` and itself, `=` in a key `\=`, and
/// other control characters (and Unicode line ends) a space. A line cut
/// by `--max-message-size` ends with `SEPsiem_agent_truncated=true`.
pub fn write_separated(ev: &Event, sep: &[u8], out: &mut Vec<u8>, budget: &mut Budget) {
    let sls = matches!(ev.app, crate::event::App::SlsShard(_));
    let first = sep.first().copied().unwrap_or(b'|');
    for (field, value) in ev.fields().iter() {
        if budget.cut {
            break;
        }
        if sls && field == "__time__" {
            continue;
        }
        let start = out.len();
        out.extend_from_slice(sep);
        escape_separated(field, first, true, out);
        out.push(b'=');
        escape_separated(value.text(), first, false, out);
        budget.fits(out, start);
    }
    if budget.cut {
        out.extend_from_slice(sep);
        out.extend_from_slice(TRUNCATED.as_bytes());
        out.extend_from_slice(b"=true");
    }
}

fn escape_separated(s: &str, first: u8, key: bool, out: &mut Vec<u8>) {
    // Runs of plain bytes are copied whole; only the bytes below are
    // looked at one by one (0xC2 and 0xE2 start the C1 controls and the
    // Unicode line ends).
    let special = |b: u8| {
        b < 0x20
            || b == 0x7f
            || b == b'\\'
            || b == first
            || (key && b == b'=')
            || b == 0xC2
            || b == 0xE2
    };
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let run = b[i..]
            .iter()
            .position(|&c| special(c))
            .unwrap_or(b.len() - i);
        out.extend_from_slice(&b[i..i + run]);
        i += run;
        let Some(&c) = b.get(i) else { break };
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c == first => {
                out.push(b'\\');
                out.push(first);
            }
            b'=' => out.extend_from_slice(b"\\="),
            // C1 controls, U+0080 to U+009F (NEL among them).
            0xC2 if matches!(b.get(i + 1), Some(0x80..=0x9F)) => {
                out.push(b' ');
                i += 1;
            }
            // U+2028, U+2029.
            0xE2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) => {
                out.push(b' ');
                i += 2;
            }
            0xC2 | 0xE2 => out.push(c),
            _ => out.push(b' '),
        }
        i += 1;
    }
}

/// Parses `--kv-separator`: 1 to 4 printable ASCII characters, none of
/// them a space, `=` or `\`.
pub fn parse_separator(s: &str) -> Result<([u8; 4], u8), String> {
    let b = s.as_bytes();
    if b.is_empty()
        || b.len() > 4
        || b.iter()
            .any(|&c| !c.is_ascii_graphic() || c == b'=' || c == b'\\')
    {
        return Err(format!(
            "{s:?} is not 1 to 4 printable characters without a space, '=' or '\\' (the seed program's is ||)"
        ));
    }
    let mut sep = [0u8; 4];
    sep[..b.len()].copy_from_slice(b);
    Ok((sep, b.len() as u8))
}

/// The log's time as `to_rfc3339_opts(AutoSi, true)` writes it.
fn push_time(t: chrono::DateTime<chrono::Utc>, out: &mut Vec<u8>) {
    if t.timestamp_subsec_nanos() == 0 && (0..=9999).contains(&chrono::Datelike::year(&t)) {
        super::clock::push_iso_seconds(t, out);
        out.push(b'Z');
    } else {
        out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
    }
}

thread_local! {
    /// The keys of the page being written.
    static PAGE_KEYS: RefCell<PageKeys> = RefCell::new(PageKeys::default());
}

/// [`write`], each key made unique among those already written.
fn write_one_by_one(ev: &Event, out: &mut Vec<u8>, budget: &mut Budget) {
    let line = out.len();
    let mut keys: Vec<String> = Vec::with_capacity(ev.fields().len() + 3);
    keys.push(TRUNCATED.into());
    if let Some(t) = ev.time {
        pair(
            &mut keys,
            "timestamp".into(),
            &t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            line,
            out,
            budget,
        );
    }
    pair(&mut keys, "app".into(), ev.app.as_str(), line, out, budget);
    for (field, value) in ev.fields().iter() {
        pair(&mut keys, key(field), value.text(), line, out, budget);
    }
    if budget.cut {
        if out.len() > line {
            out.push(b' ');
        }
        out.extend_from_slice(TRUNCATED.as_bytes());
        out.extend_from_slice(b"=\"true\"");
    }
}

/// Writes ` key="value"` (no leading space for the first pair), making the
/// key unique among those already written; undoes it if it does not fit.
fn pair(
    keys: &mut Vec<String>,
    key: String,
    value: &str,
    line: usize,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    let start = out.len();
    let key = if keys.contains(&key) {
        (2..)
            .map(|n| format!("{key}_{n}"))
            .find(|k| !keys.contains(k))
            .unwrap_or_default()
    } else {
        key
    };
    if out.len() > line {
        out.push(b' ');
    }
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"=\"");
    escape(value, out);
    out.push(b'"');
    if budget.fits(out, start) {
        keys.push(key);
    }
}

/// A value between double quotes, escaped.
pub(super) fn escape(value: &str, out: &mut Vec<u8>) {
    escape_into_fast(value, out, b"\"\\", |b| match b {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        b if b < 0x20 || b == 0x7f => Some(b" "),
        _ => None,
    });
}

/// A field name as a Splunk key.
pub fn key(field: &str) -> String {
    let mut key: String = field
        .trim_start_matches('_')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        key.insert(0, 'f');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The separated form's escaping, char by char: what the fast one
    /// must equal.
    fn escape_separated_slow(s: &str, first: u8, key: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        for c in s.chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if c.is_ascii() && c as u8 == first => {
                    out.push(b'\\');
                    out.push(first);
                }
                '=' if key => out.extend_from_slice(b"\\="),
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(b' '),
                c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn separated_escaping_is_the_char_by_char_one(s in "\\PC{0,40}|[\\x00-\\x7f\u{80}-\u{9f}\u{2028}\u{2029}\u{e9}\u{2030}|=\\\\]{0,40}", key: bool) {
            let mut fast = Vec::new();
            escape_separated(&s, b'|', key, &mut fast);
            prop_assert_eq!(fast, escape_separated_slow(&s, b'|', key));
        }
    }

    #[test]
    fn the_separated_form_writes_every_pair_and_cannot_be_forged() {
        let ev = Event::from_log(
            crate::event::App::SlsShard(0),
            serde_json::from_value(serde_json::json!({
                "__time__": 1700000000,
                "__topic__": "t",
                "user": "a||user=admin",
                "k=x": "line\nCEF:0|evil",
                "path": "c:\\x",
            }))
            .unwrap(),
        );
        let mut out = Vec::new();
        write_separated(&ev, b"||", &mut out, &mut Budget::unlimited());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r"||__topic__=t||user=a\|\|user=admin||k\=x=line\nCEF:0\|evil||path=c:\\x"
        );
        assert!(parse_separator("||").is_ok());
        assert!(parse_separator("a b").is_err() && parse_separator("").is_err());
        assert!(parse_separator("=").is_err() && parse_separator("|||||").is_err());
    }
    use crate::encode::text::{is_unicode_line_break, is_unsafe_control};
    use crate::event::App;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn line(app: App, v: Value) -> String {
        let ev = Event::from_log(app, v.as_object().unwrap().clone());
        let mut out = Vec::new();
        write(&ev, &mut out, &mut Budget::unlimited());
        String::from_utf8(out).unwrap()
    }

    /// An independent reader of the documented syntax: `key="value"` pairs
    /// separated by one space; inside quotes `\"`, `\\`, `\n`, `\r` are
    /// escapes. Panics on anything else.
    fn parse(line: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut chars = line.chars().peekable();
        while chars.peek().is_some() {
            if !pairs.is_empty() {
                assert_eq!(
                    chars.next(),
                    Some(' '),
                    "pairs are separated by one space: {line:?}"
                );
            }
            let mut key = String::new();
            loop {
                match chars.next().expect("key ends with =") {
                    '=' => break,
                    c => {
                        assert!(
                            c.is_ascii_alphanumeric() || c == '_',
                            "key char {c:?} in {line:?}"
                        );
                        key.push(c)
                    }
                }
            }
            assert!(
                !key.starts_with(|c: char| c == '_' || c.is_ascii_digit()),
                "{key}"
            );
            assert_eq!(chars.next(), Some('"'));
            let mut value = String::new();
            loop {
                match chars.next().expect("value ends with a quote") {
                    '"' => break,
                    '\\' => value.push(match chars.next().expect("escape") {
                        'n' => '\n',
                        'r' => '\r',
                        c @ ('"' | '\\') => c,
                        c => panic!("unknown escape \\{c}"),
                    }),
                    c => {
                        assert!(
                            !is_unsafe_control(c) && !is_unicode_line_break(c) && c != '\t',
                            "raw control {c:?}"
                        );
                        value.push(c)
                    }
                }
            }
            pairs.push((key, value));
        }
        pairs
    }

    proptest! {
        /// The page's keys worked out once write what the line-by-line way
        /// writes, whatever the keys (some the same once made Splunk keys,
        /// some the line's own), times and limits.
        #[test]
        fn a_page_writes_what_the_line_by_line_way_writes(
            logs in prop::collection::vec(
                prop::collection::vec((prop::sample::select(vec!["a", "_a", "a-", "app", "timestamp", "_id", "id", "created_timestamp", "siem_agent_truncated", "x y", "1"]), "[a-z\"\\\\ ]{0,6}"), 0..6),
                1..4,
            ),
            limit in prop::option::of(20usize..200),
        ) {
            let page: Vec<Value> = logs
                .iter()
                .map(|kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        let v = if *k == "created_timestamp" { json!("2023-01-01T00:00:05") } else { json!(v) };
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                })
                .collect();
            let text = serde_json::to_string(&page).unwrap();
            let events = crate::event::json::log_array(App::Investigate, text).unwrap();
            for ev in &events {
                let budget = || Budget::of(limit);
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                write(ev, &mut fast, &mut budget());
                write_one_by_one(ev, &mut slow, &mut budget());
                prop_assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
            }
        }
    }

    #[test]
    fn the_sample_log() {
        let l = line(
            App::Investigate,
            json!({"_id": "AXk3b9f2", "created_timestamp": "2023-01-01T23:23:59", "severity": "informational",
                   "user": "jdoe@acme.com", "message": "User shared \"Q4.xlsx\"", "browsers": ["Chrome", 1],
                   "threat_score": 87, "x": null, "ok": true}),
        );
        assert_eq!(
            l,
            r#"timestamp="2023-01-01T23:23:59Z" app="Investigate" id="AXk3b9f2" created_timestamp="2023-01-01T23:23:59" severity="informational" user="jdoe@acme.com" message="User shared \"Q4.xlsx\"" browsers="[\"Chrome\",1]" threat_score="87" x="" ok="true""#
        );
    }

    #[test]
    fn keys_follow_splunks_rules_and_never_repeat() {
        assert_eq!(key("_id"), "id");
        assert_eq!(key("__source"), "source");
        assert_eq!(key("a.b-c d"), "a_b_c_d");
        assert_eq!(key("9lives"), "f9lives");
        assert_eq!(key("_"), "f");
        assert_eq!(key("é"), "_");
        let pairs = parse(&line(
            App::Detect,
            json!({"app": "forged", "timestamp": "t", "_app": "x", "incident_start_time": "2024-02-03T04:05:06.250Z"}),
        ));
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "app",
                "app_2",
                "timestamp_2",
                "app_3",
                "incident_start_time"
            ]
        );
        assert_eq!(pairs[0].1, "2024-02-03T04:05:06.250Z");
        assert_eq!(pairs[1].1, "Detect");
    }

    #[test]
    fn no_timestamp_without_a_time() {
        assert_eq!(
            line(App::Investigate, json!({"m": "a\u{0}b\tc\r\n"})),
            r#"app="Investigate" m="a b c\r\n""#
        );
    }

    #[test]
    fn tabs_and_other_line_ends_become_spaces() {
        assert_eq!(
            line(
                App::Investigate,
                json!({"m": "a\tb\u{b}c\u{c}d\u{85}e\u{2028}f\u{2029}g"})
            ),
            r#"app="Investigate" m="a b c d e f g""#
        );
    }

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[|=\\\\\"\\]^\t\r\n\u{0}\u{b}\u{c}\u{85}\u{2028}\u{2029} a-zé]{0,30}",
            ".{900,1200}"
        ]
    }

    proptest! {
        #[test]
        fn any_log_reads_back_field_by_field(fields in prop::collection::btree_map("[a-z_]{1,8}", hostile(), 0..8)) {
            let map: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let l = line(App::Investigate, Value::Object(map));
            prop_assert!(!l.contains('\n') && !l.contains('\r') && !l.contains('\0'));
            let pairs = parse(&l);
            prop_assert_eq!(&pairs[0], &("app".to_string(), "Investigate".to_string()));
            prop_assert_eq!(pairs.len(), fields.len() + 1);
            for ((_, want), (_, got)) in fields.iter().zip(&pairs[1..]) {
                let blank = |c: char| c == '\t' || is_unicode_line_break(c) || (is_unsafe_control(c) && c != '\n' && c != '\r');
                let want: String = want.chars().map(|c| if blank(c) { ' ' } else { c }).collect();
                prop_assert_eq!(&want, got);
            }
        }

        #[test]
        fn a_cut_line_keeps_whole_pairs_and_says_so(
            fields in prop::collection::btree_map("[a-z_]{1,8}", hostile(), 1..12),
            limit in 60usize..900,
        ) {
            let map: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let ev = Event::from_log(App::Investigate, map);
            let (mut full, mut cut) = (Vec::new(), Vec::new());
            write(&ev, &mut full, &mut Budget::unlimited());
            let mut budget = Budget { limit, cut: false };
            write(&ev, &mut cut, &mut budget);
            let (full, cut) = (String::from_utf8(full).unwrap(), String::from_utf8(cut).unwrap());
            if full.len() <= limit {
                prop_assert_eq!(&cut, &full);
            } else {
                prop_assert!(cut.len() <= limit + TRUNCATED.len() + 9);
                let mut pairs = parse(&cut);
                prop_assert_eq!(pairs.pop(), Some((TRUNCATED.to_string(), "true".to_string())));
                let whole = parse(&full);
                prop_assert_eq!(&whole[..pairs.len()], &pairs[..]);
            }
        }
    }
}
