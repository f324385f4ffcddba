//! Framing (RFC 6587).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram: the message as is.
    Datagram,
    /// `MSG LF`.
    Lf,
    /// `LEN SP MSG`.
    OctetCounted,
}

impl Framing {
    /// Appends one frame holding `msg` to `out`.
    pub fn frame(&self, _msg: &[u8], _out: &mut Vec<u8>) {
        unimplemented!("framing")
    }
}
