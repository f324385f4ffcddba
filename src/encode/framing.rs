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
                debug_assert!(!msg.contains(&b'\n'), "an encoder wrote a raw LF");
                if msg.contains(&b'\n') {
                    out.extend(msg.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                } else {
                    out.extend_from_slice(msg);
                }
                out.push(b'\n');
            }
            Framing::OctetCounted => {
                out.extend_from_slice(msg.len().to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(msg);
            }
        }
    }
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
    }
}
