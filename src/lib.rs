//! siem-agent: exports CloudSOC security logs to a SIEM.
//!
//! The data flows one way, one module per stage:
//! `cli` -> `source` -> `filter` -> `encode` -> `pace` -> `sink`,
//! with `state` committed only over logs every sink has confirmed
//! (`run` drives it).

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod encode;
pub mod event;
pub mod exit_codes;
pub mod filter;
pub mod fsx;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod pace;
pub mod report;
pub mod run;
pub mod secret;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod state;
pub mod tenant;
