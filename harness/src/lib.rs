//! powercut: crash-consistency testing of Linux DAX on persistent memory. The host
//! orchestrator: guest images, VMs, crash points, the checker, campaigns and reports.
#![deny(missing_docs)]

pub(crate) mod cache_dir;
pub(crate) mod cache_model;
pub(crate) mod campaign;
pub(crate) mod checker;
pub mod cli;
pub(crate) mod config;
pub(crate) mod coverage;
pub mod error;
pub mod exit;
pub(crate) mod guided;
pub(crate) mod host;
pub(crate) mod image;
pub(crate) mod input;
pub(crate) mod journal;
pub(crate) mod prepare;
pub(crate) mod records;
pub(crate) mod report;
pub(crate) mod rundir;
pub(crate) mod runs;
pub mod signals;
pub mod test_support;
pub(crate) mod triage;
pub(crate) mod trial;
pub(crate) mod ui;
pub(crate) mod vm;
