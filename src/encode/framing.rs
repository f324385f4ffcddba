//! Framing on the wire (RFC 6587 for streams).

/// How one message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram: the message as it is.
    Datagram,
    /// `MSG LF`. The encoders never put a raw LF in a message; should one
    /// get there, it is replaced by a space, so one message stays one frame.
    Lf,
    /// `LEN SP MSG`, LEN the decimal byte count, no leading zeros.
    OctetCounted,
}

impl Framing {
    /// Appends one frame holding `msg` to `out`.
    pub fn frame(&self, msg: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Datagram => out.extend_from_slice(msg),
            Framing::Lf => {
                let start = out.len();
                out.extend_from_slice(msg);
                end_line(out, start);
            }
            Framing::OctetCounted => {
                out.extend_from_slice(msg.len().to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(msg);
            }
        }
    }

    /// Whether a frame is its message and something after it (nothing
    /// before), so that the message can be written in place
    /// ([`Framing::end`]).
    pub fn ends_the_message(&self) -> bool {
        matches!(self, Framing::Datagram | Framing::Lf)
    }

    /// Makes the message in `buf` (all of it) a frame, in place: what
    /// [`Framing::frame`] makes of it, for framings that
    /// [end the message](Framing::ends_the_message).
    pub fn end(&self, buf: &mut Vec<u8>) {
        match self {
            Framing::Datagram => {}
            Framing::Lf => end_line(buf, 0),
            Framing::OctetCounted => {
                let msg = std::mem::take(buf);
                self.frame(&msg, buf);
            }
        }
    }
}

/// Ends the message in `out[start..]` with LF, any LF in it (which no
/// encoder writes) made a space, so that one message stays one line.
fn end_line(out: &mut Vec<u8>, start: usize) {
    let has_lf = super::text::has_lf(&out[start..]);
    debug_assert!(!has_lf, "an encoder wrote a raw LF");
    if has_lf {
        for b in out[start..].iter_mut().filter(|b| **b == b'\n') {
            *b = b' ';
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: Framing, m: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        f.frame(m, &mut out);
        out
    }

    #[test]
    fn frames() {
        assert_eq!(frame(Framing::Datagram, b"abc"), b"abc");
        assert_eq!(frame(Framing::Lf, b"abc"), b"abc\n");
        assert_eq!(frame(Framing::OctetCounted, b"abc"), b"3 abc");
        assert_eq!(frame(Framing::OctetCounted, b""), b"0 ");
        assert_eq!(
            frame(Framing::OctetCounted, "é".as_bytes()),
            "2 é".as_bytes()
        );
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_stray_lf_never_makes_two_frames() {
        assert_eq!(frame(Framing::Lf, b"a\nb"), b"a b\n");
        let mut buf = b"a\nb".to_vec();
        Framing::Lf.end(&mut buf);
        assert_eq!(buf, b"a b\n");
    }

    #[test]
    fn a_frame_made_in_place_is_the_same_frame() {
        for f in [Framing::Datagram, Framing::Lf, Framing::OctetCounted] {
            for m in [&b""[..], b"abc", "é x".as_bytes(), &[b'x'; 200]] {
                let mut buf = m.to_vec();
                f.end(&mut buf);
                assert_eq!(buf, frame(f, m), "{f:?}");
            }
        }
    }
}
