//! Secrets (the API key secret, the proxy password) and the redactor that
//! keeps them out of every line the agent writes.
//!
//! A [`Secret`] never prints its value through `Debug` or `Display`. As a
//! second line of defence, every secret is registered with [`register`] and
//! [`redact`] replaces it (and the Basic credentials built from it) in every
//! error and log line before it is written.

use std::fmt;
use std::sync::{OnceLock, RwLock};

/// A string that must never be written anywhere.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        let s = Secret(value.into());
        register(&s.0);
        s
    }

    /// The value, for the one place that needs it (building a request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

const MASK: &str = "***";

fn registry() -> &'static RwLock<Vec<String>> {
    static REG: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    REG.get_or_init(|| RwLock::new(Vec::new()))
}

/// Adds a value to the set that [`redact`] removes. Values shorter than
/// three bytes are not registered: masking them would garble every line.
pub fn register(value: &str) {
    if value.len() < 3 {
        return;
    }
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    if !reg.iter().any(|v| v == value) {
        reg.push(value.to_string());
        // Longest first, so that a secret containing another is masked whole.
        reg.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Parameters that name how a page is asked for, never a credential:
/// their values are not registered.
const PLAIN_PARAMS: [&str; 34] = [
    "limit",
    "count",
    "size",
    "page_size",
    "pagesize",
    "per_page",
    "perpage",
    "max",
    "max_results",
    "maxresults",
    "top",
    "sort",
    "sort_by",
    "sortby",
    "order",
    "order_by",
    "orderby",
    "direction",
    "format",
    "fields",
    "filter",
    "type",
    "types",
    "q",
    "query",
    "since",
    "until",
    "from",
    "to",
    "page",
    "offset",
    "include",
    "expand",
    "version",
];

/// Registers the value of a declared REST `params` entry named `name`,
/// which may be an API key (`?api_key=...`), whatever its value looks like
/// (all digits, all letters): every value of 6 characters or more, but
/// for parameters that only say how a page is asked for ([`PLAIN_PARAMS`]:
/// masking `"limit": "1000"` would garble every count) and `true`/`false`.
pub fn register_param(name: &str, value: &str) {
    let plain = PLAIN_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name));
    if plain || value.chars().count() < 6 || matches!(value, "true" | "false") {
        return;
    }
    register(value);
}

/// Replaces every registered secret in `text` with `***`, in each form a
/// server may echo it: raw, percent-encoded (`%2B`, `%2b`, `+` or `%20`
/// for a space), JSON-escaped (`\/`, `\u002b`, any character as a
/// `\uXXXX` escape), and percent-encoded then JSON-escaped.
pub fn redact(text: &str) -> String {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    // Only a text with an escape or a `+` can hold an encoded form: the
    // others (nearly every line) take the plain search.
    let encoded = out.contains(['%', '\\', '+']);
    for v in reg.iter() {
        if encoded {
            out = mask_encoded(&out, v);
        } else if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), MASK);
        }
    }
    out
}

/// `text` with every form of `secret` (see [`redact`]) masked.
fn mask_encoded(text: &str, secret: &str) -> String {
    let Some(first) = secret.chars().next() else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    let bytes = text.as_bytes();
    let mut lead = [0u8; 4];
    let lead = first.encode_utf8(&mut lead).as_bytes()[0];
    while i < text.len() {
        // A form of the secret starts with its first byte, an escape, or
        // `+` (a space): anything else is passed over at once.
        let b = bytes[i];
        let may_start = b == lead || b == b'%' || b == b'\\' || (first == ' ' && b == b'+');
        // The first character must match here before the rest is tried.
        if may_start
            && !stands_for(text, i, first).is_empty()
            && let Some(end) = match_at(text, i, secret)
        {
            out.push_str(&text[copied..i]);
            out.push_str(MASK);
            i = end;
            copied = end;
            continue;
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a form of `secret` that starts at `i` ends (the longest one).
/// The positions each prefix of the secret can end at are carried along
/// (a breadth-first search), so that a text of backslashes, each either
/// itself or the start of an escape, costs no more than any other.
fn match_at(text: &str, i: usize, secret: &str) -> Option<usize> {
    let mut at = vec![i];
    for c in secret.chars() {
        let mut next = Vec::new();
        for &p in &at {
            for end in stands_for(text, p, c) {
                if !next.contains(&end) {
                    next.push(end);
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        at = next;
    }
    at.into_iter().max()
}

/// The ends of the forms of `c` that start at `i` in `text`.
fn stands_for(text: &str, i: usize, c: char) -> Vec<usize> {
    let mut ends = Vec::new();
    for (d, len) in json_units(text, i) {
        if d == c || (c == ' ' && d == '+') {
            ends.push(i + len);
        }
    }
    // Percent-encoded: `%XX` for each of its UTF-8 bytes, hex in either
    // case, each character of which may itself be JSON-escaped.
    let mut buf = [0u8; 4];
    let mut p = i;
    let mut whole = true;
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        match percent_byte(text, p) {
            Some((got, end)) if got == b => p = end,
            _ => {
                whole = false;
                break;
            }
        }
    }
    if whole {
        ends.push(p);
    }
    ends
}

/// The byte a `%XX` at `i` stands for, and where it ends.
fn percent_byte(text: &str, i: usize) -> Option<(u8, usize)> {
    let ascii = |p: usize, want: fn(char) -> bool| {
        json_units(text, p)
            .into_iter()
            .find(|(c, _)| want(*c))
            .map(|(c, len)| (c, p + len))
    };
    let (_, p) = ascii(i, |c| c == '%')?;
    let (h, p) = ascii(p, |c| c.is_ascii_hexdigit())?;
    let (l, p) = ascii(p, |c| c.is_ascii_hexdigit())?;
    let byte = (h.to_digit(16)? * 16 + l.to_digit(16)?) as u8;
    Some((byte, p))
}

/// The characters that `text` at `i` may stand for, each with its length:
/// itself, and when it starts a JSON escape (`\/`, `\n`, `\u002b`, a
/// surrogate pair), the escaped character.
fn json_units(text: &str, i: usize) -> Vec<(char, usize)> {
    let rest = &text[i..];
    let Some(c) = rest.chars().next() else {
        return Vec::new();
    };
    let mut units = vec![(c, c.len_utf8())];
    if c != '\\' {
        return units;
    }
    let b = rest.as_bytes();
    let simple = match b.get(1) {
        Some(b'/') => Some('/'),
        Some(b'\\') => Some('\\'),
        Some(b'"') => Some('"'),
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{c}'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b't') => Some('\t'),
        _ => None,
    };
    if let Some(s) = simple {
        units.push((s, 2));
    }
    let hex4 = |s: &str| -> Option<u32> {
        let h = s.get(2..6)?;
        if !s.starts_with("\\u") || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(h, 16).ok()
    };
    if let Some(u) = hex4(rest) {
        if let Some(ch) = char::from_u32(u) {
            units.push((ch, 6));
        } else if (0xd800..0xdc00).contains(&u)
            && let Some(low) = rest.get(6..).and_then(hex4)
            && (0xdc00..0xe000).contains(&low)
            && let Some(ch) = char::from_u32(0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00))
        {
            units.push((ch, 12));
        }
    }
    units
}

/// The user information (`user:password@`) of a URL-like text, found
/// without parsing it (a URL that fails to parse may still hold a
/// password): `(start, end)` of `user:password@` in `raw`.
fn userinfo_span(raw: &str) -> Option<(usize, usize)> {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let rest = &raw[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((start, start + at + 1))
}

/// Registers the password of a URL-like text (before it is parsed, so that
/// no message about a malformed URL can show it) and returns the text
/// without its user information, fit to be printed or used as a label.
pub fn strip_userinfo(raw: &str) -> String {
    match userinfo_span(raw) {
        None => raw.to_string(),
        Some((start, end)) => {
            let info = &raw[start..end - 1];
            if let Some((_, pass)) = info.split_once(':') {
                register(pass);
            }
            format!("{}{}", &raw[..start], &raw[end..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_registered_and_stripped_without_parsing() {
        assert_eq!(
            strip_userinfo("http://bob:pw-to-hide@[::1:bad/x?q=a@b"),
            "http://[::1:bad/x?q=a@b"
        );
        assert_eq!(redact("say pw-to-hide"), "say ***");
        assert_eq!(strip_userinfo("10.0.0.1:3128"), "10.0.0.1:3128");
        assert_eq!(strip_userinfo("u@host:1"), "host:1");
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn redact_masks_registered_values() {
        let _s = Secret::new("s3cr3t-abc");
        register("s3cr3t-abc-longer");
        let line = redact("got s3cr3t-abc-longer and s3cr3t-abc here");
        assert_eq!(line, "got *** and *** here");
    }

    #[test]
    fn echoed_forms_are_masked() {
        register("k3y+with/sp ace=é");
        for form in [
            "k3y+with/sp ace=é",
            "k3y%2Bwith%2Fsp+ace%3D%C3%A9",
            "k3y%2bwith%2fsp%20ace%3d%c3%a9",
            r"k3y+with\/sp ace=\u00e9",
            r"k3y\u002bwith\u002Fsp\u0020ace\u003d\u00E9",
            r"\u006b\u0033\u0079\u002b\u0077\u0069\u0074\u0068\u002f\u0073\u0070\u0020\u0061\u0063\u0065\u003d\u00e9",
            r"k3y%2Bwith%2Fsp\u002bace%3D%C3%A9",
            r"k3y\u00252Bwith%2Fsp+ace%3D%C3%A9",
        ] {
            assert_eq!(redact(&format!("a {form} b")), "a *** b", "{form}");
        }
        // A surrogate pair, and a near miss left alone.
        register("x\u{1f600}-smile");
        assert_eq!(redact(r"[x\ud83d\ude00-smile]"), "[***]");
        assert_eq!(
            redact("k3y%2Bwith%2Fsp+ace%3D%C3%A8"),
            "k3y%2Bwith%2Fsp+ace%3D%C3%A8"
        );
        // Backslashes in a secret, raw or escaped, cost no more.
        register(r"b\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\z");
        let text = "\\".repeat(5000);
        assert_eq!(redact(&text), text);
    }

    #[test]
    fn params_that_only_say_how_a_page_is_asked_for_are_not_registered() {
        for (k, v) in [
            ("limit", "100000"),
            ("sort", "created_at"),
            ("ORDER", "ascending"),
            ("x", "true"),
            ("x", "json"),
        ] {
            register_param(k, v);
        }
        register_param("api_key", "Ab12Cd34Ef56");
        register_param("token", "902105551234");
        register_param("account", "keyonlyletters");
        assert_eq!(
            redact(
                "config.json 100000 true created_at ascending ?key=Ab12Cd34Ef56&t=902105551234&a=keyonlyletters"
            ),
            "config.json 100000 true created_at ascending ?key=***&t=***&a=***"
        );
    }

    #[test]
    fn tiny_values_are_not_registered() {
        register("zq");
        assert_eq!(redact("zqx zq"), "zqx zq");
    }
}
