//! powercut: crash-consistency testing of Linux DAX on persistent memory. The host
//! orchestrator: guest images, VMs, crash points, the checker, campaigns and reports.
#![deny(missing_docs)]

pub mod cache_dir;
pub mod cache_model;
pub mod campaign;
pub mod checker;
pub mod cli;
pub mod config;
pub mod error;
pub mod exit;
pub mod host;
pub mod image;
pub mod journal;
pub mod prepare;
pub mod records;
pub mod report;
pub mod rundir;
pub mod runs;
pub mod signals;
pub mod test_support;
pub mod triage;
pub mod trial;
pub mod ui;
pub mod vm;
