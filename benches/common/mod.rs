//! What the benchmarks share: the formats (`Format::ALL`), and an encoder for each as a
//! REMOTE output over TCP writes it (RFC 5424 header, LF framing).

use siem_agent::encode::{Encoder, Envelope, Format, Framing, rfc5424};

/// Every format, by its `--format` name.
pub const FORMATS: [(&str, Format); 6] = Format::ALL;

/// `format` in RFC 5424, LF-framed, cut at `max_message_size`.
pub fn encoder(format: Format, max_message_size: Option<usize>) -> Encoder {
    Encoder {
        format,
        envelope: Envelope::Rfc5424(rfc5424::Header {
            facility: 1,
            hostname: "collector-1".into(),
            app_name: "siem-agent".into(),
            procid: "1".into(),
            bom: false,
        }),
        framing: Framing::Lf,
        version: "1".into(),
        max_message_size,
        extra: Default::default(),
    }
}
