//! The flag and mode arguments of ops: `fallocate` modes, `pwritev2` flags and the
//! per-write durability an `open` flag gives a descriptor.

use serde::{Deserialize, Serialize};

/// Kind of `fallocate(2)` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallocMode {
    /// mode 0: allocate, extending the size if `off + len` is past EOF.
    Allocate,
    /// FALLOC_FL_KEEP_SIZE: allocate without changing the size.
    KeepSize,
    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the range reads back as zeros.
    PunchHole,
    /// FALLOC_FL_ZERO_RANGE: the range reads back as zeros; size may grow.
    ZeroRange,
    /// FALLOC_FL_COLLAPSE_RANGE: `[off, off+len)` is removed, everything after it moves
    /// left by `len` and the size shrinks by `len`. `off` and `len` must be multiples of the
    /// block size and `off + len` below the size (the kernel returns EINVAL otherwise).
    CollapseRange,
    /// FALLOC_FL_INSERT_RANGE: `[off, size)` moves right by `len`, leaving a hole of zeros
    /// at `[off, off+len)`; the size grows by `len`. `off` and `len` must be multiples of
    /// the block size and `off` below the size.
    InsertRange,
}

impl FallocMode {
    /// The mode as spelled in YAML (`punch_hole`, `collapse_range`, …).
    pub fn name(self) -> &'static str {
        match self {
            FallocMode::Allocate => "allocate",
            FallocMode::KeepSize => "keep_size",
            FallocMode::PunchHole => "punch_hole",
            FallocMode::ZeroRange => "zero_range",
            FallocMode::CollapseRange => "collapse_range",
            FallocMode::InsertRange => "insert_range",
        }
    }

    /// Does this mode move data to other file offsets (collapse or insert range)?
    pub fn shifts(self) -> bool {
        matches!(self, FallocMode::CollapseRange | FallocMode::InsertRange)
    }
}

/// The per-write durability flag of a `pwritev2(2)` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RwfFlag {
    /// `RWF_DSYNC`: the write is made durable as by `fdatasync` of its range on return.
    Dsync,
    /// `RWF_SYNC`: the write is made durable as by `fsync` of its range on return.
    Sync,
}

impl RwfFlag {
    /// The flag as spelled in YAML (`dsync`, `sync`).
    pub fn name(self) -> &'static str {
        match self {
            RwfFlag::Dsync => "dsync",
            RwfFlag::Sync => "sync",
        }
    }
}

/// The per-write durability an `open(2)` flag gives every write(2)-family call through the
/// descriptor (`create`/`open` field `sync`). Stores through a mapping of the file are not
/// write(2) calls: the flag promises nothing about them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenSync {
    /// Neither flag: writes promise nothing by themselves.
    #[default]
    None,
    /// `O_DSYNC`: each write returns after its data and the metadata needed to read it back
    /// (block mapping, size) are durable, as by `fdatasync` of its range.
    Dsync,
    /// `O_SYNC`: each write returns after its data and all the inode's metadata are
    /// durable, as by `fsync` of its range.
    Sync,
}

impl OpenSync {
    /// The flag as spelled in YAML (`none`, `dsync`, `sync`).
    pub fn name(self) -> &'static str {
        match self {
            OpenSync::None => "none",
            OpenSync::Dsync => "dsync",
            OpenSync::Sync => "sync",
        }
    }

    /// Neither flag (the default, left out of YAML).
    pub fn is_none(&self) -> bool {
        *self == OpenSync::None
    }

    /// The label of a `pwrite` through a descriptor opened with this flag.
    pub fn pwrite_label(self) -> &'static str {
        match self {
            OpenSync::None => "pwrite",
            OpenSync::Dsync => "pwrite o_dsync",
            OpenSync::Sync => "pwrite o_sync",
        }
    }
}
