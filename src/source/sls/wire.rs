//! Alibaba Cloud Log Service's wire, as its SDKs speak it: the v1 request
//! signature, the protobuf `LogGroupList`, and LZ4 block bodies. Pure
//! functions (no I/O, no clock: the date is passed in), shared by the
//! source and the simulator, so that both sides are checked against the
//! same facts and the simulator against the vendor's own SDK in CI.

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

/// The API version every request names (`x-log-apiversion`).
pub const API_VERSION: &str = "0.6.0";

/// `Date` as the service reads it: RFC 1123, GMT, English names.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parses a `Date` written by [`http_date`] (or any RFC 2822 date).
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `Content-MD5` as the service checks it: the body's MD5 in upper-case
/// hex (not base64, as HTTP's own header would be).
pub fn content_md5(body: &[u8]) -> String {
    let digest = Md5::digest(body);
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
    }
    out
}

/// What a request's signature covers.
#[derive(Clone, Debug)]
pub struct Signed<'a> {
    pub method: &'a str,
    /// The `Content-MD5` header (empty without a body).
    pub content_md5: &'a str,
    pub content_type: &'a str,
    /// The `Date` header.
    pub date: &'a str,
    /// The request's headers (any case, any order): those named `x-log-*`
    /// or `x-acs-*` are signed, except `x-log-meta-*` and `x-log-date`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The path, not percent-encoded.
    pub path: &'a str,
    /// The query parameters, decoded.
    pub query: &'a [(&'a str, &'a str)],
}

/// The string the signature is computed over (signature v1):
/// `VERB\nContent-MD5\nContent-Type\nDate\n` then each signed header as
/// `name:value\n`, sorted by name, then the path and the sorted query.
pub fn string_to_sign(r: &Signed<'_>) -> String {
    let mut headers: Vec<(String, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .filter(|(k, _)| {
            (k.starts_with("x-log-") || k.starts_with("x-acs-"))
                && !k.starts_with("x-log-meta-")
                && k != "x-log-date"
        })
        .collect();
    headers.sort();
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        r.method, r.content_md5, r.content_type, r.date
    );
    for (k, v) in headers {
        s.push_str(&k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(r.path);
    if !r.query.is_empty() {
        let mut q: Vec<&(&str, &str)> = r.query.iter().collect();
        q.sort();
        s.push('?');
        for (i, (k, v)) in q.into_iter().enumerate() {
            if i > 0 {
                s.push('&');
            }
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// The signature v1 of `r` under `secret`: base64 of its HMAC-SHA1.
pub fn signature(r: &Signed<'_>, secret: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, string_to_sign(r).as_bytes());
    crate::source::http::base64(tag.as_ref())
}

/// Whether `given` is the signature of `r` under `secret`, compared in
/// constant time (the simulator checks what the service checks).
pub fn signature_matches(r: &Signed<'_>, secret: &str, given: &str) -> bool {
    let want = signature(r, secret);
    want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

// ---------------------------------------------------------------------
// Protobuf: LogGroupList (proto2, `log_logs.proto` of the SDKs).

/// One log: its time (unix seconds, and the nanosecond part) and its
/// contents in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    pub time: u32,
    pub time_ns: Option<u32>,
    pub contents: Vec<(String, String)>,
}

/// One log group: logs sharing a topic, a source and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogGroup {
    pub logs: Vec<Log>,
    pub topic: String,
    pub source: String,
    pub tags: Vec<(String, String)>,
}

/// Why a body is not a `LogGroupList`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protobuf: {0}")]
pub struct ProtoError(pub &'static str);

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether a string held bytes that are not UTF-8 (replaced).
    lossy: bool,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.i)
                .ok_or(ProtoError("cut inside a number"))?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError("a number longer than 10 bytes"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let len = usize::try_from(self.varint()?).map_err(|_| ProtoError("a length too large"))?;
        let end = self
            .i
            .checked_add(len)
            .filter(|&e| e <= self.b.len())
            .ok_or(ProtoError("a field longer than the body"))?;
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, ProtoError> {
        let b = self.bytes()?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => {
                self.lossy = true;
                String::from_utf8_lossy(b).into_owned()
            }
        })
    }

    fn fixed32(&mut self) -> Result<u32, ProtoError> {
        let b = self
            .b
            .get(self.i..self.i + 4)
            .ok_or(ProtoError("cut inside a fixed32"))?;
        self.i += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next field's number and wire type, or `None` at the end.
    fn tag(&mut self) -> Result<Option<(u64, u8)>, ProtoError> {
        if self.i >= self.b.len() {
            return Ok(None);
        }
        let t = self.varint()?;
        Ok(Some((t >> 3, (t & 7) as u8)))
    }

    /// Passes over a field of an unknown number.
    fn skip(&mut self, wire: u8) -> Result<(), ProtoError> {
        match wire {
            0 => self.varint().map(drop),
            1 => {
                self.i = self
                    .i
                    .checked_add(8)
                    .filter(|&e| e <= self.b.len())
                    .ok_or(ProtoError("cut inside a fixed64"))?;
                Ok(())
            }
            2 => self.bytes().map(drop),
            5 => self.fixed32().map(drop),
            _ => Err(ProtoError("an unknown wire type")),
        }
    }

    fn sub(&mut self) -> Result<Reader<'a>, ProtoError> {
        Ok(Reader {
            b: self.bytes()?,
            i: 0,
            lossy: false,
        })
    }
}

fn expect(wire: u8, want: u8) -> Result<(), ProtoError> {
    if wire == want {
        Ok(())
    } else {
        Err(ProtoError("a field of the wrong wire type"))
    }
}

fn pair(mut r: Reader<'_>, lossy: &mut bool) -> Result<(String, String), ProtoError> {
    let (mut k, mut v) = (None, None);
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect(wire, 2)?;
                k = Some(r.string()?);
            }
            2 => {
                expect(wire, 2)?;
                v = Some(r.string()?);
            }
            _ => r.skip(wire)?,
        }
    }
    *lossy |= r.lossy;
    match (k, v) {
        (Some(k), Some(v)) => Ok((k, v)),
        _ => Err(ProtoError("a key or value missing")),
    }
}

fn log(mut r: Reader<'_>, lossy: &mut bool) -> Result<Log, ProtoError> {
    let mut out = Log::default();
    let mut time = None;
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect(wire, 0)?;
                time = Some(r.varint()? as u32);
            }
            2 => {
                expect(wire, 2)?;
                let sub = r.sub()?;
                out.contents.push(pair(sub, lossy)?);
            }
            4 => {
                expect(wire, 5)?;
                out.time_ns = Some(r.fixed32()?).filter(|&n| n > 0);
            }
            _ => r.skip(wire)?,
        }
    }
    out.time = time.ok_or(ProtoError("a log without its Time"))?;
    Ok(out)
}

fn group(mut r: Reader<'_>, lossy: &mut bool) -> Result<LogGroup, ProtoError> {
    let mut g = LogGroup::default();
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect(wire, 2)?;
                let sub = r.sub()?;
                g.logs.push(log(sub, lossy)?);
            }
            3 => {
                expect(wire, 2)?;
                g.topic = r.string()?;
            }
            4 => {
                expect(wire, 2)?;
                g.source = r.string()?;
            }
            6 => {
                expect(wire, 2)?;
                let sub = r.sub()?;
                g.tags.push(pair(sub, lossy)?);
            }
            _ => r.skip(wire)?,
        }
    }
    *lossy |= r.lossy;
    Ok(g)
}

/// Reads a `LogGroupList`; `true` with it when a string held bytes that
/// are not UTF-8 (replaced by U+FFFD, as the SDK falls back to bytes).
pub fn decode(body: &[u8]) -> Result<(Vec<LogGroup>, bool), ProtoError> {
    let mut r = Reader {
        b: body,
        i: 0,
        lossy: false,
    };
    let mut lossy = false;
    let mut groups = Vec::new();
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect(wire, 2)?;
                let sub = r.sub()?;
                groups.push(group(sub, &mut lossy)?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((groups, lossy))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_pair(out: &mut Vec<u8>, field: u64, k: &str, v: &str) {
    let mut p = Vec::with_capacity(k.len() + v.len() + 6);
    put_bytes(&mut p, 1, k.as_bytes());
    put_bytes(&mut p, 2, v.as_bytes());
    put_bytes(out, field, &p);
}

/// Writes one `LogGroup` as a `LogGroupList`'s element (field 1): a list
/// is the concatenation of its groups so written.
pub fn encode_group(g: &LogGroup, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for l in &g.logs {
        let mut lb = Vec::new();
        put_varint(&mut lb, 1 << 3);
        put_varint(&mut lb, u64::from(l.time));
        for (k, v) in &l.contents {
            put_pair(&mut lb, 2, k, v);
        }
        if let Some(ns) = l.time_ns {
            put_varint(&mut lb, 4 << 3 | 5);
            lb.extend_from_slice(&ns.to_le_bytes());
        }
        put_bytes(&mut body, 1, &lb);
    }
    if !g.topic.is_empty() {
        put_bytes(&mut body, 3, g.topic.as_bytes());
    }
    if !g.source.is_empty() {
        put_bytes(&mut body, 4, g.source.as_bytes());
    }
    for (k, v) in &g.tags {
        put_pair(&mut body, 6, k, v);
    }
    put_bytes(out, 1, &body);
}

// ---------------------------------------------------------------------
// LZ4: the raw block format (no frame, no size prefix); the uncompressed
// size travels in `x-log-bodyrawsize`.

/// Decompresses an LZ4 block of `raw_size` bytes; a body that does not
/// give exactly that many is corrupt.
pub fn lz4_decompress(body: &[u8], raw_size: usize) -> Result<Vec<u8>, String> {
    let out = lz4_flex::block::decompress(body, raw_size).map_err(|e| e.to_string())?;
    if out.len() != raw_size {
        return Err(format!(
            "{} bytes once decompressed, not the {raw_size} announced",
            out.len()
        ));
    }
    Ok(out)
}

/// Compresses as the service does (a raw LZ4 block).
pub fn lz4_compress(raw: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress(raw)
}

// ---------------------------------------------------------------------
// Flattening: one log as the SDK's `loggroups_to_flattern_list` names its
// fields, as a JSON object.

/// The fields a log becomes, in order: `__time__`, `__time_ns_part__`
/// (when not zero), `__topic__`, `__source__`, `__logstore__` (the agent's
/// addition: which Logstore, for the SIEM), each tag as `__tag__:<key>`,
/// then the contents in order. A content named like one of the fields
/// before it replaces it (as in the SDK), in its own place.
pub fn flatten_json(g: &LogGroup, l: &Log, logstore: &str, out: &mut Vec<u8>) {
    use crate::event::json::write_str;
    let shadowed = |name: &str| l.contents.iter().any(|(k, _)| k == name);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(k, out);
        out.push(b':');
    };
    if !shadowed("__time__") {
        key(out, "__time__");
        out.extend_from_slice(l.time.to_string().as_bytes());
    }
    if let Some(ns) = l.time_ns
        && !shadowed("__time_ns_part__")
    {
        key(out, "__time_ns_part__");
        out.extend_from_slice(ns.to_string().as_bytes());
    }
    for (name, v) in [
        ("__topic__", g.topic.as_str()),
        ("__source__", g.source.as_str()),
        ("__logstore__", logstore),
    ] {
        if !shadowed(name) {
            key(out, name);
            write_str(v, out);
        }
    }
    for (k, v) in &g.tags {
        let name = format!("__tag__:{k}");
        if !shadowed(&name) {
            key(out, &name);
            write_str(v, out);
        }
    }
    for (i, (k, v)) in l.contents.iter().enumerate() {
        // A key given twice: the last one counts (a JSON object's rule).
        if l.contents[i + 1..].iter().any(|(k2, _)| k2 == k) {
            continue;
        }
        key(out, k);
        write_str(v, out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK's documented example of a string to sign, signed with a
    /// known key: computed independently with Python's hmac module
    /// (`base64(hmac.new(b"secret", s, sha1).digest())`).
    #[test]
    fn signs_as_the_sdk_does() {
        let r = Signed {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: "Tue, 02 Jun 2026 08:54:56 GMT",
            headers: &[
                ("x-log-signaturemethod", "hmac-sha1"),
                ("x-log-bodyrawsize", "0"),
                ("x-log-apiversion", "0.6.0"),
                ("x-log-date", "ignored"),
                ("x-log-meta-a", "ignored"),
                ("User-Agent", "ignored"),
            ],
            path: "/logstores/s/shards/0",
            query: &[
                ("type", "log"),
                ("cursor", "MTYxNDc1MDAyNzM3MzIwNTcxNA=="),
                ("count", "1000"),
            ],
        };
        assert_eq!(
            string_to_sign(&r),
            "GET\n\n\nTue, 02 Jun 2026 08:54:56 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\n\
             x-log-signaturemethod:hmac-sha1\n/logstores/s/shards/0?count=1000&cursor=MTYxNDc1MDAyNzM3MzIwNTcxNA==&type=log"
        );
        assert_eq!(signature(&r, "secret"), "236DRH/1m6yn8QLBM56nsOfOwPE=");
        assert!(signature_matches(
            &r,
            "secret",
            "236DRH/1m6yn8QLBM56nsOfOwPE="
        ));
        assert!(!signature_matches(
            &r,
            "secreT",
            "236DRH/1m6yn8QLBM56nsOfOwPE="
        ));
    }

    #[test]
    fn md5_is_upper_hex() {
        assert_eq!(content_md5(b""), "D41D8CD98F00B204E9800998ECF8427E");
        assert_eq!(content_md5(b"[]"), "D751713988987E9331980363E24189CE");
    }

    #[test]
    fn dates_round_trip() {
        let t = DateTime::from_timestamp(1_780_390_496, 0).unwrap();
        let s = http_date(t);
        assert_eq!(s, "Tue, 02 Jun 2026 08:54:56 GMT");
        assert_eq!(parse_http_date(&s), Some(t));
    }

    fn sample() -> Vec<LogGroup> {
        vec![
            LogGroup {
                logs: vec![
                    Log {
                        time: 1_700_000_000,
                        time_ns: Some(123),
                        contents: vec![("a".into(), "1".into()), ("b c".into(), "x\ny".into())],
                    },
                    Log {
                        time: 1_700_000_001,
                        time_ns: None,
                        contents: vec![],
                    },
                ],
                topic: "t".into(),
                source: "10.0.0.1".into(),
                tags: vec![("__receive_time__".into(), "1700000002".into())],
            },
            LogGroup::default(),
        ]
    }

    #[test]
    fn protobuf_round_trips() {
        let mut body = Vec::new();
        for g in sample() {
            encode_group(&g, &mut body);
        }
        let (groups, lossy) = decode(&body).unwrap();
        assert_eq!(groups, sample());
        assert!(!lossy);
        // Every cut of the body is refused or reads fewer groups, never
        // panics.
        for cut in 0..body.len() {
            if let Ok((g, _)) = decode(&body[..cut]) {
                assert!(g.len() < 2 || g[1] != sample()[1] || cut == body.len());
            }
        }
        // Not UTF-8: replaced, said.
        let mut bad = Vec::new();
        encode_group(
            &LogGroup {
                logs: vec![Log {
                    time: 1,
                    time_ns: None,
                    contents: vec![("k".into(), "v".into())],
                }],
                ..LogGroup::default()
            },
            &mut bad,
        );
        let at = bad.iter().rposition(|&b| b == b'v').unwrap();
        bad[at] = 0xff;
        let (g, lossy) = decode(&bad).unwrap();
        assert!(lossy);
        assert_eq!(g[0].logs[0].contents[0].1, "\u{fffd}");
    }

    #[test]
    fn lz4_checks_the_announced_size() {
        let raw = b"abcabcabcabcabcabcabcabc hello hello hello".repeat(20);
        let c = lz4_compress(&raw);
        assert!(c.len() < raw.len());
        assert_eq!(lz4_decompress(&c, raw.len()).unwrap(), raw);
        assert!(lz4_decompress(&c, raw.len() + 1).is_err());
        assert!(lz4_decompress(&c[..c.len() / 2], raw.len()).is_err());
        assert!(lz4_decompress(b"\xff\xff\xff", 100).is_err());
    }

    #[test]
    fn flattens_as_the_sdk_names_fields() {
        let g = &sample()[0];
        let mut out = Vec::new();
        flatten_json(g, &g.logs[0], "ls", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"__time__":1700000000,"__time_ns_part__":123,"__topic__":"t","__source__":"10.0.0.1","__logstore__":"ls","__tag__:__receive_time__":"1700000002","a":"1","b c":"x\ny"}"#
        );
        let shadow = Log {
            time: 5,
            time_ns: None,
            contents: vec![
                ("__topic__".into(), "mine".into()),
                ("k".into(), "1".into()),
                ("k".into(), "2".into()),
            ],
        };
        let mut out = Vec::new();
        flatten_json(&LogGroup::default(), &shadow, "ls", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"__time__":5,"__source__":"","__logstore__":"ls","__topic__":"mine","k":"2"}"#
        );
    }
}
