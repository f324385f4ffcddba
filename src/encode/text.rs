//! Text helpers shared by the encoders.

use serde_json::Value;
use std::borrow::Cow;

/// The longest prefix of `s` with at most `max` characters (a cut never
/// splits a character).
pub fn truncate_chars(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s; // never more characters than bytes
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A field value as text for the line formats: strings as they are,
/// numbers and booleans as JSON writes them, null as empty, arrays and
/// objects as compact JSON.
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        other => Cow::Owned(other.to_string()),
    }
}

/// Control characters that no line format may carry raw: C0 (but TAB),
/// DEL. CR and LF are among them, and so are VT and FF, which some readers
/// take for line ends; formats that can escape CR and LF do so before
/// asking.
pub fn is_unsafe_control(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\u{7f}'
}

/// The Unicode line ends beyond ASCII: NEL (U+0085), LINE SEPARATOR
/// (U+2028) and PARAGRAPH SEPARATOR (U+2029). Some consumers (JavaScript,
/// editors, Unicode-aware line splitters) end a line on them, so the text
/// formats never write them raw: [`escape_into`] writes each as a space.
pub fn is_unicode_line_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Appends `s` to `out`, each byte that `escape` maps written as its
/// replacement, runs of other bytes copied whole. Only ASCII bytes can be
/// mapped, so multi-byte characters pass through intact, except the
/// Unicode line ends ([`is_unicode_line_break`]), which always become a
/// space.
pub fn escape_into(s: &str, out: &mut Vec<u8>, escape: impl Fn(u8) -> Option<&'static [u8]>) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // (rep, bytes replaced): 0xC2 and 0xE2 only ever lead a character.
        let hit = match b {
            0..0x80 => escape(b).map(|rep| (rep, 1)),
            0xC2 if bytes.get(i + 1) == Some(&0x85) => Some((&b" "[..], 2)),
            0xE2 if matches!(bytes.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])) => {
                Some((&b" "[..], 3))
            }
            _ => None,
        };
        match hit {
            Some((rep, n)) => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(rep);
                i += n;
                start = i;
            }
            None => i += 1,
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("😀😀", 1), "😀");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn escape_into_replaces_only_mapped_bytes() {
        let mut out = Vec::new();
        escape_into("a=b é\\", &mut out, |b| match b {
            b'=' => Some(b"\\="),
            b'\\' => Some(b"\\\\"),
            _ => None,
        });
        assert_eq!(String::from_utf8(out).unwrap(), "a\\=b é\\\\");
    }

    #[test]
    fn escape_into_writes_unicode_line_ends_as_spaces() {
        let mut out = Vec::new();
        let s = "a\u{85}b\u{2028}c\u{2029}d\u{2027}\u{202a}\u{84}é";
        escape_into(s, &mut out, |_| None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a b c d\u{2027}\u{202a}\u{84}é"
        );
        assert!(s.chars().filter(|&c| is_unicode_line_break(c)).count() == 3);
    }

    #[test]
    fn values_render() {
        assert_eq!(value_text(&json!("a")), "a");
        assert_eq!(value_text(&json!(null)), "");
        assert_eq!(value_text(&json!(87)), "87");
        assert_eq!(value_text(&json!(1.5)), "1.5");
        assert_eq!(value_text(&json!(true)), "true");
        assert_eq!(value_text(&json!(["Chrome", 1])), r#"["Chrome",1]"#);
        assert_eq!(
            value_text(&json!({"a": {"b": null}})),
            r#"{"a":{"b":null}}"#
        );
    }
}
