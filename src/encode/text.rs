//! Text helpers shared by the encoders.

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

/// Appends `s`. Short slices (most keys and values) are copied as two
/// overlapping words of fixed size, which the compiler writes inline: a
/// call to `memcpy` costs more than such a copy.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > 32 {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    let len = out.len();
    let p = out.as_mut_ptr();
    // SAFETY: 32 bytes are reserved past `len`; each write below stays
    // within `len + n <= len + 32`, and reads stay within `s`.
    unsafe {
        let d = p.add(len);
        let src = s.as_ptr();
        if n >= 16 {
            std::ptr::write_unaligned(d.cast::<[u8; 16]>(), word::<16>(s, 0));
            std::ptr::write_unaligned(d.add(n - 16).cast::<[u8; 16]>(), word::<16>(s, n - 16));
        } else if n >= 8 {
            std::ptr::write_unaligned(d.cast::<[u8; 8]>(), word::<8>(s, 0));
            std::ptr::write_unaligned(d.add(n - 8).cast::<[u8; 8]>(), word::<8>(s, n - 8));
        } else if n >= 4 {
            std::ptr::write_unaligned(d.cast::<[u8; 4]>(), word::<4>(s, 0));
            std::ptr::write_unaligned(d.add(n - 4).cast::<[u8; 4]>(), word::<4>(s, n - 4));
        } else {
            for k in 0..n {
                *d.add(k) = *src.add(k);
            }
        }
        out.set_len(len + n);
    }
}

/// The `N` bytes of `s` from `at` (`s` holds them).
#[inline(always)]
fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
    let mut w = [0u8; N];
    w.copy_from_slice(&s[at..at + N]);
    w
}

/// Appends `n` in decimal.
pub fn push_int(n: u64, out: &mut Vec<u8>) {
    push_padded(n, 1, out);
}

/// Appends `n` in decimal, at least `width` digits (zero-padded, up to 20).
pub fn push_padded(n: u64, width: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    put(out, &buf[start..]);
}

/// The keys a format has written into its output, to make each key of a
/// line unique: ranges of the output, and a filter of their hashes so
/// that a new key (the usual case) is known new without a search.
pub struct KeySet {
    bloom: [u64; 4],
    ranges: Vec<(u32, u32)>,
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet {
            bloom: [0; 4],
            ranges: Vec::new(),
        }
    }

    fn bit(key: &[u8]) -> (usize, u64) {
        let h = crate::event::json::key_hash(key);
        ((h >> 22) as usize & 3, 1 << (h & 63))
    }

    /// Whether `key` was inserted already (`out` is where the keys are).
    pub fn contains(&self, out: &[u8], key: &[u8]) -> bool {
        let (w, bit) = KeySet::bit(key);
        self.bloom[w] & bit != 0
            && self
                .ranges
                .iter()
                .any(|&(s, e)| out.get(s as usize..e as usize) == Some(key))
    }

    /// Remembers the key `out[start..end]`.
    pub fn insert(&mut self, out: &[u8], start: usize, end: usize) {
        let (w, bit) = KeySet::bit(&out[start..end]);
        self.bloom[w] |= bit;
        self.ranges.push((start as u32, end as u32));
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets the keys inserted after the first `n`.
    pub fn truncate(&mut self, n: usize) {
        // The filter keeps their bits: a search then finds nothing.
        self.ranges.truncate(n);
    }
}

impl Default for KeySet {
    fn default() -> KeySet {
        KeySet::new()
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

/// Bytes that no format escapes: ASCII letters, digits, space, `_`, `.`,
/// `-` (none of them can be a LEEF delimiter), and the bytes of non-ASCII
/// characters, except those that may start a Unicode line end.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(b, b' ' | b'_' | b'.' | b'-')
            || (b >= 0x80 && b != 0xC2 && b != 0xE2);
        i += 1;
    }
    t
};

/// Appends `s` to `out`, each byte that `escape` maps written as its
/// replacement, runs of other bytes copied whole. Only ASCII bytes can be
/// mapped, so multi-byte characters pass through intact, except the
/// Unicode line ends ([`is_unicode_line_break`]), which always become a
/// space.
pub fn escape_into(s: &str, out: &mut Vec<u8>, escape: impl Fn(u8) -> Option<&'static [u8]>) {
    escape_into_with(s, out, None, escape);
}

/// [`escape_into`] for an `escape` that maps no printable ASCII byte but
/// those in `specials` (control characters and DEL it may map): runs of
/// other printable ASCII are passed over eight bytes at a time.
#[inline(always)]
pub fn escape_into_fast(
    s: &str,
    out: &mut Vec<u8>,
    specials: &[u8],
    escape: impl Fn(u8) -> Option<&'static [u8]>,
) {
    escape_into_with(s, out, Some(specials), escape);
}

#[inline(always)]
fn escape_into_with(
    s: &str,
    out: &mut Vec<u8>,
    specials: Option<&[u8]>,
    escape: impl Fn(u8) -> Option<&'static [u8]>,
) {
    let bytes = s.as_bytes();
    // Most values need no escape: checked sixteen bytes at a time, copied
    // whole (written inline where the value is written).
    if let Some(sp) = specials
        && all_plain(bytes, sp)
    {
        put(out, bytes);
        return;
    }
    escape_slowly(bytes, out, specials, escape);
}

/// [`escape_into_with`] for a value that may need an escape.
#[inline(never)]
fn escape_slowly(
    bytes: &[u8],
    out: &mut Vec<u8>,
    specials: Option<&[u8]>,
    escape: impl Fn(u8) -> Option<&'static [u8]>,
) {
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while they are plain, then at least eight
        // one by one (so that text of other scripts costs little more).
        let stop = match specials {
            Some(sp) => {
                i = skip_plain_ascii(bytes, i, sp);
                (i + 8).min(bytes.len())
            }
            None => bytes.len(),
        };
        while i < stop {
            let b = bytes[i];
            if PLAIN[usize::from(b)] {
                i += 1;
                continue;
            }
            // (rep, bytes replaced): 0xC2 and 0xE2 only ever lead a
            // character.
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
                    put(out, &bytes[start..i]);
                    put(out, rep);
                    i += n;
                    start = i;
                }
                None => i += 1,
            }
        }
    }
    put(out, &bytes[start..]);
}

/// From `i`, the first byte of the first eight-byte word of `b` that holds
/// a control character, DEL, a byte of a non-ASCII character, or one of
/// `specials` (or where fewer than eight bytes are left).
fn skip_plain_ascii(b: &[u8], mut i: usize, specials: &[u8]) -> usize {
    while let Some(w) = b.get(i..i + 8) {
        if needs_look(
            u64::from_le_bytes(w.try_into().unwrap_or_default()),
            specials,
        ) {
            return i;
        }
        i += 8;
    }
    i
}

/// Whether one of the eight bytes of `v` may need a look: a control
/// character, DEL, a byte of a non-ASCII character, or one of `specials`
/// (it may also say so of a plain byte after one that does).
#[inline(always)]
fn needs_look(v: u64, specials: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut hit = (v.wrapping_sub(ONES * 0x20) & !v & HIGH) | (v & HIGH) | zero(v ^ (ONES * 0x7f));
    for &c in specials {
        hit |= zero(v ^ (ONES * u64::from(c)));
    }
    hit != 0
}

/// Whether `b` holds an LF: sixty-four bytes at a time (every frame is
/// checked, and `[u8]::contains` looks at a word at a time).
#[cfg(target_arch = "x86_64")]
pub fn has_lf(b: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut i = 0;
    while i + 64 <= b.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the four
        // sixteen-byte loads (unaligned) are inside `b`.
        let mask = unsafe {
            let lf = _mm_set1_epi8(b'\n' as i8);
            let at = |k: usize| {
                _mm_cmpeq_epi8(_mm_loadu_si128(b.as_ptr().add(i + k).cast::<__m128i>()), lf)
            };
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(at(0), at(16)),
                _mm_or_si128(at(32), at(48)),
            ))
        };
        if mask != 0 {
            return true;
        }
        i += 64;
    }
    b[i..].contains(&b'\n')
}

#[cfg(not(target_arch = "x86_64"))]
pub fn has_lf(b: &[u8]) -> bool {
    b.contains(&b'\n')
}

/// Whether `b` is all ASCII: sixteen bytes at a time (`[u8]::is_ascii`
/// looks at a word at a time, and the JSON format asks of every field).
#[cfg(target_arch = "x86_64")]
pub fn is_ascii(b: &[u8]) -> bool {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
    if b.len() < 16 {
        return b.is_ascii();
    }
    // SAFETY: SSE2 is part of the x86_64 baseline, and every sixteen-byte
    // load (unaligned) is inside `b` (the last one overlaps the one
    // before).
    let load = |i: usize| unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()) };
    let mut i = 0;
    while i + 32 <= b.len() {
        // SAFETY: as above.
        if unsafe { _mm_movemask_epi8(_mm_or_si128(load(i), load(i + 16))) } != 0 {
            return false;
        }
        i += 32;
    }
    // SAFETY: as above.
    unsafe { _mm_movemask_epi8(_mm_or_si128(load(i.min(b.len() - 16)), load(b.len() - 16))) == 0 }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn is_ascii(b: &[u8]) -> bool {
    b.is_ascii()
}

/// Whether one of the sixteen bytes of `b` at `i` needs a look, as
/// [`needs_look`] says of eight (exactly: no plain byte is flagged).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn needs_look16(b: &[u8], i: usize, specials: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(i + 16 <= b.len());
    // SAFETY: SSE2 is part of the x86_64 baseline, and the sixteen bytes
    // loaded (unaligned) are inside `b` (asserted).
    unsafe {
        let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
        let ctrl = _mm_set1_epi8(0x1f);
        // At most 0x1f (unsigned) when max(byte, 0x1f) is 0x1f; DEL; and
        // the specials. Bytes from 0x80 up show in the sign bits.
        let mut hit = _mm_or_si128(
            _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
        );
        for &c in specials {
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)));
        }
        _mm_movemask_epi8(_mm_or_si128(hit, v)) != 0
    }
}

/// Whether `t` is an IP address as `std` parses one (`IpAddr`). Dotted
/// IPv4, the common case, is checked directly (the standard parser is
/// general and costs more than the rest of the field).
pub fn is_ip(t: &str) -> bool {
    let b = t.as_bytes();
    if (7..=15).contains(&b.len()) && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        // Four parts of one to three digits, no leading zero, at most 255.
        let mut parts = 0;
        for p in b.split(|&c| c == b'.') {
            parts += 1;
            // The length first: a longer run of digits would overflow.
            if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
                return false;
            }
            let n = p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            if n > 255 {
                return false;
            }
        }
        return parts == 4;
    }
    t.parse::<std::net::IpAddr>().is_ok()
}

/// Whether no byte of `b` needs a look (see [`needs_look`]); strings of
/// four bytes or more are checked a word at a time, the last word
/// overlapping the one before.
#[inline(always)]
fn all_plain(b: &[u8], specials: &[u8]) -> bool {
    let n = b.len();
    #[cfg(target_arch = "x86_64")]
    if n >= 16 {
        let mut i = 0;
        while i + 16 <= n {
            if needs_look16(b, i, specials) {
                return false;
            }
            i += 16;
        }
        return i == n || !needs_look16(b, n - 16, specials);
    }
    if n >= 8 {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let mut i = 0;
        while i + 8 <= n {
            if needs_look(word(i), specials) {
                return false;
            }
            i += 8;
        }
        i == n || !needs_look(word(n - 8), specials)
    } else if n >= 4 {
        let half = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        !needs_look(u64::from(half(0)) | u64::from(half(n - 4)) << 32, specials)
    } else {
        b.iter().all(|&c| PLAIN[usize::from(c)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        #[test]
        fn all_plain_passes_nothing_that_needs_a_look(
            b in proptest::collection::vec(proptest::prop_oneof![
                8 => 0x20u8..0x7f, 1 => 0u8..0x20, 1 => proptest::strategy::Just(0x7fu8), 1 => 0x80u8..=0xff
            ], 0..70),
        ) {
            let specials = b"\\=|";
            // What the escape acts on (0xC2 and 0xE2 lead the Unicode
            // line ends), and what the word checks look at.
            let acted_on = |c: u8| c < 0x20 || c == 0x7f || c == 0xC2 || c == 0xE2 || specials.contains(&c);
            let looked_at = |c: u8| !(0x20..0x7f).contains(&c) || specials.contains(&c);
            let plain = all_plain(&b, specials);
            if plain {
                proptest::prop_assert!(!b.iter().any(|&c| acted_on(c)), "{:?}", b);
            }
            if b.len() >= 16 {
                // Exact from sixteen bytes on.
                proptest::prop_assert_eq!(plain, !b.iter().any(|&c| looked_at(c)), "{:?}", b);
            }
        }

        #[test]
        fn is_ascii_is_std(b in proptest::collection::vec(0u8..0x80, 0..100), at in 0usize..100, high in 0x80u8..=0xff) {
            let mut b = b;
            proptest::prop_assert!(is_ascii(&b));
            if at < b.len() {
                b[at] = high;
                proptest::prop_assert!(!is_ascii(&b));
            }
        }

        #[test]
        fn has_lf_is_contains(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), at in 0usize..300) {
            let mut b = b;
            proptest::prop_assert_eq!(has_lf(&b), b.contains(&b'\n'));
            if at < b.len() {
                b[at] = b'\n';
                proptest::prop_assert!(has_lf(&b));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn is_ip_is_std_parsing(t in "[0-9.]{0,17}|[0-9a-f:.]{0,20}|(25[0-9]|0|00|01|[1-9][0-9]?|1[0-9][0-9])(\\.(25[0-9]|0|00|01|[1-9][0-9]?|1[0-9][0-9]|256)){2,4}") {
            proptest::prop_assert_eq!(is_ip(&t), t.parse::<std::net::IpAddr>().is_ok(), "{}", t);
        }
    }

    #[test]
    fn is_ip_reads_dotted_quads() {
        for t in [
            "203.0.113.31",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "2001:db8::1",
        ] {
            assert!(is_ip(t), "{t}");
        }
        for t in [
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            "host.example",
            // Found by the property test: a long run of digits once
            // overflowed the part's value before its length was checked.
            "05000000000",
            "1.2.3.99999999999",
        ] {
            assert!(!is_ip(t), "{t}");
        }
    }

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

    /// An escape like the formats': some printable bytes escaped, control
    /// characters and DEL made spaces.
    fn escape(b: u8) -> Option<&'static [u8]> {
        match b {
            b'=' => Some(b"\\="),
            b'"' => Some(b"\\\""),
            b']' => Some(b"\\]"),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            0..=0x1f | 0x7f => Some(b" "),
            _ => None,
        }
    }

    /// The bytes [`escape`] maps among printable ASCII.
    const SPECIALS: &[u8] = b"=\"]\\";

    #[test]
    fn the_fast_escape_writes_what_the_plain_one_does() {
        let texts = [
            String::new(),
            "plain text, long enough for words: abcdefghijklmnop".to_string(),
            "a=b\\c\nd\u{7f}e\u{1}fé😀\u{2028}g\u{85}h=".repeat(3),
            "x".repeat(15) + "=" + &"y".repeat(16) + "\\",
            "Tōkyō (日本) = 東京\u{2029}".repeat(5),
        ];
        for t in &texts {
            let (mut slow, mut fast) = (Vec::new(), Vec::new());
            escape_into(t, &mut slow, escape);
            escape_into_fast(t, &mut fast, SPECIALS, escape);
            assert_eq!(fast, slow, "{t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn put_appends_exactly_the_bytes(
            before in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            s in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut out = before.clone();
            put(&mut out, &s);
            let mut want = before;
            want.extend_from_slice(&s);
            proptest::prop_assert_eq!(out, want);
        }

        #[test]
        fn the_fast_escape_agrees_on_any_text(t in "[a-z =\\\\\"|\\]\t\r\n\u{0}\u{7f}\u{85}\u{2028}é日😀]{0,40}") {
            let (mut slow, mut fast) = (Vec::new(), Vec::new());
            escape_into(&t, &mut slow, escape);
            escape_into_fast(&t, &mut fast, SPECIALS, escape);
            proptest::prop_assert_eq!(fast, slow);
        }

        /// Mostly plain text, with at most one byte to look at, anywhere:
        /// the word-at-a-time check must find it.
        #[test]
        fn the_fast_escape_finds_one_special_in_plain_text(
            t in "[a-zA-Z0-9 ._-]{0,30}[=\\\\\"|\\]\t\r\n\u{0}\u{7f}\u{85}\u{2028}é:/]?[a-zA-Z0-9 ._-]{0,30}",
        ) {
            let (mut slow, mut fast) = (Vec::new(), Vec::new());
            escape_into(&t, &mut slow, escape);
            escape_into_fast(&t, &mut fast, SPECIALS, escape);
            proptest::prop_assert_eq!(fast, slow);
        }
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
        use crate::event::{App, Event};
        let ev = Event::from_log(
            App::Investigate,
            json!({"s": "a", "z": null, "n": 87, "f": 1.5, "t": true,
                   "a": ["Chrome", 1], "o": {"a": {"b": null}}})
            .as_object()
            .unwrap()
            .clone(),
        );
        let texts: Vec<&str> = ev.fields().iter().map(|(_, v)| v.text()).collect();
        assert_eq!(
            texts,
            [
                "a",
                "",
                "87",
                "1.5",
                "true",
                r#"["Chrome",1]"#,
                r#"{"a":{"b":null}}"#
            ]
        );
    }

    #[test]
    fn ints_and_key_sets() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            out.clear();
            push_int(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let out = b"cloudsocAcloudsocBcloudsocA".to_vec();
        let mut keys = KeySet::new();
        assert!(!keys.contains(&out, &out[0..9]));
        keys.insert(&out, 0, 9);
        assert!(keys.contains(&out, &out[18..27]));
        assert!(!keys.contains(&out, &out[9..18]));
        keys.truncate(0);
        assert!(!keys.contains(&out, &out[18..27]));
    }
}
