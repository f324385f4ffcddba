//! A last-resort repair pass for JSON pages that serde_json refused.
//!
//! serde_json rejects a whole document when a single value in it is one of
//! two kinds:
//!
//! * a string holding a lone UTF-16 surrogate escape, such as `"\ud800"`,
//!   `"\udc00x"` or `"\ud800\u0041"` (a high surrogate that is not followed
//!   by a low one);
//! * a number whose magnitude does not fit in an `f64`, such as `1e400`,
//!   `-1e400` or an integer with 400 digits.
//!
//! It also refuses a whole document nested deeper than its recursion limit
//! (128): one log nested that deep would block its source for good, every
//! run failing on the same page. A value nested deeper than
//! [`MAX_NESTING`] is kept as a string of its JSON text.
//!
//! [`repair`] rewrites just those values and copies every other byte as it
//! is, so that the rest of the page can still be read. It is meant to be
//! called only after serde_json has already failed on a body.

/// The result of a successful [`repair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The rewritten JSON text.
    pub bytes: Vec<u8>,
    /// How many strings (object keys included) had at least one lone
    /// surrogate escape replaced. A string with several lone surrogates
    /// counts once.
    pub strings: u64,
    /// How many out-of-range numbers were turned into strings.
    pub numbers: u64,
    /// How many values nested too deeply were turned into strings.
    pub deep: u64,
}

/// Nesting kept as it is: an array or object that would open a deeper
/// level becomes a string of its JSON text. Low enough that a log taken
/// out of a page is read by the lean reader ([`crate::event::json`], 100
/// levels from a page's top) as well as by serde_json (128).
pub const MAX_NESTING: u32 = 90;

/// The escape written in place of a lone surrogate escape.
const REPLACEMENT_ESCAPE: &[u8] = b"\\ufffd";

/// Rewrites a JSON text so that serde_json can read it: every lone surrogate
/// escape inside a string becomes `\ufffd`; every number that would overflow
/// f64 (its magnitude is infinite when parsed as f64) becomes a JSON string
/// holding the number's raw text. Everything else is copied byte for byte.
/// Returns None when nothing needed repair (so the caller reports the original error).
///
/// The scan is a single forward pass over the input with no recursion, so
/// deeply nested or hostile input costs time in proportion to its length
/// and nothing more. The input does not have to be valid JSON: where its
/// structure is broken, bytes are simply copied through.
///
/// A number counts as out of range when `str::parse::<f64>` gives an
/// infinity, and also when serde_json's default (not `float_roundtrip`)
/// number parser would report "number out of range" for it. The two differ
/// only in a thin band just above `f64::MAX`, such as
/// `1.7976931348623158e308`, which serde_json's default parser rejects
/// although it rounds to `f64::MAX`.
pub fn repair(input: &[u8]) -> Option<Repaired> {
    let mut out: Vec<u8> = Vec::new();
    // Everything before `copied` has already been handled: either written
    // to `out` or (while `out` is still empty and nothing was repaired)
    // left to be copied in one piece later.
    let mut copied = 0usize;
    let mut strings = 0u64;
    let mut numbers = 0u64;
    let mut deep = 0u64;
    // Arrays and objects open here (outside strings).
    let mut depth = 0u32;

    let mut i = 0usize;
    let len = input.len();
    while i < len {
        let b = input[i];
        if matches!(b, b'[' | b'{') && depth >= MAX_NESTING {
            // A value one level too deep, whole and well formed (else it
            // is copied, and the document stays refused): its text.
            if let Some(end) = value_end(input, i) {
                out.extend_from_slice(&input[copied..i]);
                write_string(&input[i..end], &mut out);
                i = end;
                copied = end;
                deep += 1;
                continue;
            }
            depth += 1;
            i += 1;
        } else if matches!(b, b'[' | b'{') {
            depth += 1;
            i += 1;
        } else if matches!(b, b']' | b'}') {
            depth = depth.saturating_sub(1);
            i += 1;
        } else if b == b'"' {
            // Scan one string, from its opening quote to its closing quote
            // (or to the end of the input when it is never closed).
            i += 1;
            let mut fixed_here = false;
            while i < len {
                match input[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => match lone_surrogate_at(input, i) {
                        Escape::Lone => {
                            out.extend_from_slice(&input[copied..i]);
                            out.extend_from_slice(REPLACEMENT_ESCAPE);
                            i += 6;
                            copied = i;
                            fixed_here = true;
                        }
                        Escape::Skip(n) => i += n,
                    },
                    _ => i += 1,
                }
            }
            if fixed_here {
                strings += 1;
            }
        } else if is_word_byte(b) {
            // A run of bytes that could belong to a number or a literal such
            // as `true`. Taking the whole run at once means a number is only
            // recognised when it stands on its own, never inside a word.
            let start = i;
            while i < len && is_word_byte(input[i]) {
                i += 1;
            }
            let raw = &input[start..i];
            // A number before a `:` stands where a key must be a string:
            // that document is broken, not repaired into a valid one.
            let key = input[i..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b':');
            if is_json_number(raw) && number_overflows(raw) && !key {
                out.extend_from_slice(&input[copied..start]);
                out.push(b'"');
                out.extend_from_slice(raw);
                out.push(b'"');
                copied = i;
                numbers += 1;
            }
        } else {
            i += 1;
        }
    }

    if strings == 0 && numbers == 0 && deep == 0 {
        return None;
    }
    out.extend_from_slice(&input[copied..]);
    Some(Repaired {
        bytes: out,
        strings,
        numbers,
        deep,
    })
}

/// `text` as a JSON string: quotes and backslashes escaped, control
/// characters (whitespace between tokens) as `\u00XX`.
fn write_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Where the JSON value (an array or an object) that starts at `start`
/// ends, when it is whole and well formed: its grammar is checked with a
/// stack, not recursion, so that any depth costs only its length.
/// Strings are checked for their escapes and raw control characters
/// only (a lone surrogate is text like any other here); numbers and
/// literals for their form.
fn value_end(input: &[u8], start: usize) -> Option<usize> {
    /// What may come next.
    #[derive(Clone, Copy, PartialEq)]
    enum Want {
        /// A value (`]` too, right after `[`).
        Value {
            or_close: bool,
        },
        /// A key (`}` too, right after `{`).
        Key {
            or_close: bool,
        },
        Colon,
        /// `,` or the close of the innermost container.
        Next,
    }
    let mut stack: Vec<u8> = Vec::new();
    let mut want = Want::Value { or_close: false };
    let mut i = start;
    while i < input.len() {
        let b = input[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        match (want, b) {
            (Want::Value { .. }, b'[') | (Want::Value { .. }, b'{') => {
                stack.push(b);
                want = if b == b'[' {
                    Want::Value { or_close: true }
                } else {
                    Want::Key { or_close: true }
                };
                i += 1;
            }
            (Want::Value { or_close: true }, b']')
            | (Want::Key { or_close: true }, b'}')
            | (Want::Next, b']' | b'}') => {
                let open = stack.pop()?;
                if (open == b'[') != (b == b']') {
                    return None;
                }
                i += 1;
                if stack.is_empty() {
                    return Some(i);
                }
                want = Want::Next;
            }
            (Want::Next, b',') => {
                want = match stack.last() {
                    Some(b'[') => Want::Value { or_close: false },
                    _ => Want::Key { or_close: false },
                };
                i += 1;
            }
            (Want::Colon, b':') => {
                want = Want::Value { or_close: false };
                i += 1;
            }
            (Want::Value { .. } | Want::Key { .. }, b'"') => {
                i = string_end(input, i)?;
                want = if matches!(want, Want::Key { .. }) {
                    Want::Colon
                } else {
                    Want::Next
                };
            }
            (Want::Value { .. }, _) if is_word_byte(b) => {
                let from = i;
                while i < input.len() && is_word_byte(input[i]) {
                    i += 1;
                }
                let raw = &input[from..i];
                if !(is_json_number(raw) || matches!(raw, b"true" | b"false" | b"null")) {
                    return None;
                }
                want = Want::Next;
            }
            _ => return None,
        }
    }
    None
}

/// Where the string that opens at `start` ends (after its closing quote),
/// when its escapes are well formed and it holds no raw control byte.
fn string_end(input: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *input.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *input.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    unicode_escape_at(input, i)?;
                    i += 6;
                }
                _ => return None,
            },
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// What to do with the escape sequence that starts at a backslash.
enum Escape {
    /// A lone surrogate escape: six bytes `\uXXXX` to be replaced.
    Lone,
    /// Anything else: this many bytes to copy unchanged.
    Skip(usize),
}

/// Looks at the escape that starts with the backslash at `at` inside a
/// string. A valid surrogate pair is skipped as a whole (twelve bytes), any
/// other escape as its two leading bytes or its full `\uXXXX` form.
fn lone_surrogate_at(input: &[u8], at: usize) -> Escape {
    let unit = match unicode_escape_at(input, at) {
        Some(unit) => unit,
        // A simple escape such as `\"` or `\\`, a broken one, or a
        // backslash at the very end: step over the backslash and the byte
        // after it, so an escaped quote or backslash is never misread.
        None => return Escape::Skip(2),
    };
    match unit {
        0xD800..=0xDBFF => match unicode_escape_at(input, at + 6) {
            Some(0xDC00..=0xDFFF) => Escape::Skip(12),
            _ => Escape::Lone,
        },
        0xDC00..=0xDFFF => Escape::Lone,
        _ => Escape::Skip(6),
    }
}

/// Reads a `\uXXXX` escape (hex digits in either case) starting at `at`,
/// returning the UTF-16 code unit it names.
fn unicode_escape_at(input: &[u8], at: usize) -> Option<u16> {
    let bytes = input.get(at..at.checked_add(6)?)?;
    if bytes[0] != b'\\' || bytes[1] != b'u' {
        return None;
    }
    let mut unit = 0u16;
    for &h in &bytes[2..] {
        let digit = match h {
            b'0'..=b'9' => h - b'0',
            b'a'..=b'f' => h - b'a' + 10,
            b'A'..=b'F' => h - b'A' + 10,
            _ => return None,
        };
        unit = (unit << 4) | u16::from(digit);
    }
    Some(unit)
}

/// Bytes that may be part of a bare token outside strings: numbers and the
/// literals `true`, `false` and `null`.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Whether `raw` is exactly one JSON number:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(raw: &[u8]) -> bool {
    let mut i = 0;
    if raw.first() == Some(&b'-') {
        i += 1;
    }
    match raw.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += count_digits(&raw[i..]),
        _ => return false,
    }
    if raw.get(i) == Some(&b'.') {
        i += 1;
        let n = count_digits(&raw[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    if matches!(raw.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(raw.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = count_digits(&raw[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == raw.len()
}

/// The number of ASCII digits at the start of `bytes`.
fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Whether a well-formed JSON number is out of range for serde_json.
fn number_overflows(raw: &[u8]) -> bool {
    let parsed = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    match parsed {
        Some(value) if value.is_infinite() => true,
        // serde_json's default parser is off by at most a couple of units in
        // the last place, so only values close to `f64::MAX` need the
        // closer look.
        Some(value) if value.abs() < 1.79e308 => false,
        _ => serde_default_overflows(raw),
    }
}

/// Follows the steps of serde_json's default number parser (the one used
/// without its `float_roundtrip` feature) and tells whether it would report
/// "number out of range" for the well-formed JSON number `raw`.
///
/// That parser keeps at most as many leading digits as fit in a `u64`,
/// tracks a decimal exponent next to them, and then multiplies the
/// digits, converted to `f64`, by a power of ten. Its result can round to
/// infinity for values that a correctly rounding parser maps to `f64::MAX`.
fn serde_default_overflows(raw: &[u8]) -> bool {
    let mut i = 0;
    if raw.first() == Some(&b'-') {
        i += 1;
    }
    let mut significand = 0u64;
    let mut exponent = 0i32;
    let mut kept_all = true;
    // Integer part. Once the digits no longer fit, each further digit only
    // raises the exponent.
    while let Some(&c) = raw.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        let digit = u64::from(c - b'0');
        if kept_all && !u64_would_overflow(significand, digit) {
            significand = significand * 10 + digit;
        } else {
            kept_all = false;
            exponent = exponent.saturating_add(1);
        }
        i += 1;
    }
    // Fraction part. serde_json starts it afresh, keeping fraction digits
    // until the first one that does not fit and ignoring every digit after.
    if raw.get(i) == Some(&b'.') {
        i += 1;
        let mut keeping = true;
        while let Some(&c) = raw.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            let digit = u64::from(c - b'0');
            if keeping && u64_would_overflow(significand, digit) {
                keeping = false;
            }
            if keeping {
                significand = significand * 10 + digit;
                exponent = exponent.saturating_sub(1);
            }
            i += 1;
        }
    }
    // Exponent part.
    if matches!(raw.get(i), Some(b'e' | b'E')) {
        i += 1;
        let mut positive_exp = true;
        match raw.get(i) {
            Some(b'+') => i += 1,
            Some(b'-') => {
                positive_exp = false;
                i += 1;
            }
            _ => {}
        }
        let mut exp = 0i32;
        while let Some(&c) = raw.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            let digit = i32::from(c - b'0');
            if exp >= i32::MAX / 10 && (exp > i32::MAX / 10 || digit > i32::MAX % 10) {
                // serde_json gives up on such exponents: zero for a zero
                // significand or a negative exponent, an error otherwise.
                return significand != 0 && positive_exp;
            }
            exp = exp * 10 + digit;
            i += 1;
        }
        exponent = if positive_exp {
            exponent.saturating_add(exp)
        } else {
            exponent.saturating_sub(exp)
        };
    }
    // Scaling. Negative exponents only ever shrink the value.
    if exponent < 0 || significand == 0 {
        return false;
    }
    if exponent > 308 {
        return true;
    }
    (significand as f64 * power_of_ten(exponent as u32)).is_infinite()
}

/// Whether `value * 10 + digit` would exceed `u64::MAX`, tested the same
/// way serde_json tests it.
fn u64_would_overflow(value: u64, digit: u64) -> bool {
    value >= u64::MAX / 10 && (value > u64::MAX / 10 || digit > u64::MAX % 10)
}

/// `10^exp` for `exp` in `0..=308`, rounded to the nearest `f64` exactly as
/// the literal `1e{exp}` is.
fn power_of_ten(exp: u32) -> f64 {
    let mut text = [b'1', b'e', b'0', b'0', b'0'];
    text[2] += (exp / 100 % 10) as u8;
    text[3] += (exp / 10 % 10) as u8;
    text[4] += (exp % 10) as u8;
    std::str::from_utf8(&text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice::<Value>(bytes)
    }

    /// Repairs `input`, checks that serde_json rejected it before and
    /// accepts it after, and returns the repaired text and value.
    fn repaired(input: &str) -> (String, Value, Repaired) {
        assert!(
            parse(input.as_bytes()).is_err(),
            "serde_json accepted {input}"
        );
        let r = repair(input.as_bytes()).unwrap_or_else(|| panic!("no repair for {input}"));
        let text = String::from_utf8(r.bytes.clone()).expect("repair produced invalid UTF-8");
        let value = parse(&r.bytes).unwrap_or_else(|e| panic!("{text} still fails: {e}"));
        (text, value, r)
    }

    #[test]
    fn lone_high_surrogate() {
        let (text, value, r) = repaired(r#"["\ud800"]"#);
        assert_eq!(text, r#"["\ufffd"]"#);
        assert_eq!(value, serde_json::json!(["\u{fffd}"]));
        assert_eq!((r.strings, r.numbers), (1, 0));
    }

    #[test]
    fn lone_low_surrogate_followed_by_text() {
        let (text, value, _) = repaired(r#"{"a":"\udc00x"}"#);
        assert_eq!(text, r#"{"a":"\ufffdx"}"#);
        assert_eq!(value, serde_json::json!({"a": "\u{fffd}x"}));
    }

    #[test]
    fn high_surrogate_followed_by_other_escape() {
        let (text, value, _) = repaired(r#"["\ud800\u0041"]"#);
        assert_eq!(text, r#"["\ufffd\u0041"]"#);
        assert_eq!(value, serde_json::json!(["\u{fffd}A"]));
    }

    #[test]
    fn high_surrogate_followed_by_high_then_low() {
        let (text, value, r) = repaired(r#"["\ud800\uD83D\uDE00\udfff"]"#);
        assert_eq!(text, r#"["\ufffd\uD83D\uDE00\ufffd"]"#);
        assert_eq!(value, serde_json::json!(["\u{fffd}\u{1F600}\u{fffd}"]));
        assert_eq!(r.strings, 1, "one string, even with two repairs");
    }

    #[test]
    fn high_surrogate_before_escaped_backslash_or_quote() {
        let (text, value, _) = repaired(r#"["\ud800\\udc00", "\uDBFF\"x"]"#);
        assert_eq!(text, r#"["\ufffd\\udc00", "\ufffd\"x"]"#);
        assert_eq!(value, serde_json::json!(["\u{fffd}\\udc00", "\u{fffd}\"x"]));
    }

    #[test]
    fn valid_pairs_in_either_case_are_untouched() {
        for input in [
            r#"["\ud83d\ude00"]"#,
            r#"["\uD83D\uDE00"]"#,
            r#"["\uD83d\udE00", "\udbff\udfff"]"#,
        ] {
            assert!(parse(input.as_bytes()).is_ok());
            assert_eq!(repair(input.as_bytes()), None, "{input}");
        }
    }

    #[test]
    fn escaped_backslash_before_u_is_not_an_escape() {
        for input in [
            r#"["\\ud800"]"#,
            r#"["\\\\ud800", "x\\udc00"]"#,
            r#"{"\\ud800": "\\uDFFF"}"#,
        ] {
            assert!(parse(input.as_bytes()).is_ok(), "{input}");
            assert_eq!(repair(input.as_bytes()), None, "{input}");
        }
        // An odd number of backslashes does leave a real escape.
        let (text, _, _) = repaired(r#"["\\\ud800"]"#);
        assert_eq!(text, r#"["\\\ufffd"]"#);
    }

    #[test]
    fn surrogates_in_object_keys() {
        let (text, value, r) = repaired(r#"{"\ud800": 1, "ok\udc00": {"\ud800\u0041": [2]}}"#);
        assert_eq!(text, r#"{"\ufffd": 1, "ok\ufffd": {"\ufffd\u0041": [2]}}"#);
        assert_eq!(
            value,
            serde_json::json!({"\u{fffd}": 1, "ok\u{fffd}": {"\u{fffd}A": [2]}})
        );
        assert_eq!(r.strings, 3);
    }

    #[test]
    fn overflowing_numbers_become_their_raw_text() {
        let (text, value, r) = repaired(r#"[1e400, -1e400, 1.5E+309, 2, 0.5]"#);
        assert_eq!(text, r#"["1e400", "-1e400", "1.5E+309", 2, 0.5]"#);
        assert_eq!(
            value,
            serde_json::json!(["1e400", "-1e400", "1.5E+309", 2, 0.5])
        );
        assert_eq!((r.strings, r.numbers), (0, 3));
    }

    #[test]
    fn very_long_integers_overflow() {
        let big = "9".repeat(400);
        let input = format!(r#"{{"n": {big}, "m": -{big}, "k": 7}}"#);
        let (_, value, r) = repaired(&input);
        assert_eq!(value["n"], Value::String(big.clone()));
        assert_eq!(value["m"], Value::String(format!("-{big}")));
        assert_eq!(value["k"], serde_json::json!(7));
        assert_eq!(r.numbers, 2);
    }

    #[test]
    fn numbers_serde_json_accepts_are_untouched() {
        let long = format!("1{}", "0".repeat(300));
        let cases = [
            "1e-400",
            "-1e-400",
            "0e99999999999999999999",
            "-0.0e400",
            "1e-99999999999999999999",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "0.000001e314",
            "123456789012345678901234567890",
            &long,
            "-0",
            "1E+2",
        ];
        for case in cases {
            let input = format!("[{case}]");
            assert!(parse(input.as_bytes()).is_ok(), "{case}");
            assert_eq!(repair(input.as_bytes()), None, "{case}");
        }
    }

    #[test]
    fn numbers_just_above_f64_max_follow_serde_json() {
        // These round to f64::MAX, yet serde_json's default parser calls
        // them out of range; the repair must follow serde_json.
        let near = format!("17976931348623157{}", "0".repeat(292));
        for case in [
            "1.7976931348623158e308",
            "1.797693134862315807e308",
            "1.797693134862315808e308",
            "1.7976931348623159e308",
            "1e99999999999999999999",
            &near,
        ] {
            let input = format!("[{case}]");
            let (_, value, _) = repaired(&input);
            assert_eq!(value, serde_json::json!([case]));
        }
    }

    #[test]
    fn numbers_inside_strings_are_untouched() {
        let input = r#"{"a": "1e400", "1e400": "-1e400 and 99e999", "b": "\ud800 1e400"}"#;
        let (text, value, r) = repaired(input);
        assert_eq!(
            text,
            r#"{"a": "1e400", "1e400": "-1e400 and 99e999", "b": "\ufffd 1e400"}"#
        );
        assert_eq!(value["a"], serde_json::json!("1e400"));
        assert_eq!((r.strings, r.numbers), (1, 0));
        let clean = r#"{"a": "1e400", "1e400": "x\"1e400\"", "b": "\\"}"#;
        assert!(parse(clean.as_bytes()).is_ok());
        assert_eq!(repair(clean.as_bytes()), None);
    }

    #[test]
    fn numbers_inside_words_or_broken_tokens_are_copied() {
        for input in ["[x1e400]", "[1e400x]", "[01e400]", "[1e400.5]", "[--1e400]"] {
            assert_eq!(repair(input.as_bytes()), None, "{input}");
        }
    }

    #[test]
    fn both_kinds_together_with_everything_else_unchanged() {
        let input = r#"{"id": 7, "name": "caf\u00e9 \ud83d\ude00", "bad": "x\ud800y",
            "big": 1e999, "list": [true, false, null, -12.5e-3, "\n\t\"q\""], "\udc00": -2e500}"#;
        let (_, value, r) = repaired(input);
        let expected = serde_json::json!({
            "id": 7,
            "name": "caf\u{e9} \u{1F600}",
            "bad": "x\u{fffd}y",
            "big": "1e999",
            "list": [true, false, null, -12.5e-3, "\n\t\"q\""],
            "\u{fffd}": "-2e500",
        });
        assert_eq!(value, expected);
        // preserve_order keeps the keys where they were.
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "bad", "big", "list", "\u{fffd}"]);
        assert_eq!((r.strings, r.numbers), (2, 2));
    }

    #[test]
    fn nothing_to_repair_returns_none() {
        for input in [
            "",
            "{}",
            "[1, 2",
            "\"abc",
            "nonsense",
            "\"\\",
            "\\ud800",
            "[\"\\u12\"]",
        ] {
            assert_eq!(repair(input.as_bytes()), None, "{input:?}");
        }
    }

    #[test]
    fn broken_input_is_copied_around_repairs() {
        // Unterminated string at the end, odd bytes, stray backslashes.
        let input = b"\xff[1e400, \"\\ud800";
        let r = repair(input).unwrap();
        assert_eq!(r.bytes, b"\xff[\"1e400\", \"\\ufffd".to_vec());
        let truncated = repair(b"[\"\\ud800\\u12").unwrap();
        assert_eq!(truncated.bytes, b"[\"\\ufffd\\u12".to_vec());
        let at_end = repair(b"\"\\uD800\\").unwrap();
        assert_eq!(at_end.bytes, b"\"\\ufffd\\".to_vec());
    }

    #[test]
    fn deep_nesting_is_fine() {
        // The value past MAX_NESTING is kept as its text, whatever it holds.
        let depth = 200_000;
        let mut inner = "[".repeat(depth - MAX_NESTING as usize);
        inner.push_str("1e400, \"\\ud800\"");
        inner.push_str(&"]".repeat(depth - MAX_NESTING as usize));
        let kept = MAX_NESTING as usize;
        let input = format!("{}{inner}{}", "[".repeat(kept), "]".repeat(kept));
        let r = repair(input.as_bytes()).unwrap();
        assert_eq!((r.strings, r.numbers, r.deep), (0, 0, 1));
        let mut v = &parse(&r.bytes).unwrap();
        for _ in 0..kept {
            v = &v[0];
        }
        assert_eq!(v.as_str(), Some(inner.as_str()));
    }

    #[test]
    fn too_deep_values_become_their_text_among_the_rest() {
        let deep = format!(
            "{}\n\"k\": \"\\\"\"{}",
            "{\"a\":[".repeat(100),
            "]}".repeat(100)
        );
        let deep = deep.replacen("\n\"k\": \"\\\"\"", "{\"k\": \"\\\"\", \"n\": 1e400}", 1);
        let input =
            format!(r#"{{"logs":[{{"_id":"x"}},{{"_id":"deep","v":{deep}}},{{"_id":"y"}}]}}"#);
        assert!(parse(input.as_bytes()).is_err());
        let (_, value, r) = repaired(&input);
        assert_eq!(r.deep, 1);
        assert_eq!(value["logs"][0]["_id"], "x");
        assert_eq!(value["logs"][2]["_id"], "y");
        // The page, `logs` and the log take three levels; the rest are kept
        // down to MAX_NESTING.
        let mut v = &value["logs"][1]["v"];
        let mut depth = 3;
        while !v.is_string() {
            depth += 1;
            v = if v.is_object() { &v["a"] } else { &v[0] };
        }
        assert_eq!(depth, MAX_NESTING);
        let text = v.as_str().unwrap();
        assert!(text.ends_with(&format!("{}]", "]}".repeat(40))), "{text}");
        assert!(text.contains(r#"{"k": "\"", "n": 1e400}"#), "{text}");
        // Broken inside: left as it is, and refused.
        let broken = format!("[{}1,]{}", "[".repeat(200), "]".repeat(199));
        assert_eq!(repair(broken.as_bytes()), None);
        let unclosed = "[".repeat(200);
        assert_eq!(repair(unclosed.as_bytes()), None);
    }

    #[test]
    fn a_number_where_a_key_must_be_is_not_repaired() {
        for input in [
            r#"{"a": 1, 1e400: "x"}"#,
            r#"{1e400 : "x"}"#,
            "{\"a\":\"\\ud800\", 1e400:1}",
        ] {
            let r = repair(input.as_bytes());
            assert!(
                r.as_ref().is_none_or(|r| parse(&r.bytes).is_err()),
                "{input}: {r:?}"
            );
        }
        // A value before a `:` of a broken text is not a key: a value.
        assert_eq!(repaired(r#"{"a": 1e400}"#).2.numbers, 1);
    }

    /// A small deterministic pseudo-random generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Whether the generator may inject values that need repair.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Clean,
        Inject,
    }

    /// Builds JSON text and, alongside, the value serde_json should read
    /// after repair. Nesting is tracked with an explicit depth budget.
    struct Gen {
        rng: Rng,
        mode: Mode,
        injected: u64,
    }

    const CLEAN_NUMBERS: &[&str] = &[
        "0",
        "-0",
        "7",
        "-12",
        "3.25",
        "-0.5e-3",
        "1E10",
        "2e+5",
        "1e-400",
        "-1e-400",
        "0e400",
        "1e308",
        "1.7976931348623157e308",
        "-1.7976931348623157e308",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "123456789012345678901234567890.5",
        "0.000000000000000000000000000001e300",
        "1e-99999999999999999999",
    ];

    const BAD_NUMBERS: &[&str] = &[
        "1e400",
        "-1e400",
        "1.8e308",
        "-9.9E+308",
        "1.7976931348623158e308",
        "1e99999999999999999999",
        "12345678901234567890e300",
    ];

    impl Gen {
        fn string_body(&mut self, text: &mut String, value: &mut String) {
            let parts = self.rng.below(6);
            for _ in 0..parts {
                match self.rng.below(12) {
                    0 => {
                        text.push_str(r"\\");
                        value.push('\\');
                    }
                    1 => {
                        text.push_str(r#"\""#);
                        value.push('"');
                    }
                    2 => {
                        text.push_str(r"\ud83d\uDE00");
                        value.push('\u{1F600}');
                    }
                    3 => {
                        text.push_str(r"\u00E9");
                        value.push('\u{e9}');
                    }
                    4 => {
                        // Looks like a surrogate escape but is not one.
                        text.push_str(r"\\ud800");
                        value.push_str("\\ud800");
                    }
                    5 => {
                        text.push_str("1e400");
                        value.push_str("1e400");
                    }
                    6 => {
                        text.push_str(r"\n\t\/");
                        value.push_str("\n\t/");
                    }
                    7 => {
                        text.push('\u{e9}');
                        value.push('\u{e9}');
                    }
                    8 if self.mode == Mode::Inject => {
                        // A lone high surrogate is always followed by
                        // something that is not an escape, so that it can
                        // never pair up with a lone low one injected next.
                        let (lone, rest) = [
                            (r"\ud800", " "),
                            (r"\uDBFF", "-"),
                            (r"\udc00", ""),
                            (r"\uDFFF", ""),
                            (r"\uDc0a", ""),
                        ][self.rng.below(5)];
                        text.push_str(lone);
                        text.push_str(rest);
                        value.push('\u{fffd}');
                        value.push_str(rest);
                        self.injected += 1;
                    }
                    10 if self.mode == Mode::Inject => {
                        // A lone high surrogate right before the closing quote.
                        text.push_str(r"\uD9AB");
                        value.push('\u{fffd}');
                        self.injected += 1;
                        return;
                    }
                    9 if self.mode == Mode::Inject => {
                        text.push_str(r"\ud800\u0041");
                        value.push_str("\u{fffd}A");
                        self.injected += 1;
                    }
                    _ => {
                        let word = self.rng.pick(&["a", "xyz", " ", "u", "d800", "{[,:]}"]);
                        text.push_str(word);
                        value.push_str(word);
                    }
                }
            }
        }

        fn string(&mut self, text: &mut String) -> Value {
            let mut value = String::new();
            text.push('"');
            self.string_body(text, &mut value);
            text.push('"');
            Value::String(value)
        }

        fn key(&mut self, text: &mut String) -> String {
            match self.string(text) {
                Value::String(s) => s,
                _ => unreachable!(),
            }
        }

        fn value(&mut self, text: &mut String, depth: u32) -> Value {
            let choice = if depth == 0 {
                self.rng.below(5)
            } else {
                self.rng.below(7)
            };
            match choice {
                0 => {
                    if self.mode == Mode::Inject && self.rng.below(4) == 0 {
                        let n = self.rng.pick(BAD_NUMBERS);
                        text.push_str(n);
                        self.injected += 1;
                        Value::String(n.to_string())
                    } else {
                        let n = self.rng.pick(CLEAN_NUMBERS);
                        text.push_str(n);
                        serde_json::from_str(n).unwrap()
                    }
                }
                1 => self.string(text),
                2 => {
                    text.push_str("true");
                    Value::Bool(true)
                }
                3 => {
                    text.push_str("null");
                    Value::Null
                }
                4 => {
                    text.push_str("false");
                    Value::Bool(false)
                }
                5 => {
                    text.push('[');
                    let mut items = Vec::new();
                    for k in 0..self.rng.below(4) {
                        if k > 0 {
                            text.push_str(self.rng.pick(&[",", ", ", " ,\n"]));
                        }
                        items.push(self.value(text, depth - 1));
                    }
                    text.push(']');
                    Value::Array(items)
                }
                _ => {
                    text.push('{');
                    let mut map = serde_json::Map::new();
                    for k in 0..self.rng.below(4) {
                        if k > 0 {
                            text.push(',');
                        }
                        let key = self.key(text);
                        text.push_str(self.rng.pick(&[":", " : "]));
                        let v = self.value(text, depth - 1);
                        map.insert(key, v);
                    }
                    text.push('}');
                    Value::Object(map)
                }
            }
        }
    }

    #[test]
    fn generated_clean_documents_need_no_repair() {
        let mut g = Gen {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            mode: Mode::Clean,
            injected: 0,
        };
        for _ in 0..3000 {
            let mut text = String::new();
            let expected = g.value(&mut text, 4);
            let parsed = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(repair(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn generated_documents_with_injections_parse_after_repair() {
        let mut g = Gen {
            rng: Rng(0xD1B5_4A32_D192_ED03),
            mode: Mode::Inject,
            injected: 0,
        };
        let mut repaired_docs = 0;
        for _ in 0..3000 {
            g.injected = 0;
            let mut text = String::new();
            let expected = g.value(&mut text, 4);
            match repair(text.as_bytes()) {
                None => {
                    assert_eq!(g.injected, 0, "{text}");
                    assert_eq!(parse(text.as_bytes()).unwrap(), expected, "{text}");
                }
                Some(r) => {
                    assert!(g.injected > 0, "{text}");
                    assert!(parse(text.as_bytes()).is_err(), "{text}");
                    assert!(r.strings + r.numbers > 0);
                    assert!(r.strings + r.numbers <= g.injected);
                    let value = parse(&r.bytes).unwrap_or_else(|e| {
                        panic!("{text} -> {}: {e}", String::from_utf8_lossy(&r.bytes))
                    });
                    assert_eq!(value, expected, "{text}");
                    repaired_docs += 1;
                }
            }
        }
        assert!(
            repaired_docs > 500,
            "only {repaired_docs} documents needed repair"
        );
    }

    #[test]
    fn mutated_and_random_inputs_never_panic_and_respect_serde_json() {
        let mut g = Gen {
            rng: Rng(0x0123_4567_89AB_CDEF),
            mode: Mode::Inject,
            injected: 0,
        };
        let alphabet: &[u8] = b"\"\\u{}[],:0123456789eE+-.dDcCfFaA \n\xff\xc3";
        let mut accepted = 0;
        for round in 0..6000 {
            let mut bytes = if round % 3 == 0 {
                // Pure byte soup over a JSON-flavoured alphabet.
                let n = g.rng.below(40);
                (0..n)
                    .map(|_| alphabet[g.rng.below(alphabet.len())])
                    .collect::<Vec<u8>>()
            } else {
                let mut text = String::new();
                g.value(&mut text, 3);
                text.into_bytes()
            };
            // Mutate: overwrite, insert, delete or truncate a few bytes.
            for _ in 0..g.rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = g.rng.below(bytes.len());
                let byte = alphabet[g.rng.below(alphabet.len())];
                match g.rng.below(4) {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            let result = repair(&bytes);
            if parse(&bytes).is_ok() {
                accepted += 1;
                assert_eq!(result, None, "{}", String::from_utf8_lossy(&bytes));
            }
            if let Some(r) = result {
                assert!(r.strings + r.numbers > 0);
                // Repair only ever grows the text: two quotes per number,
                // and `\ufffd` is as long as the escape it replaces.
                assert_eq!(r.bytes.len(), bytes.len() + 2 * r.numbers as usize);
            }
        }
        assert!(accepted > 100, "only {accepted} inputs were valid JSON");
    }

    #[test]
    fn numbers_near_the_limit_match_serde_json() {
        // Walk the digits around f64::MAX and a few other borderline forms,
        // and check that repair acts exactly when serde_json refuses.
        let mut rng = Rng(0xA076_1D64_78BD_642F);
        let (mut accepted, mut refused_though_finite) = (0, 0);
        for _ in 0..20_000 {
            let mantissa = format!("1797693134862315{:04}", rng.below(10_000));
            let case = match rng.below(5) {
                0 => format!("{}.{}e308", &mantissa[..1], &mantissa[1..]),
                1 => format!("{mantissa}e289"),
                2 => format!("{mantissa}{}", "0".repeat(289)),
                3 => format!("0.{mantissa}e309"),
                _ => format!(
                    "-{}.{}{}E+308",
                    &mantissa[..1],
                    &mantissa[1..],
                    rng.below(100)
                ),
            };
            let input = format!("[{case}]");
            let serde_ok = parse(input.as_bytes()).is_ok();
            assert_eq!(repair(input.as_bytes()).is_none(), serde_ok, "{case}");
            let rounds_to_finite = case.parse::<f64>().unwrap().is_finite();
            if serde_ok {
                accepted += 1;
            } else if rounds_to_finite {
                refused_though_finite += 1;
            }
        }
        // Both sides of the limit were exercised, including the band that
        // a plain `str::parse` check would miss.
        assert!(accepted > 1000, "{accepted}");
        assert!(refused_though_finite > 1000, "{refused_though_finite}");
    }
}
