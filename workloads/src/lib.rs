//! powercut workloads: the op model, data patterns, host↔agent protocol, seeded generator,
//! YAML specs and the durability oracle. Pure logic: no I/O beyond reading spec files.
#![deny(missing_docs)]

pub mod op;
pub mod pattern;
pub mod protocol;

pub use op::{FallocMode, Op, OpOutcome, Workload};
pub use pattern::Pattern;
