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

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for v in reg.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), MASK);
        }
    }
    out
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
    fn tiny_values_are_not_registered() {
        register("zq");
        assert_eq!(redact("zqx zq"), "zqx zq");
    }
}
