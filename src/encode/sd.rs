//! The `rfc5424` format: every field of the log as an RFC 5424
//! STRUCTURED-DATA parameter under one private SD-ID, the log's `message`
//! as MSG.
//!
//! `[cloudsoc@32473 _id="AXk3b9f2" created_timestamp="..." ...] User shared Q4.xlsx`
//!
//! - Parameter names are the field names, with every character that RFC
//!   5424 forbids in a name (anything but printable ASCII, `=`, `]`, `"`,
//!   space) written as `_`, cut to 32 characters; a name already written
//!   gets `_2`, `_3`, ... (still within 32 characters).
//! - Values escape `"`, `\` and `]` as `\"`, `\\` and `\]` (the escapes RFC
//!   5424 defines); LF and CR are written as `\n` and `\r`, which an RFC
//!   5424 reader keeps as those two characters; other control characters
//!   (VT and FF, which some readers take for line ends, among them) and
//!   the Unicode line ends NEL, U+2028 and U+2029 become a space. TAB is
//!   kept: RFC 5424 allows it in a quoted PARAM-VALUE and in MSG, and
//!   neither is split on whitespace. Numbers and booleans are written as
//!   JSON writes them, null as `""`, arrays and objects as compact JSON.
//! - MSG is `message` as text with the same treatment of control
//!   characters and line ends (nothing else is escaped in MSG), empty when
//!   there is none.
//! - Cut by `--max-message-size`: MSG keeps the room it needs, up to half
//!   of the limit, and is shortened beyond that (on a character boundary,
//!   never inside an escape); parameters are left out from the first that
//!   does not fit in the rest. The element then ends with
//!   `siem_agent_truncated="true"` (a log field of that name is written
//!   `siem_agent_truncated_2`).
//! - 32473 is the enterprise number RFC 5612 sets aside for examples and
//!   documentation: this SD-ID names our own layout, not a vendor's.

use super::Budget;
use super::page_keys::{self, Made, PageKeys};
use super::text::{escape_into, escape_into_fast, put};
use crate::event::{Event, Known};
use std::cell::RefCell;

/// The SD-ID CloudSOC's fields are written under.
pub const SD_ID: &str = "cloudsoc@32473";

/// The SD-ID a log's fields are written under: its vendor's.
pub fn sd_id(ev: &Event) -> &'static str {
    match ev.app.vendor() {
        crate::event::Vendor::Mcas => "mcas@32473",
        crate::event::Vendor::Cirrus => "cirrus@32473",
        crate::event::Vendor::Rest => "rest@32473",
        crate::event::Vendor::Sls => "sls@32473",
        crate::event::Vendor::CloudSoc => SD_ID,
    }
}

/// RFC 5424's limit for SD-NAME.
const MAX_NAME: usize = 32;

/// The parameter that flags a message cut by `--max-message-size`.
pub const TRUNCATED: &str = "siem_agent_truncated";

/// Appends `STRUCTURED-DATA SP [BOM] MSG` for `ev` within `budget`.
pub fn write(
    ev: &Event,
    bom: bool,
    statics: &[(String, String)],
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    // MSG is written first (its length decides the room of the
    // parameters), into a buffer kept for the next log.
    MSG.with(|m| match m.try_borrow_mut() {
        Ok(mut msg) => {
            msg.clear();
            write_msg(ev, &mut msg);
            write_with_msg(ev, &msg, bom, statics, out, budget);
        }
        Err(_) => {
            let mut msg = Vec::new();
            write_msg(ev, &mut msg);
            write_with_msg(ev, &msg, bom, statics, out, budget);
        }
    });
}

thread_local! {
    static MSG: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn write_with_msg(
    ev: &Event,
    msg: &[u8],
    bom: bool,
    statics: &[(String, String)],
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    let bom: &[u8] = if bom { super::rfc5424::BOM } else { b"" };
    // Under a limit, MSG (what a SIEM shows first) keeps the room it needs,
    // up to half of what is left; the parameters get the rest.
    let reserve = if budget.limit == usize::MAX {
        0
    } else {
        (msg.len() + 2 + bom.len()).min(budget.limit.saturating_sub(out.len()) / 2)
    };
    let mut params = Budget {
        limit: budget.limit.saturating_sub(reserve),
        cut: false,
    };
    write_sd(ev, out, &mut params);
    if !params.cut && out.len() + 2 + bom.len() + msg.len() <= budget.limit {
        out.push(b']');
        super::fields::sd(statics, out);
        out.push(b' ');
        out.extend_from_slice(bom);
        out.extend_from_slice(msg);
        return;
    }
    budget.cut = true;
    out.extend_from_slice(b" siem_agent_truncated=\"true\"]");
    super::fields::sd(statics, out);
    out.push(b' ');
    out.extend_from_slice(bom);
    // As much of MSG as fits, escaping character by character.
    let text = ev.known_text(Known::Message);
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let start = out.len();
        escape_into(c.encode_utf8(&mut buf), out, control);
        if out.len() > budget.limit {
            out.truncate(start);
            break;
        }
    }
}

/// Appends `[SD_ID name="value" ...` (without the closing bracket): every
/// field but `message`, while they fit `budget`.
fn write_sd(ev: &Event, out: &mut Vec<u8>, budget: &mut Budget) {
    out.push(b'[');
    out.extend_from_slice(sd_id(ev).as_bytes());
    // Names worked out once per page (see `page_keys`): when none can
    // repeat another in the element, no line needs its names tracked.
    page_keys::with(&PAGE_NAMES, ev, &make_name, OWN, |cache| {
        let Some(cache) = cache else {
            params_one_by_one(ev, out, budget);
            return;
        };
        let message = 1u32 << Known::Message as u32;
        for e in ev.fields().slots() {
            if e.known_bit == message {
                continue;
            }
            if budget.cut {
                break;
            }
            let start = out.len();
            put(out, cache.key(e.key_id));
            value(e.text, out);
            budget.fits(out, start);
        }
    });
}

/// What an element writes before its own value.
const OWN: &[&[u8]] = &[b" siem_agent_truncated=\""];

/// ` name="` for a key (`message` is not a parameter).
fn make_name(key: &str, out: &mut Vec<u8>) -> Made {
    out.push(b' ');
    out.extend_from_slice(param_name(key).as_bytes());
    out.extend_from_slice(b"=\"");
    if key == "message" {
        Made::Apart
    } else {
        Made::Compared
    }
}

thread_local! {
    /// The parameter names of the page being written.
    static PAGE_NAMES: RefCell<PageKeys> = RefCell::new(PageKeys::default());
}

/// A parameter's value, escaped, and its closing quote.
pub(super) fn value(text: &str, out: &mut Vec<u8>) {
    escape_into_fast(text, out, b"\"\\]", |b| match b {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        b']' => Some(b"\\]"),
        _ => control(b),
    });
    out.push(b'"');
}

/// The parameters of `ev`, each name made unique among those already
/// written.
fn params_one_by_one(ev: &Event, out: &mut Vec<u8>, budget: &mut Budget) {
    let mut names: Vec<String> = Vec::with_capacity(ev.fields().len() + 1);
    names.push(TRUNCATED.into());
    for (field, val) in ev.fields().iter() {
        if field == "message" {
            continue;
        }
        let base = param_name(field);
        let name = if names.contains(&base) {
            (2..)
                .map(|n| {
                    let suffix = format!("_{n}");
                    format!(
                        "{}{suffix}",
                        &base[..MAX_NAME.min(base.len()).min(MAX_NAME - suffix.len())]
                    )
                })
                .find(|k| !names.contains(k))
                .unwrap_or_default()
        } else {
            base
        };
        let start = out.len();
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        value(val.text(), out);
        if budget.fits(out, start) {
            names.push(name);
        }
    }
}

/// Appends MSG: the log's `message`, control characters made safe.
fn write_msg(ev: &Event, out: &mut Vec<u8>) {
    if let Some(m) = ev.known(Known::Message) {
        escape_into_fast(m.text(), out, b"", control);
    }
}

fn control(b: u8) -> Option<&'static [u8]> {
    match b {
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        b'\t' => None,
        b if b < 0x20 || b == 0x7f => Some(b" "),
        _ => None,
    }
}

/// A field name as an SD-NAME (ASCII only, so byte slicing is safe).
pub fn param_name(field: &str) -> String {
    let name: String = field
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if name.is_empty() { "_".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::text::{is_unicode_line_break, is_unsafe_control};
    use crate::event::App;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// The SD element and MSG for `v`, split at the first `] `.
    fn encode(v: Value) -> (String, String) {
        let ev = Event::from_log(App::Investigate, v.as_object().unwrap().clone());
        let mut out = Vec::new();
        write(&ev, false, &[], &mut out, &mut Budget::unlimited());
        let line = String::from_utf8(out).unwrap();
        let (_, rest) = parse(&line);
        let sd = line[..line.len() - rest.len()].to_string();
        (
            sd,
            rest.strip_prefix(' ').expect("SP before MSG").to_string(),
        )
    }

    proptest! {
        /// The page's names worked out once write what the name-by-name
        /// way writes, whatever the keys (some the same once made names:
        /// `a=`/`a]`, two long keys that share their first 32 characters,
        /// the truncation flag's own) and limits.
        #[test]
        fn a_page_writes_what_the_name_by_name_way_writes(
            logs in prop::collection::vec(
                prop::collection::vec((prop::sample::select(vec!["a", "a=", "a]", "message", "siem_agent_truncated", "x y", "k0123456789012345678901234567890123", "k0123456789012345678901234567890124", "é"]), "[a-z\"\\\\\\] ]{0,6}"), 0..6),
                1..4,
            ),
            limit in prop::option::of(20usize..200),
        ) {
            let page: Vec<Value> = logs
                .iter()
                .map(|kv| Value::Object(kv.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()))
                .collect();
            let text = serde_json::to_string(&page).unwrap();
            let events = crate::event::json::log_array(App::Investigate, text).unwrap();
            for ev in &events {
                let budget = || Budget::of(limit);
                let (mut fast, mut slow) = (Vec::new(), b"[".to_vec());
                write_sd(ev, &mut fast, &mut budget());
                slow.extend_from_slice(SD_ID.as_bytes());
                params_one_by_one(ev, &mut slow, &mut budget());
                prop_assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
            }
        }
    }

    /// An independent reader of one SD-ELEMENT, from RFC 5424 section 6.3:
    /// names are 1..32 printable ASCII but `= ] "` and space; in values a
    /// backslash escapes only `"`, `\` and `]` (before anything else it is
    /// an ordinary character).
    /// An SD-ID and its parameters.
    type Element = (String, Vec<(String, String)>);

    fn parse(sd: &str) -> (Element, &str) {
        let inner = sd.strip_prefix('[').expect("[");
        let mut chars = inner.chars().peekable();
        let mut id = String::new();
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == ']' {
                break;
            }
            id.push(c);
            chars.next();
        }
        let mut params = Vec::new();
        loop {
            match chars.next().expect("element ends with ]") {
                ']' => break,
                ' ' => {}
                c => panic!("unexpected {c:?} in {sd:?}"),
            }
            let mut name = String::new();
            loop {
                match chars.next().expect("=") {
                    '=' => break,
                    c => {
                        assert!(
                            c.is_ascii_graphic() && c != ']' && c != '"',
                            "name char {c:?}"
                        );
                        name.push(c)
                    }
                }
            }
            assert!((1..=32).contains(&name.len()), "{name}");
            assert_eq!(chars.next(), Some('"'));
            let mut value = String::new();
            loop {
                match chars.next().expect("closing quote") {
                    '"' => break,
                    '\\' => match chars.peek() {
                        Some(&c @ ('"' | '\\' | ']')) => {
                            value.push(c);
                            chars.next();
                        }
                        _ => value.push('\\'),
                    },
                    c => value.push(c),
                }
            }
            params.push((name, value));
        }
        let rest: String = chars.collect();
        assert!(!rest.starts_with('['), "one element: {sd:?}");
        ((id, params), &sd[sd.len() - rest.len()..])
    }

    #[test]
    fn the_sample_log() {
        let (sd, msg) = encode(
            json!({"_id": "AXk3b9f2", "created_timestamp": "2023-01-01T23:23:59", "message": "User shared Q4.xlsx",
                                      "browsers": ["Chrome"], "threat_score": 87, "x": null, "path": "a]b\\c\"d"}),
        );
        assert_eq!(
            sd,
            r#"[cloudsoc@32473 _id="AXk3b9f2" created_timestamp="2023-01-01T23:23:59" browsers="[\"Chrome\"\]" threat_score="87" x="" path="a\]b\\c\"d"]"#
        );
        assert_eq!(msg, "User shared Q4.xlsx");
        assert_eq!(
            encode(json!({})),
            ("[cloudsoc@32473]".into(), String::new())
        );
    }

    #[test]
    fn names_are_valid_and_unique() {
        assert_eq!(param_name("a b=c]d\"é"), "a_b_c_d__");
        assert_eq!(param_name(""), "_");
        assert_eq!(param_name(&"n".repeat(40)).len(), 32);
        let (sd, _) = encode(
            json!({"a b": 1, "a=b": 2, "a_b": 3, "a]b": 4, &"z".repeat(33): 5, &"z".repeat(34): 6}),
        );
        let ((_, params), _) = parse(&sd);
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        let z30 = "z".repeat(30);
        assert_eq!(
            names,
            [
                "a_b",
                "a_b_2",
                "a_b_3",
                "a_b_4",
                &"z".repeat(32),
                &format!("{z30}_2")
            ]
        );
    }

    #[test]
    fn line_breaks_are_written_as_escapes() {
        let (sd, msg) = encode(json!({"message": "a\r\nb\u{0}\tc", "m": "x\ny"}));
        assert_eq!(sd, r#"[cloudsoc@32473 m="x\ny"]"#);
        assert_eq!(msg, "a\\r\\nb \tc");
    }

    #[test]
    fn other_line_ends_become_spaces_in_params_and_msg() {
        let v = "a\tb\u{b}c\u{c}d\u{85}e\u{2028}f\u{2029}g";
        let (sd, msg) = encode(json!({"message": v, "m": v}));
        assert_eq!(sd, "[cloudsoc@32473 m=\"a\tb c d e f g\"]");
        assert_eq!(msg, "a\tb c d e f g");
        // Cut, MSG is written character by character: the same rule.
        let ev = Event::from_log(
            App::Investigate,
            json!({"message": v, "k": "x".repeat(200)})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut out = Vec::new();
        write(
            &ev,
            false,
            &[],
            &mut out,
            &mut Budget {
                limit: 100,
                cut: false,
            },
        );
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("\"] a\tb c d e f g"), "{out}");
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
        fn any_log_reads_back_as_one_element(fields in prop::collection::btree_map("[a-z]{1,6}", hostile(), 0..8), message in hostile()) {
            let mut map: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            map.insert("message".into(), Value::String(message.clone()));
            let (sd, msg) = encode(Value::Object(map));
            let breaks = ['\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}'];
            prop_assert!(!sd.contains(breaks) && !msg.contains(breaks));
            let ((id, params), _) = parse(&sd);
            prop_assert_eq!(id, SD_ID);
            let render = |s: &str| -> String {
                s.chars().map(|c| match c {
                    '\n' => "\\n".to_string(),
                    '\r' => "\\r".to_string(),
                    c if is_unsafe_control(c) || is_unicode_line_break(c) => " ".to_string(),
                    c => c.to_string(),
                }).collect()
            };
            let want: Vec<(String, String)> = fields.iter().filter(|(k, _)| *k != "message").map(|(k, v)| (k.clone(), render(v))).collect();
            prop_assert_eq!(params, want);
            prop_assert_eq!(msg, render(&message));
        }

        #[test]
        fn a_cut_message_keeps_whole_params_and_says_so(
            fields in prop::collection::btree_map("[a-z]{1,6}", hostile(), 0..8),
            message in hostile(),
            limit in 60usize..900,
        ) {
            let mut map: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            map.insert("message".into(), Value::String(message));
            let ev = Event::from_log(App::Investigate, map);
            let (mut full, mut cut) = (Vec::new(), Vec::new());
            write(&ev, false, &[], &mut full, &mut Budget::unlimited());
            let mut budget = Budget { limit, cut: false };
            write(&ev, false, &[], &mut cut, &mut budget);
            let (full, cut) = (String::from_utf8(full).unwrap(), String::from_utf8(cut).unwrap());
            if full.len() <= limit {
                prop_assert_eq!(&cut, &full);
            } else {
                prop_assert!(cut.len() <= limit.max(SD_ID.len() + 2) + 32, "{}", cut.len());
                let ((_, full_params), full_msg) = parse(&full);
                let ((_, mut params), msg) = parse(&cut);
                prop_assert_eq!(params.pop(), Some((TRUNCATED.to_string(), "true".to_string())));
                prop_assert_eq!(&full_params[..params.len()], &params[..]);
                // MSG, if any is left, is the start of the whole one.
                let msg = msg.strip_prefix(' ').unwrap_or(msg);
                let full_msg = full_msg.strip_prefix(' ').unwrap();
                prop_assert!(full_msg.starts_with(msg));
            }
        }
    }
}
