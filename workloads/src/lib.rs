//! powercut workloads: the op model, data patterns, host↔agent protocol, seeded generator,
//! YAML specs and the durability oracle. Pure logic: no I/O beyond reading spec files.
#![deny(missing_docs)]

pub mod content;
pub mod generator;
pub mod meta;
pub mod namespace;
pub mod op;
pub mod oracle;
pub mod pattern;
pub mod protocol;
mod sim;
pub mod spec;

pub use namespace::{NodeKind, RenameFlag};
pub use op::{FallocMode, Op, OpOutcome, OpenSync, RwfFlag, Workload, SYNC_LABELS};
pub use pattern::Pattern;
