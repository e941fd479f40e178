//! powercut guest agent: runs workloads on a DAX mount inside the guest and reports every op
//! to the host over line-delimited JSON (see `workloads::protocol`).
//!
//! | module | owns |
//! |---|---|
//! | [`serve`] | the protocol loop: requests in, events out, barriers |
//! | [`exec`] | executing ops: the per-name table of descriptors and mappings |
//! | [`mapping`] | one file mapping: mmap, bounds/EOF checks, stores, flushes, msync |
//! | [`cpu`] | the inline assembly: cpuid, clwb/clflushopt/clflush, sfence |
//! | [`meta`] | metadata ops (chmod, xattrs, times) and reading metadata back |
//! | [`uring`] | io_uring ops: a write (with `rw_flags`) or an fsync through a ring |
//! | [`marker`] | the `cpuid` op markers read by the cache-model TCG plugin |
//! | [`readback`] | answering `ReadFiles`: files as runs of the workload's patterns |
//! | [`check`] | answering `Check`: mount, read-back, unmount, drop caches in one request |
//! | [`extents`] | answering `Extents` (FIEMAP) |
//! | [`sys`] | errno plumbing and C conversions |
#![deny(missing_docs)]

pub mod check;
pub mod cpu;
pub mod exec;
pub mod extents;
pub mod mapping;
pub mod marker;
pub mod meta;
pub mod readback;
pub mod serve;
pub mod sys;
pub mod uring;

/// `powercut-agent --version` output: agent version and protocol version.
pub fn version_line() -> String {
    format!(
        "powercut-agent {} protocol {}",
        env!("CARGO_PKG_VERSION"),
        workloads::protocol::PROTOCOL_VERSION
    )
}
