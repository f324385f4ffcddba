//! Errors as the one line the agent prints: the error and its causes,
//! joined by `: `, each cause only when it adds something, with newlines
//! folded and secrets removed.

use crate::secret::redact;

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
    redact(&out).replace(['\n', '\r'], " ")
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
    }
}
