//! What a format writes before each value (` cloudsocUserName=`,
//! `,"user_name":`, ...), worked out once per page for each of the page's
//! distinct keys, instead of once per field of every log.
//!
//! A format that makes keys unique within a line (two log keys may make
//! the same one: `a_b` and `a-b`) may use the page's keys only when no two
//! of them, and none of the keys the format writes itself, are the same:
//! then no line of the page can repeat one. Otherwise ([`PageKeys::clash`])
//! the format writes that page key by key, as it always did.

use crate::event::Event;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A page of more distinct keys than this (no API sends one) is written
/// key by key.
const MAX_PAGE_KEYS: usize = 4096;

/// What a format makes of one key.
pub enum Made {
    /// Written; compared with the others for repeats.
    Compared,
    /// Written; not compared (the format never writes that key's field).
    Apart,
    /// The format cannot write this key the same way in every line: the
    /// page is written key by key.
    Clash,
}

/// See the module's doc.
#[derive(Default)]
pub struct PageKeys {
    serial: u64,
    text: Vec<u8>,
    ends: Vec<u32>,
    clash: bool,
}

impl PageKeys {
    /// Works out `ev`'s page's keys (when not done already) with `make`,
    /// which writes what goes before a value of a key. `own`: what the
    /// format writes itself before its own values, which no key may repeat.
    fn fill_for(&mut self, ev: &Event, make: &dyn Fn(&str, &mut Vec<u8>) -> Made, own: &[&[u8]]) {
        let keys = ev.page_keys();
        if self.serial == keys.serial() {
            return;
        }
        self.serial = keys.serial();
        self.text.clear();
        self.ends.clear();
        self.clash = keys.len() > MAX_PAGE_KEYS;
        if self.clash {
            return;
        }
        let mut compared = Vec::with_capacity(keys.len());
        for id in 0..keys.len() as u32 {
            match make(keys.get(id), &mut self.text) {
                Made::Compared => compared.push(id),
                Made::Apart => {}
                Made::Clash => self.clash = true,
            }
            self.ends.push(self.text.len() as u32);
        }
        let mut all: Vec<&[u8]> = compared.iter().map(|&id| self.key(id)).collect();
        all.extend_from_slice(own);
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) {
            self.clash = true;
        }
    }

    /// What goes before a value of the key numbered `id`.
    pub fn key(&self, id: u32) -> &[u8] {
        let end = self.ends[id as usize] as usize;
        let start = match id {
            0 => 0,
            _ => self.ends[id as usize - 1] as usize,
        };
        &self.text[start..end]
    }
}

/// The keys of `ev`'s page from `cell` (worked out with `make` and `own`,
/// see [`PageKeys::fill_for`]), lent to `write`; `None` to `write` when
/// the page's keys clash (or, never in practice, the cell is in use).
pub fn with<R>(
    cell: &'static LocalKey<RefCell<PageKeys>>,
    ev: &Event,
    make: &dyn Fn(&str, &mut Vec<u8>) -> Made,
    own: &[&[u8]],
    write: impl FnOnce(Option<&PageKeys>) -> R,
) -> R {
    cell.with(|c| match c.try_borrow_mut() {
        Ok(mut keys) => {
            keys.fill_for(ev, make, own);
            write((!keys.clash).then_some(&*keys))
        }
        Err(_) => write(None),
    })
}
