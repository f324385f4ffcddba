//! RFC 5424 header.
use super::Stamp;
use crate::event::Event;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub bom: bool,
}

impl Header {
    /// Appends `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - ` (and the BOM when set).
    pub fn write(&self, _ev: &Event, _stamp: &Stamp, _out: &mut Vec<u8>) {
        unimplemented!("RFC 5424 header")
    }
}
