//! siem-agent: exports CloudSOC security logs to a SIEM.
//!
//! The data flows one way, one module per stage:
//! `cli` -> `source` -> `filter` -> `encode` -> `pace` -> `sink`,
//! with `state` committed only after the sink has accepted a page.

pub mod encode;
pub mod event;
pub mod simulate;
