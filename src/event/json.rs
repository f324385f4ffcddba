//! Reading logs out of JSON text into [`Logs`], without a tree of owned
//! values: each field is a (key, value) pair of slices of the text, a
//! string unescaped (into the page's side buffer) only when it holds an
//! escape.
//!
//! The reader takes exactly the JSON that serde_json takes, and reads it
//! the same way: numbers are kept in the form serde_json writes them,
//! nested arrays and objects as serde_json's compact text, and a key
//! repeated in one log keeps its first place and its last value. Whatever
//! it does not take by itself (a lone surrogate escape, a number out of
//! range, a syntax error, nesting past serde_json's limit) it refuses with
//! [`Bail`], and the caller reads the text with serde_json instead, for
//! serde_json's error or repair. So the fast reader decides nothing that
//! the slow one would decide otherwise.

use super::{
    ABSENT, App, CURSOR_FIELDS, Event, Field, KNOWN_COUNT, Kind, Known, Logs, NOT_KNOWN, Span, Val,
    parse_timestamp,
};
use std::sync::Arc;

/// The reader does not take this text by itself: read it with serde_json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bail;

/// Nesting deeper than this (counted from the page's top) is left to
/// serde_json, which knows its own limit (128).
const MAX_DEPTH: u32 = 100;

/// Bytes that end a run of plain string content: `"`, `\` and control
/// characters (which JSON does not allow raw).
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// What an event knows of its log before the page is complete.
struct Info {
    app: App,
    time: Option<chrono::DateTime<chrono::Utc>>,
    cursor_time: Option<chrono::DateTime<chrono::Utc>>,
    first: u32,
    end: u32,
    id: Option<Span>,
    known: [u32; KNOWN_COUNT],
}

/// Reads JSON text into the logs of one page.
pub struct Reader {
    text: String,
    i: usize,
    extra: String,
    fields: Vec<Field>,
    infos: Vec<Info>,
    /// The distinct keys of the page, and a hash table of them (key number
    /// + 1; 0 is empty).
    keys: Vec<KeyInfo>,
    table: Vec<u32>,
}

/// One distinct key of a page.
struct KeyInfo {
    span: Span,
    hash: u64,
    /// The [`Known`] field it is, or [`NOT_KNOWN`].
    known: u8,
    /// The last log that had it (to spot a key repeated in one log).
    last_log: u32,
}

/// Numbers the pages, so that a format can keep what it worked out for a
/// page's keys while it writes the page's logs.
static PAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Reader {
    /// A reader at the start of `text`. Texts of 2 GiB and more are not
    /// taken (spans are 31-bit): the text comes back.
    pub fn new(text: String) -> Result<Reader, String> {
        if text.len() >= super::EXTRA as usize {
            return Err(text);
        }
        let fields = super::pool::fields(text.len() / 16);
        Ok(Reader {
            text,
            i: 0,
            extra: String::new(),
            fields,
            infos: Vec::new(),
            keys: Vec::new(),
            table: vec![0; 64],
        })
    }

    /// The logs read so far, and an event for each.
    pub fn finish(self) -> Vec<Event> {
        let page = Arc::new(Logs {
            serial: PAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            keys: self.keys.iter().map(|k| k.span).collect(),
            text: self.text,
            extra: self.extra,
            fields: self.fields,
        });
        self.infos
            .into_iter()
            .map(|i| Event {
                app: i.app,
                time: i.time,
                cursor_time: i.cursor_time,
                page: page.clone(),
                first: i.first,
                end: i.end,
                id: i.id,
                known: i.known,
            })
            .collect()
    }

    /// The text, given back (when the reader bails).
    pub fn into_text(self) -> String {
        self.text
    }

    /// Skips whitespace; the next byte, if any.
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.text.as_bytes();
        while let Some(&c) = b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    /// Skips whitespace and `c`, or fails.
    pub fn eat(&mut self, c: u8) -> Result<(), Bail> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// After `{` or a member: `Some(key)` for the next member (its `:`
    /// read), `None` at `}` (read). `first` is true right after `{`.
    pub fn next_key(&mut self, first: bool) -> Result<Option<&str>, Bail> {
        match self.peek() {
            Some(b'}') => {
                self.i += 1;
                return Ok(None);
            }
            Some(b',') if !first => self.i += 1,
            Some(b'"') if first => {}
            _ => return Err(Bail),
        }
        if self.peek() != Some(b'"') {
            return Err(Bail);
        }
        let key = self.string()?;
        self.eat(b':')?;
        Ok(Some(self.span_text(key)))
    }

    /// After `[` or an element: whether another element follows (its `,`
    /// read); at `]`, false (read). `first` is true right after `[`.
    pub fn next_element(&mut self, first: bool) -> Result<bool, Bail> {
        match self.peek() {
            Some(b']') => {
                self.i += 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.i += 1;
                Ok(true)
            }
            Some(_) if first => Ok(true),
            _ => Err(Bail),
        }
    }

    /// The text of the next value, skipped (checked, not kept).
    pub fn raw_value(&mut self) -> Result<&str, Bail> {
        self.peek();
        let start = self.i;
        let mark = self.extra.len();
        self.skip(1)?;
        self.extra.truncate(mark);
        Ok(&self.text[start..self.i])
    }

    /// Reads one log object (at `{`) with the fields `app` needs found.
    pub fn log(&mut self, app: App) -> Result<(), Bail> {
        self.eat(b'{')?;
        let first = self.fields.len();
        let mut known = [ABSENT; KNOWN_COUNT];
        let mut at_first = true;
        // The logs of a page mostly have the same keys in the same order:
        // the previous log's key at the same place is tried first.
        let (prev_first, prev_end) = self
            .infos
            .last()
            .map_or((0, 0), |i| (i.first as usize, i.end as usize));
        let mut nth = prev_first;
        loop {
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                Some(b',') if !at_first => self.i += 1,
                Some(b'"') if at_first => {}
                _ => return Err(Bail),
            }
            at_first = false;
            if self.peek() != Some(b'"') {
                return Err(Bail);
            }
            let guess = match self.fields.get(nth).map(|f| f.key_id) {
                Some(id) if nth < prev_end && self.same_key(id) => Some(id),
                _ => None,
            };
            nth += 1;
            let id = match guess {
                Some(id) => id,
                None => {
                    let key = self.string()?;
                    self.key_id(key)
                }
            };
            self.eat(b':')?;
            let (kind, val) = self.value()?;
            let log = self.infos.len() as u32;
            let info = &mut self.keys[id as usize];
            if info.last_log == log {
                // A repeat: it keeps the first place and takes the last
                // value (as serde_json's ordered map does).
                let logs = &self.fields[first..];
                if let Some(j) = logs.iter().position(|f| f.key_id == id) {
                    let f = &mut self.fields[first + j];
                    f.kind = kind;
                    f.val = val;
                    continue;
                }
            }
            info.last_log = log;
            let k = info.known;
            if let Some(slot) = known.get_mut(usize::from(k)) {
                *slot = (self.fields.len() - first) as u32;
            }
            self.fields.push(Field {
                val,
                kind,
                known: k,
                key_id: id,
            });
        }
        let end = self.fields.len();
        let field = |k: Known| match known[k as usize] {
            ABSENT => None,
            i => Some(self.fields[first + i as usize]),
        };
        let id = field(Known::Id).and_then(|f| match f.kind {
            Kind::Str if f.val.len > 0 => Some(f.val),
            Kind::Num => Some(f.val),
            _ => None,
        });
        let time_of = |k: Known| {
            field(k)
                .filter(|f| f.kind == Kind::Str)
                .and_then(|f| parse_timestamp(self.span_text(f.val)))
        };
        let own = match app {
            App::Investigate => Known::CreatedTimestamp,
            App::Detect => Known::IncidentStartTime,
            // The Log Service's time is the log's own (`__time__`), set by
            // its source.
            App::Alerts | App::Activities | App::CirrusLogs | App::RestLogs | App::SlsShard(_) => {
                // Epoch milliseconds (Defender for Cloud Apps) or RFC 3339
                // (Cirrus), on the axis the API filters on.
                let time = field(Known::Timestamp)
                    .filter(|f| matches!(f.kind, Kind::Num | Kind::Str))
                    .and_then(|f| super::parse_epoch_ms(self.span_text(f.val)));
                self.infos.push(Info {
                    app,
                    time,
                    cursor_time: time,
                    first: first as u32,
                    end: end as u32,
                    id,
                    known,
                });
                return Ok(());
            }
        };
        debug_assert_eq!(own.name(), app.time_field());
        debug_assert_eq!(CURSOR_FIELDS[0], Known::CreatedTimestamp.name());
        let time = time_of(own);
        // Investigate's own time is its created_timestamp: parsed once.
        let cursor_time = if own == Known::CreatedTimestamp && time.is_some() {
            time
        } else {
            time_of(Known::CreatedTimestamp).or_else(|| time_of(Known::InsertedTimestamp))
        };
        self.infos.push(Info {
            app,
            time,
            cursor_time,
            first: first as u32,
            end: end as u32,
            id,
            known,
        });
        Ok(())
    }

    /// Reads the key at `self.i` (at `"`) when it is the key numbered
    /// `id` written the same way, without an escape (true), without a hash
    /// or a search. Else reads nothing (false).
    #[inline(always)]
    fn same_key(&mut self, id: u32) -> bool {
        let k = self.keys[id as usize].span;
        if k.start & super::EXTRA != 0 {
            return false;
        }
        let b = self.text.as_bytes();
        let (known, n) = (k.start as usize, k.len as usize);
        let at = self.i + 1;
        if b.get(at + n) == Some(&b'"') && same_bytes(b, at, known, n) {
            self.i = at + n + 1;
            return true;
        }
        false
    }

    /// The page-wide number of the key at `key` (the same for every log
    /// that has that key).
    fn key_id(&mut self, key: Span) -> u32 {
        let name = self.span_text(key).as_bytes();
        let h = key_hash(name);
        let mask = self.table.len() - 1;
        let mut i = h as usize & mask;
        loop {
            match self.table[i] {
                0 => break,
                e => {
                    let k = &self.keys[e as usize - 1];
                    if k.hash == h && self.span_text(k.span).as_bytes() == name {
                        return e - 1;
                    }
                }
            }
            i = (i + 1) & mask;
        }
        let id = self.keys.len() as u32;
        self.keys.push(KeyInfo {
            span: key,
            hash: h,
            known: Known::of(name).map_or(NOT_KNOWN, |k| k as u8),
            last_log: u32::MAX,
        });
        self.table[i] = id + 1;
        if self.keys.len() * 2 > self.table.len() {
            // Grown: every key placed again.
            let size = self.table.len() * 4;
            self.table = vec![0; size];
            for (n, k) in self.keys.iter().enumerate() {
                let mut j = k.hash as usize & (size - 1);
                while self.table[j] != 0 {
                    j = (j + 1) & (size - 1);
                }
                self.table[j] = n as u32 + 1;
            }
        }
        id
    }

    fn span_text(&self, s: Span) -> &str {
        if s.start & super::EXTRA == 0 {
            &self.text[s.start as usize..(s.start + s.len) as usize]
        } else {
            let start = (s.start & !super::EXTRA) as usize;
            &self.extra[start..start + s.len as usize]
        }
    }

    /// A field's value.
    #[inline(always)]
    fn value(&mut self) -> Result<(Kind, Span), Bail> {
        let empty = Span { start: 0, len: 0 };
        // A literal's span is its text (so that a value's text is its span
        // whatever its kind: see `Logs::text_of`); null's is empty.
        let at = |i: usize, n: u32| Span {
            start: i as u32,
            len: n,
        };
        match self.peek() {
            Some(b'"') => Ok((Kind::Str, self.string()?)),
            Some(b'-' | b'0'..=b'9') => Ok((Kind::Num, self.number()?)),
            Some(b't') => {
                let span = at(self.i, 4);
                self.literal(b"true").map(|_| (Kind::True, span))
            }
            Some(b'f') => {
                let span = at(self.i, 5);
                self.literal(b"false").map(|_| (Kind::False, span))
            }
            Some(b'n') => self.literal(b"null").map(|_| (Kind::Null, empty)),
            Some(b'[' | b'{') => {
                let start = self.i;
                let mark = self.extra.len();
                // A log's values are at depth 3 of a page.
                self.skip(3)?;
                self.extra.truncate(mark);
                // Rare: serde_json makes the canonical compact text (key
                // order kept, repeats resolved, numbers in its form).
                let v: serde_json::Value =
                    serde_json::from_str(&self.text[start..self.i]).map_err(|_| Bail)?;
                let text = serde_json::to_string(&v).map_err(|_| Bail)?;
                Ok((Kind::Nested, self.push_extra(&text)?))
            }
            _ => Err(Bail),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Bail> {
        if self.text.as_bytes()[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn push_extra(&mut self, s: &str) -> Result<Span, Bail> {
        let start = self.extra.len();
        self.extra.push_str(s);
        extra_span(start, self.extra.len())
    }

    /// A string (at `"`), unescaped.
    #[inline(always)]
    fn string(&mut self) -> Result<Span, Bail> {
        let b = self.text.as_bytes();
        let start = self.i + 1;
        let i = scan_plain(b, start);
        match b.get(i) {
            Some(b'"') => {
                self.i = i + 1;
                Ok(Span {
                    start: start as u32,
                    len: (i - start) as u32,
                })
            }
            Some(b'\\') => self.unescape(start, i),
            _ => Err(Bail), // a control character, or the end
        }
    }

    /// The rest of a string that holds an escape at `i`: written unescaped
    /// to the side buffer.
    fn unescape(&mut self, start: usize, mut i: usize) -> Result<Span, Bail> {
        let b = self.text.as_bytes();
        let out_start = self.extra.len();
        let mut run = start;
        loop {
            i = scan_plain(b, i);
            self.extra.push_str(&self.text[run..i]);
            match b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return extra_span(out_start, self.extra.len());
                }
                Some(b'\\') => {}
                _ => return Err(Bail),
            }
            let c = match b.get(i + 1) {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    let hi = hex4(b, i + 2)?;
                    let code = match hi {
                        0xD800..=0xDBFF => {
                            // A pair, or serde_json's business (an error, or
                            // the lenient repair).
                            if b.get(i + 6) != Some(&b'\\') || b.get(i + 7) != Some(&b'u') {
                                return Err(Bail);
                            }
                            let lo = hex4(b, i + 8)?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return Err(Bail);
                            }
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return Err(Bail),
                        c => c,
                    };
                    i += 4;
                    char::from_u32(code).ok_or(Bail)?
                }
                _ => return Err(Bail),
            };
            self.extra.push(c);
            i += 2;
            run = i;
        }
    }

    /// A number, in serde_json's form: an integer within 64 bits as
    /// written; anything else as serde_json reads and writes it (or, out of
    /// range, left to serde_json).
    fn number(&mut self) -> Result<Span, Bail> {
        let b = self.text.as_bytes();
        let start = self.i;
        let mut i = start;
        let neg = b[i] == b'-';
        if neg {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(Bail),
        }
        let digits = i - start - usize::from(neg);
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(Bail);
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            plain = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(Bail);
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.i = i;
        // Up to 19 digits always fit a u64, up to 18 an i64; "-0" is read
        // as 0.
        if plain
            && (if neg {
                digits <= 18 && b[start + 1] != b'0'
            } else {
                digits <= 19
            })
        {
            return Ok(Span {
                start: start as u32,
                len: (i - start) as u32,
            });
        }
        let n: serde_json::Number = serde_json::from_str(&self.text[start..i]).map_err(|_| Bail)?;
        self.push_extra(&n.to_string())
    }

    /// Skips one value, checking it.
    fn skip(&mut self, depth: u32) -> Result<(), Bail> {
        if depth > MAX_DEPTH {
            return Err(Bail);
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'[') => {
                self.i += 1;
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Some(b'{') => {
                self.i += 1;
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(Bail),
        }
    }
}

fn extra_span(start: usize, end: usize) -> Result<Span, Bail> {
    if end >= super::EXTRA as usize {
        return Err(Bail);
    }
    Ok(Span {
        start: start as u32 | super::EXTRA,
        len: (end - start) as u32,
    })
}

fn hex4(b: &[u8], at: usize) -> Result<u32, Bail> {
    let digits = b.get(at..at + 4).ok_or(Bail)?;
    let mut v = 0;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16).ok_or(Bail)?;
    }
    Ok(v)
}

/// A cheap hash of a short key (its length and its first and last eight
/// bytes), for filters of keys already seen.
pub fn key_hash(k: &[u8]) -> u64 {
    let n = k.len();
    let (head, tail) = if n >= 8 {
        (
            u64::from_le_bytes(k[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(k[n - 8..].try_into().unwrap_or_default()),
        )
    } else if n >= 4 {
        (
            u64::from(u32::from_le_bytes(k[..4].try_into().unwrap_or_default())),
            u64::from(u32::from_le_bytes(
                k[n - 4..].try_into().unwrap_or_default(),
            )),
        )
    } else if n > 0 {
        (
            u64::from(k[0]) | u64::from(k[n / 2]) << 8 | u64::from(k[n - 1]) << 16,
            0,
        )
    } else {
        (0, 0)
    };
    (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
}

/// Whether `b[x..x + n]` and `b[y..y + n]` are the same bytes (false when
/// either is not inside `b`). Keys are short: up to sixteen bytes are
/// compared as two words each, overlapping, without a call.
#[inline(always)]
fn same_bytes(b: &[u8], x: usize, y: usize, n: usize) -> bool {
    let (Some(p), Some(q)) = (b.get(x..x + n), b.get(y..y + n)) else {
        return false;
    };
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or_default());
    let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or_default());
    match n {
        8..=16 => word(p, 0) == word(q, 0) && word(p, n - 8) == word(q, n - 8),
        4..=7 => half(p, 0) == half(q, 0) && half(p, n - 4) == half(q, n - 4),
        _ => p == q,
    }
}

/// Where the first `"`, `\` or control character is in `b[i..]` (or
/// `b.len()`): sixteen bytes at a time (SSE2, which every x86_64 has),
/// then as [`scan_plain_words`] does.
#[cfg(target_arch = "x86_64")]
#[inline]
fn scan_plain(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    while i + 16 <= b.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the sixteen
        // bytes loaded (unaligned) are inside `b`.
        let mask = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
            let ctrl = _mm_set1_epi8(0x1f);
            // A byte is at most 0x1f (unsigned) when max(byte, 0x1f) is 0x1f.
            let low = _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, slash))) as u32
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    scan_plain_words(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
fn scan_plain(b: &[u8], i: usize) -> usize {
    scan_plain_words(b, i)
}

/// Where the first `"`, `\` or control character is in `b[i..]` (or
/// `b.len()`): eight bytes at a time, then one by one.
fn scan_plain_words(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(w) = b.get(i..i + 8) {
        let v = u64::from_le_bytes(w.try_into().unwrap_or_default());
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        // Below 0x20, or equal to `"` or `\` (the lowest flagged byte is
        // always a true one).
        let hit = (v.wrapping_sub(ONES * 0x20) & !v & HIGH)
            | zero(v ^ (ONES * u64::from(b'"')))
            | zero(v ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !STOP[b[i] as usize] {
        i += 1;
    }
    i
}

/// Reads one log object from `text` (nothing else in it).
pub fn one_log(app: App, text: String) -> Result<Event, Bail> {
    let mut r = Reader::new(text).map_err(|_| Bail)?;
    r.log(app)?;
    if !r.at_end() {
        return Err(Bail);
    }
    r.finish().pop().ok_or(Bail)
}

/// Reads an array of log objects (`text` is nothing else).
pub fn log_array(app: App, text: String) -> Result<Vec<Event>, Bail> {
    let mut r = Reader::new(text).map_err(|_| Bail)?;
    r.eat(b'[')?;
    let mut first = true;
    while r.next_element(first)? {
        first = false;
        r.log(app)?;
    }
    if !r.at_end() {
        return Err(Bail);
    }
    Ok(r.finish())
}

/// Appends the log as serde_json writes an object: compact, keys in order
/// (the stable text that an id-less log's key is a hash of).
pub fn write_compact(fields: super::Fields<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        write_val(v, out);
    }
    out.push(b'}');
}

/// Appends a value as serde_json writes it.
pub fn write_val(v: Val<'_>, out: &mut Vec<u8>) {
    match v {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) | Val::Nested(n) => out.extend_from_slice(n.as_bytes()),
        Val::Str(s) => write_str(s, out),
    }
}

/// Appends a JSON string as serde_json writes it: `"` and `\` escaped,
/// control characters as `\b \t \n \f \r` or `\u00xx`, the rest raw.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    // Most strings need no escape: looked over sixteen bytes at a time.
    let mut i = scan_plain(b, 0);
    if i == b.len() {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    while i < b.len() {
        let c = b[i];
        out.extend_from_slice(&b[run..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]),
        }
        run = i + 1;
        i = scan_plain(b, run);
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// The log as serde_json reads it: each key, and its value as
    /// serde_json writes it.
    fn by_serde(text: &str) -> Option<Vec<(String, String)>> {
        let v: Map<String, Value> = serde_json::from_str(text).ok()?;
        Some(
            v.into_iter()
                .map(|(k, v)| (k, serde_json::to_string(&v).unwrap()))
                .collect(),
        )
    }

    fn by_reader(text: &str) -> Option<Vec<(String, String)>> {
        let ev = one_log(App::Investigate, text.to_string()).ok()?;
        Some(
            ev.fields()
                .iter()
                .map(|(k, v)| {
                    let mut out = Vec::new();
                    write_val(v, &mut out);
                    (k.to_string(), String::from_utf8(out).unwrap())
                })
                .collect(),
        )
    }

    /// The reader agrees with serde_json wherever it does not bail.
    fn agrees(text: &str) {
        let slow = by_serde(text);
        // None: left to serde_json.
        if let Some(fast) = by_reader(text) {
            assert_eq!(Some(fast), slow, "{text:?}");
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for t in [
            r#"{"a":"b","n":1,"f":1.50,"e":1E3,"neg":-0,"big":12345678901234567890123,"t":true,"x":null}"#,
            r#"{ "a" : "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" , "b":[1,{"c":2,"c":3}] }"#,
            r#"{"a":1,"a":2,"b":3}"#,
            r#"{"i64":-9223372036854775808,"u64":18446744073709551615,"over":18446744073709551616}"#,
            r#"{"n":-12,"z":0,"d":0.0,"m":-1.5e-7}"#,
            r#"{}"#,
        ] {
            agrees(t);
            assert!(by_reader(t).is_some(), "{t}");
        }
    }

    #[test]
    fn bails_where_serde_json_fails_or_repairs() {
        for t in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":01}"#,
            "{\"a\":\"x\u{1}\"}",
            r#"{"a":"x"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":"\x"}"#,
        ] {
            assert_eq!(by_reader(t), None, "{t}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(by_reader(&deep), None);
    }

    #[test]
    fn repeated_key_keeps_first_place_and_last_value() {
        let ev = one_log(App::Investigate, r#"{"_id":"a","b":1,"_id":"c"}"#.into()).unwrap();
        let keys: Vec<&str> = ev.fields().iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["_id", "b"]);
        assert_eq!(ev.id(), Some("c"));
        assert_eq!(ev.get("_id"), Some(Val::Str("c")));
    }

    #[test]
    fn keys_are_numbered_page_wide() {
        let mut text = String::from("[{");
        for i in 0..300 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str(r#""k7":"last"},{"k299":1,"k0":2}]"#);
        let events = log_array(App::Investigate, text).unwrap();
        let (a, b) = (&events[0], &events[1]);
        assert_eq!(a.fields().len(), 300);
        assert_eq!(a.page_keys().len(), 300);
        assert_eq!(a.get("k7"), Some(Val::Str("last")));
        assert_eq!(a.get("k150"), Some(Val::Num("150")));
        let ids = |ev: &Event| -> Vec<(String, u32)> {
            ev.fields()
                .entries()
                .map(|e| (e.key.to_string(), e.key_id))
                .collect()
        };
        let (ia, ib) = (ids(a), ids(b));
        assert_eq!(ib[0].1, ia[299].1);
        assert_eq!(ib[1].1, ia[0].1);
        assert_eq!(a.page_keys().get(ib[0].1), "k299");
        assert_ne!(
            a.page_keys().serial(),
            one_log(App::Investigate, "{}".into())
                .unwrap()
                .page_keys()
                .serial()
        );
    }

    #[test]
    fn compact_text_is_serde_jsons() {
        let v =
            json!({"a": "x\u{1}\u{7f}\"é\u{2028}", "b": [1, {"c": null}], "n": 1.5, "t": false});
        let text = serde_json::to_string(&v).unwrap();
        let ev = one_log(App::Investigate, text.clone()).unwrap();
        let mut out = Vec::new();
        write_compact(ev.fields(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((".{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_object_reads_as_serde_json_reads_it(
            kv in prop::collection::vec((".{0,6}", arb_json()), 0..8),
            pretty in any::<bool>(),
        ) {
            let v = Value::Object(kv.into_iter().collect());
            let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
            let fast = by_reader(&text);
            prop_assert!(fast.is_some(), "{}", text);
            prop_assert_eq!(fast, by_serde(&text));
            let ev = one_log(App::Investigate, text.clone()).unwrap();
            let mut out = Vec::new();
            write_compact(ev.fields(), &mut out);
            // As serde_json reads and writes the text (its float reading
            // is not always exact, so not necessarily `v`).
            let reread: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&reread).unwrap());
            // A value's text read without its kind is the text of its value.
            let texts: Vec<&str> = ev.fields().slots().map(|s| s.text).collect();
            let want: Vec<&str> = ev.fields().iter().map(|(_, v)| v.text()).collect();
            prop_assert_eq!(texts, want);
            for k in crate::event::Known::ALL {
                prop_assert_eq!(ev.known_text(k), ev.known(k).map_or("", |v| v.text()));
            }
        }

        #[test]
        fn same_bytes_is_slice_equality(
            b in prop::collection::vec(0u8..3, 0..48),
            x in 0usize..48, y in 0usize..48, n in 0usize..24,
        ) {
            let want = match (b.get(x..x + n), b.get(y..y + n)) {
                (Some(p), Some(q)) => p == q,
                _ => false,
            };
            prop_assert_eq!(same_bytes(&b, x, y, n), want);
        }

        #[test]
        fn the_scans_find_the_first_stop_byte(
            b in prop::collection::vec(prop_oneof![1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 1 => Just(0x1f), 2 => Just(0x20), 2 => Just(0x80), 40 => 0x20u8..=0xff], 0..80),
            from in 0usize..80,
        ) {
            let from = from.min(b.len());
            let want = (from..b.len()).find(|&i| STOP[b[i] as usize]).unwrap_or(b.len());
            prop_assert_eq!(scan_plain(&b, from), want);
            prop_assert_eq!(scan_plain_words(&b, from), want);
        }

        #[test]
        fn any_text_is_read_as_serde_json_reads_it_or_left_to_it(s in r#"[{}\[\]":,0-9a-z\\. -]{0,40}"#) {
            agrees(&s);
        }
    }
}
