//! The local syslog(3) header.
use super::Stamp;
use crate::event::Event;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalHeader {
    pub facility: u8,
    pub tag: String,
    pub pid: u32,
}

impl LocalHeader {
    /// Appends `<PRI>Mmm dd hh:mm:ss TAG[PID]: `.
    pub fn write(&self, _ev: &Event, _stamp: &Stamp, _out: &mut Vec<u8>) {
        unimplemented!("local syslog header")
    }
}
