//! Errors as the one line the agent prints: the error and its causes,
//! joined by `: `, each cause only when it adds something, with newlines
//! folded and secrets removed.

use crate::secret::redact;
use std::borrow::Cow;

/// Characters that must not reach a terminal or a log line raw: C0 and C1
/// controls, DEL, Unicode line and paragraph separators, and the bidi
/// overrides that reorder what a reader sees.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unprintable character written as an escape (`\x1b`,
/// `\n`, `\u{2028}`), so that text from a log or a server can neither
/// drive a terminal nor forge a line of the agent's output.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unprintable) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unprintable(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unprintable(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `err` and its causes on one line.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    let out = redact(&out).replace(['\n', '\r'], " ");
    printable(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn causes_already_shown_are_not_repeated() {
        let e = Outer {
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(one_line(&e), "outer: disk on fire");
        let a = anyhow::Error::new(e).context("Investigate");
        assert_eq!(one_line(a.as_ref()), "Investigate: outer: disk on fire");
        let m = std::io::Error::other("two\nlines");
        assert_eq!(one_line(&m), "two lines");
        let m = std::io::Error::other("bell\u{7}esc\u{1b}[31m\u{2028}x");
        assert_eq!(one_line(&m), "bell\\x07esc\\x1b[31m\\u{2028}x");
    }

    #[test]
    fn printable_escapes_controls_only() {
        assert!(matches!(printable("plain é 中"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\nb\tc\u{85}\u{202e}"),
            "a\\nb\\tc\\x85\\u{202e}"
        );
    }
}
