//! The `Link` header (RFC 8288), as every source reads it: links separated
//! by commas, each a target and `;` parameters.
//!
//! Two forms of target are read: RFC 8288's `<URL>` and the bare `URL` that
//! Cirrus Identity's example client reads (`URL; rel="next"`). A bare
//! target runs up to its first `;`, so that a comma inside its query is
//! kept; a link ends at the first `,` after its parameters (outside a
//! quoted value), whichever form the next link has. Parameter names and
//! relation types are case-insensitive; values are quoted or not; `rel` may
//! name several relation types (`rel="next last"`), and only the first
//! `rel` of a link counts (RFC 8288, 3.3).

/// One link of a header: its target, as written, and its relation types,
/// lower-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub target: String,
    pub rels: Vec<String>,
}

/// The links of one `Link` header value, in order. Reading stops at a
/// link that cannot be read (an unclosed `<` or quote): what came before
/// it is kept.
pub fn links(header: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return out;
        }
        // The target.
        let target;
        if let Some(inner) = rest.strip_prefix('<') {
            let Some(end) = inner.find('>') else {
                return out;
            };
            target = inner[..end].trim();
            rest = &inner[end + 1..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let mut t = rest[..end].trim();
            // Bare links without parameters before this one (`A, B;
            // rel=next`): a URL holds no whitespace, so a comma followed by
            // some ends a link.
            if let Some(i) = last_separator(t) {
                t = t[i..].trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            }
            target = t;
            rest = &rest[end..];
        }
        // The parameters, up to the `,` that ends the link.
        let mut rels: Option<Vec<String>> = None;
        loop {
            rest = rest.trim_start();
            match rest.chars().next() {
                None => break,
                Some(',') => break,
                Some(';') => rest = &rest[1..],
                // Text after a target that is neither: skipped up to the
                // next separator.
                Some(_) => {
                    let end = rest.find([';', ',']).unwrap_or(rest.len());
                    rest = &rest[end..];
                    continue;
                }
            }
            let Some((name, value, after)) = param(rest) else {
                // An unclosed quote: nothing after it can be read.
                if let Some(rels) = rels.filter(|_| !target.is_empty()) {
                    out.push(Link {
                        target: target.to_string(),
                        rels,
                    });
                }
                return out;
            };
            rest = after;
            if name.eq_ignore_ascii_case("rel") && rels.is_none() {
                rels = Some(
                    value
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect(),
                );
            }
        }
        if !target.is_empty() {
            out.push(Link {
                target: target.to_string(),
                rels: rels.unwrap_or_default(),
            });
        }
    }
}

/// The target of the first link of `header` whose relation types include
/// `next`.
pub fn next_link(header: &str) -> Option<String> {
    links(header)
        .into_iter()
        .find(|l| l.rels.iter().any(|r| r == "next"))
        .map(|l| l.target)
}

/// The next URL among several `Link` header values (a server may send one
/// header per link).
pub fn next_in<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values.into_iter().find_map(next_link)
}

/// The next URL of an answer's `Link` headers (values that are not text
/// are passed over).
pub fn next_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    next_in(
        headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Where the last `,` followed by whitespace is in a bare target, if any.
fn last_separator(t: &str) -> Option<usize> {
    let bytes = t.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .rev()
        .find(|&i| bytes[i] == b',' && bytes[i + 1].is_ascii_whitespace())
}

/// One parameter at the start of `s` (after its `;`): its name, its value
/// (unquoted, `\` escapes undone; empty for a name alone) and the text
/// after it. `None` for an unclosed quote.
fn param(s: &str) -> Option<(&str, String, &str)> {
    let s = s.trim_start();
    let name_end = s.find(['=', ';', ',']).unwrap_or(s.len());
    let name = s[..name_end].trim();
    let Some(after_eq) = s[name_end..].strip_prefix('=') else {
        return Some((name, String::new(), &s[name_end..]));
    };
    let v = after_eq.trim_start();
    if let Some(quoted) = v.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return Some((name, value, &quoted[i + 1..])),
                c => value.push(c),
            }
        }
        None
    } else {
        let end = v.find([';', ',']).unwrap_or(v.len());
        Some((name, v[..end].trim().to_string(), &v[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const URL: &str = "https://api.example/logs/v1?orgUrl=o&limit=2&after=abc";

    #[test]
    fn both_forms_quoted_or_not() {
        for header in [
            format!("<{URL}>; rel=\"next\""),
            format!("{URL}; rel=\"next\""),
            format!("{URL};rel=next"),
            format!("<{URL}>;REL=Next"),
            format!("<{URL}> ; rel = \"next last\""),
            format!("{URL}; rel=\"last next\"; title=\"a, b; c\""),
        ] {
            assert_eq!(next_link(&header).as_deref(), Some(URL), "{header}");
        }
    }

    #[test]
    fn the_next_link_among_several_in_either_form() {
        let prev = "https://api.example/logs/v1?before=x";
        for header in [
            format!("<{prev}>; rel=\"prev\", <{URL}>; rel=\"next\""),
            // The bug this module fixed: a `,` before a bare link.
            format!("{prev}; rel=\"prev\", {URL}; rel=\"next\""),
            format!("{prev}; rel=prev,{URL}; rel=next"),
            format!("<{prev}>; rel=\"prev\", {URL}; rel=\"next\""),
            format!("{prev}; rel=\"prev\", <{URL}>; rel=\"next\""),
            format!("{prev}; title=\"x, <y>; rel=next\"; rel=prev, {URL}; rel=next"),
            // A link without parameters before it.
            format!("{prev}, {URL}; rel=next"),
        ] {
            assert_eq!(next_link(&header).as_deref(), Some(URL), "{header}");
        }
    }

    #[test]
    fn no_next_link() {
        assert_eq!(next_link("<https://x/prev>; rel=\"prev\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<unclosed; rel=\"next\""), None);
        assert_eq!(next_link("<https://x/a>; rel=\"next"), None);
        assert_eq!(next_link("<https://x/a>"), None);
        assert_eq!(next_link("<>; rel=next"), None);
        // `rel` counts once: the second is ignored.
        assert_eq!(next_link("<https://x/a>; rel=prev; rel=next"), None);
        // A relation type that only starts with `next`.
        assert_eq!(next_link("<https://x/a>; rel=nextpage"), None);
        assert_eq!(
            next_in(["<https://x/a>; rel=prev", "<https://x/b>; rel=next"]).as_deref(),
            Some("https://x/b")
        );
    }

    /// A URL as APIs write them: no whitespace, `;`, `,`, `<`, `>` or `"`
    /// (a bare target may hold `,` in its query: tested above).
    fn url() -> impl Strategy<Value = String> {
        "[a-z]{1,8}(/[a-zA-Z0-9._~-]{0,8}){0,3}(\\?[a-z]{1,4}=[a-zA-Z0-9%:._-]{0,12}(&[a-z]{1,4}=[a-zA-Z0-9%._-]{0,8}){0,3})?"
            .prop_map(|p| format!("https://api.example/{p}"))
    }

    fn rel() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop_oneof![
                Just("prev".to_string()),
                Just("next".to_string()),
                Just("last".to_string()),
                Just("first".to_string()),
                Just("NEXT".to_string()),
                Just("Prev".to_string()),
            ],
            1..3,
        )
    }

    proptest! {
        /// Any list of links, each in either form, its `rel` quoted or
        /// not, with an extra parameter or not: read back as written.
        #[test]
        fn links_are_read_back(
            list in prop::collection::vec((url(), rel(), any::<bool>(), any::<bool>(), any::<bool>()), 1..5),
            spaced in any::<bool>(),
        ) {
            let text: Vec<String> = list
                .iter()
                .map(|(u, rels, angle, quoted, extra)| {
                    let target = if *angle { format!("<{u}>") } else { u.clone() };
                    let rel = if *quoted || rels.len() > 1 {
                        format!("\"{}\"", rels.join(" "))
                    } else {
                        rels[0].clone()
                    };
                    let extra = if *extra { "; title=\"a, b; <c>\"" } else { "" };
                    format!("{target}; rel={rel}{extra}")
                })
                .collect();
            let header = text.join(if spaced { ", " } else { "," });
            let got = links(&header);
            prop_assert_eq!(got.len(), list.len(), "{}", header);
            for (l, (u, rels, ..)) in got.iter().zip(&list) {
                prop_assert_eq!(&l.target, u);
                let lower: Vec<String> = rels.iter().map(|r| r.to_ascii_lowercase()).collect();
                prop_assert_eq!(&l.rels, &lower);
            }
            let expected = list
                .iter()
                .find(|(_, rels, ..)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
                .map(|(u, ..)| u.clone());
            prop_assert_eq!(next_link(&header), expected);
        }

        /// Whatever the text, reading it ends without a panic.
        #[test]
        fn any_text_is_read_without_panic(s in "\\PC{0,80}") {
            let _ = links(&s);
        }
    }
}
