//! CEF (ArcSight). See ../shared/reference/formats.md.
use crate::event::Event;

/// Appends the CEF line for `ev` (no syslog header, no line end).
pub fn write(_ev: &Event, _version: &str, _out: &mut Vec<u8>) {
    unimplemented!("CEF encoder")
}
