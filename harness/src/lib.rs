//! powercut: crash-consistency testing of Linux DAX on persistent memory. The host
//! orchestrator: guest images, VMs, crash points, the checker, campaigns and reports.
#![deny(missing_docs)]

pub mod cache;
pub mod cache_model;
pub mod campaign;
pub mod checker;
pub mod cli;
pub mod image;
pub mod input;
pub mod report;
pub mod rundir;
pub mod signals;
pub mod triage;
pub mod trial;
pub mod ui;
pub mod vm;
