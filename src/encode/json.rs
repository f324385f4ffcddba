//! JSON: one object per line with every field of the log plus "app".
use crate::event::Event;

/// Appends the JSON object for `ev` (no line end).
pub fn write(_ev: &Event, _out: &mut Vec<u8>) {
    unimplemented!("JSON encoder")
}
