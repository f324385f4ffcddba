//! The large buffers of a page (its text and its fields), kept when the
//! page is done with for the next one: a page is about a megabyte of each,
//! and memory the process has not touched yet costs a page fault per 4 KiB
//! (the allocator gives freed memory back to the system over time).
//! At most [`KEEP`] of each are kept.

use super::Field;
use std::sync::Mutex;

/// How many buffers of each kind are kept (pages in flight: one being
/// read, one being written, one waiting).
const KEEP: usize = 4;

/// Buffers larger than this are not kept (a page that large is rare).
const MAX_KEPT: usize = 16 << 20;

#[derive(Default)]
struct Pool {
    bytes: Vec<Vec<u8>>,
    fields: Vec<Vec<Field>>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bytes: Vec::new(),
    fields: Vec::new(),
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty byte buffer with room for at least `capacity` bytes.
pub fn bytes(capacity: usize) -> Vec<u8> {
    let kept = pool().bytes.pop();
    let mut b = kept.unwrap_or_default();
    b.clear();
    b.reserve(capacity);
    b
}

/// An empty field buffer with room for at least `capacity` fields.
pub(crate) fn fields(capacity: usize) -> Vec<Field> {
    let kept = pool().fields.pop();
    let mut f = kept.unwrap_or_default();
    f.clear();
    f.reserve(capacity);
    f
}

/// Keeps a page's buffers for the next pages.
pub(crate) fn give(bytes: Vec<u8>, fields: Vec<Field>) {
    let mut p = pool();
    if p.bytes.len() < KEEP && bytes.capacity() <= MAX_KEPT && bytes.capacity() > 0 {
        p.bytes.push(bytes);
    }
    if p.fields.len() < KEEP
        && fields.capacity() * size_of::<Field>() <= MAX_KEPT
        && fields.capacity() > 0
    {
        p.fields.push(fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_room() {
        give(Vec::with_capacity(100), Vec::new());
        let b = bytes(10);
        assert!(b.is_empty() && b.capacity() >= 10);
        let mut b = bytes(1000);
        b.extend_from_slice(b"abc");
        give(b, Vec::new());
        let b = bytes(5);
        assert!(b.is_empty() && b.capacity() >= 5);
    }
}
