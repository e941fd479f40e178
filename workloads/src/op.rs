//! The op model: what a workload is, one operation at a time, on a small set of files.
//!
//! A [`Workload`] is a list of [`Op`]s on files that live in one directory of a DAX mount.
//! Files are named by short relative names (`f0`, `f1`, …); the agent keeps at most one open
//! descriptor and at most one mapping per name. Every op is deterministic given the workload:
//! data written by `Pwrite` and `MmapStore` comes from a [`Pattern`] derived from the
//! workload seed and the op's pattern id, so the host can recompute every byte.

use serde::{Deserialize, Serialize};

mod flags;
mod workload;

pub use crate::namespace::RenameFlag;
pub use flags::{FallocMode, OpenSync, RwfFlag};

/// A workload: a named, seeded list of operations on files in one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Human-readable name (file stem for YAML specs, `seed-N` for generated ones).
    pub name: String,
    /// Seed of the data patterns (and of the generator, for generated workloads).
    pub seed: u64,
    /// Generator profile this came from, if generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The operations, executed in order; op `k` is `ops[k]`.
    pub ops: Vec<Op>,
}

/// The label ([`Op::label`]) of every kind of sync call: each op after which the campaign
/// puts a crash point ([`Op::wants_crash_point_after`]), each flag variant on its own. The
/// generator must reach each of them (`powercut workload mix`).
pub const SYNC_LABELS: &[&str] = &[
    "fsync",
    "fdatasync",
    "msync",
    "msync_async",
    "msync_invalidate",
    "flush",
    "fsync_dir",
    "fsync_dir subdir",
    "sync",
    "syncfs",
    "sync_file_range",
    "pwritev2 dsync",
    "pwritev2 sync",
    "pwrite o_dsync",
    "pwrite o_sync",
    "uring_write dsync",
    "uring_write sync",
    "uring_fsync",
    "uring_fsync datasync",
];

/// One operation. File names are relative to the workload directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `open(O_CREAT|O_RDWR|O_TRUNC)`; the descriptor stays open under `file` (and replaces
    /// one held there). With `sync`, also `O_DSYNC` or `O_SYNC`; with `direct`, `O_DIRECT`.
    Create {
        /// File name.
        file: String,
        /// Per-write durability of the descriptor (default: none).
        #[serde(default, skip_serializing_if = "OpenSync::is_none")]
        sync: OpenSync,
        /// `O_DIRECT` (a DAX file's reads and writes take the DAX path either way; it
        /// promises nothing).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        direct: bool,
    },
    /// `open(O_RDWR)` of an existing file (with `sync`: also `O_DSYNC` or `O_SYNC`; with
    /// `direct`: `O_DIRECT`).
    Open {
        /// File name.
        file: String,
        /// Per-write durability of the descriptor (default: none).
        #[serde(default, skip_serializing_if = "OpenSync::is_none")]
        sync: OpenSync,
        /// `O_DIRECT`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        direct: bool,
    },
    /// `close(2)`; also unmaps the file's mapping, if any.
    Close {
        /// File name.
        file: String,
    },
    /// `pwrite(2)` of `len` pattern bytes at `off`.
    Pwrite {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
        /// Pattern id; defaults to `k + 1` for op `k` when omitted in YAML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<u32>,
    },
    /// `mmap(MAP_SHARED)` of the first `len` bytes (rounded up to pages); with `sync`,
    /// `MAP_SHARED_VALIDATE | MAP_SYNC`.
    Mmap {
        /// File name.
        file: String,
        /// Mapped length in bytes from offset 0.
        len: u64,
        /// Use MAP_SYNC (the file system must support it; fails with EOPNOTSUPP otherwise).
        #[serde(default)]
        sync: bool,
    },
    /// `munmap(2)` of the file's mapping.
    Munmap {
        /// File name.
        file: String,
    },
    /// Stores of `len` pattern bytes at `off` through the file's mapping. The agent checks
    /// the range against the mapping and the current file size first and fails the op with
    /// EFAULT instead of taking SIGBUS.
    MmapStore {
        /// File name.
        file: String,
        /// File offset (inside the mapping).
        off: u64,
        /// Byte count.
        len: u64,
        /// Pattern id; defaults to `k + 1` for op `k` when omitted in YAML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<u32>,
    },
    /// User-space cache flush (clwb, else clflushopt, else clflush, by CPUID) of every line of
    /// `[off, off+len)` in the file's mapping, then `sfence`.
    Flush {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
    },
    /// `msync(MS_SYNC)` of `[off, off+len)` of the mapping (start rounded down to a page).
    Msync {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
    },
    /// `fsync(2)` of the open descriptor.
    Fsync {
        /// File name.
        file: String,
    },
    /// `fdatasync(2)` of the open descriptor.
    Fdatasync {
        /// File name.
        file: String,
    },
    /// `ftruncate(2)`.
    Ftruncate {
        /// File name.
        file: String,
        /// New size.
        size: u64,
    },
    /// `fallocate(2)`.
    Fallocate {
        /// File name.
        file: String,
        /// Mode.
        mode: FallocMode,
        /// Offset.
        off: u64,
        /// Length.
        len: u64,
    },
    /// `rename(2)` within the workload directory. Open descriptors and mappings follow the
    /// file to its new name.
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// `unlink(2)`; an open descriptor or mapping of it is closed first.
    Unlink {
        /// File name.
        file: String,
    },
    /// `fsync(2)` of a directory: the workload directory, or `dir` (a subdirectory path).
    FsyncDir {
        /// Directory path relative to the workload directory; none: the workload directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
    },
    /// `mkdir(2)` of a subdirectory (see [`crate::namespace`]).
    Mkdir {
        /// Directory path.
        dir: String,
    },
    /// `rmdir(2)` of an empty subdirectory.
    Rmdir {
        /// Directory path.
        dir: String,
    },
    /// `link(2)`: a second name `to` for the file named `from`.
    Link {
        /// Existing file.
        from: String,
        /// New name.
        to: String,
    },
    /// `symlink(2)`: a symbolic link named `link` whose text is `target` (never followed).
    Symlink {
        /// The link's text.
        target: String,
        /// The new name.
        link: String,
    },
    /// `renameat2(2)` with `RENAME_EXCHANGE`, `RENAME_NOREPLACE` or `RENAME_WHITEOUT`.
    Renameat2 {
        /// Old name.
        from: String,
        /// New name.
        to: String,
        /// The flag.
        flags: RenameFlag,
    },
    /// `syncfs(2)` of the file's descriptor: every file of that file system, like `sync`.
    Syncfs {
        /// File name (an open descriptor on the DAX file system).
        file: String,
    },
    /// `sync_file_range(2)` of `[off, off+len)` with `WAIT_BEFORE|WRITE|WAIT_AFTER`. It
    /// promises nothing (no metadata, no journal commit): a false-alarm trap for the oracle.
    SyncFileRange {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
    },
    /// `msync(MS_ASYNC)` of `[off, off+len)` of the mapping: a no-op since Linux 2.6.19,
    /// promises nothing.
    MsyncAsync {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
    },
    /// `msync(MS_INVALIDATE)` (without MS_SYNC) of `[off, off+len)`: Linux only checks for
    /// locked pages (EBUSY); promises nothing.
    MsyncInvalidate {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
    },
    /// `pwritev2(2)` of `len` pattern bytes at `off` with `RWF_DSYNC` or `RWF_SYNC`: the
    /// write is its own durability promise.
    Pwritev2 {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
        /// Pattern id; defaults to `k + 1` for op `k` when omitted in YAML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<u32>,
        /// The per-write flag.
        flags: RwfFlag,
    },
    /// `sync(2)`.
    Sync,
    /// An io_uring `IORING_OP_WRITE` of `len` pattern bytes at `off` (in SQEs of at most
    /// 8 MiB), with `RWF_DSYNC` or `RWF_SYNC` in the SQE's `rw_flags` when `flags` is set:
    /// then, like a `pwritev2` with the flag, each write is its own promise (and so is every
    /// one through a descriptor opened `O_DSYNC`/`O_SYNC`).
    UringWrite {
        /// File name.
        file: String,
        /// File offset.
        off: u64,
        /// Byte count.
        len: u64,
        /// Pattern id; defaults to `k + 1` for op `k` when omitted in YAML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<u32>,
        /// The per-write flag, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flags: Option<RwfFlag>,
    },
    /// An io_uring `IORING_OP_FSYNC` of the open descriptor; with `datasync`,
    /// `IORING_FSYNC_DATASYNC`: the promise of `fsync` or `fdatasync`.
    UringFsync {
        /// File name.
        file: String,
        /// `IORING_FSYNC_DATASYNC`.
        #[serde(default)]
        datasync: bool,
    },
    /// `fchmod(2)` of the open descriptor to `mode` (permission bits only, at most 0o777).
    Chmod {
        /// File name.
        file: String,
        /// New permission bits.
        mode: u32,
    },
    /// `fsetxattr(2)` of `user.<name>` on the open descriptor (create or replace) to the
    /// first `len` bytes of a pattern ([`crate::meta::xattr_value`]).
    Setxattr {
        /// File name.
        file: String,
        /// Attribute name without the `user.` prefix.
        name: String,
        /// Value length in bytes (0 to [`crate::meta::MAX_XATTR_VALUE`]).
        len: u64,
        /// Pattern id; defaults to `k + 1` for op `k` when omitted in YAML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<u32>,
    },
    /// `fremovexattr(2)` of `user.<name>` (ENODATA when it is not set).
    Removexattr {
        /// File name.
        file: String,
        /// Attribute name without the `user.` prefix.
        name: String,
    },
    /// `futimens(2)` of the open descriptor: access and modification time both set to
    /// `sec.nsec`.
    Utimensat {
        /// File name.
        file: String,
        /// Seconds since the epoch (at most 2^31 - 1).
        sec: u64,
        /// Nanoseconds (below 1e9).
        nsec: u32,
    },
}

impl Op {
    /// `create` of `file` without a sync flag.
    pub fn create(file: impl Into<String>) -> Op {
        Op::Create {
            file: file.into(),
            sync: OpenSync::None,
            direct: false,
        }
    }

    /// `open` of `file` without a sync flag.
    pub fn open(file: impl Into<String>) -> Op {
        Op::Open {
            file: file.into(),
            sync: OpenSync::None,
            direct: false,
        }
    }

    /// `fsync_dir` of the workload directory itself.
    pub fn fsync_root() -> Op {
        Op::FsyncDir { dir: None }
    }

    /// Every path this op touches (for `Rename`: both; directories too).
    pub fn files(&self) -> Vec<&str> {
        match self {
            Op::Create { file, .. }
            | Op::Open { file, .. }
            | Op::Close { file }
            | Op::Pwrite { file, .. }
            | Op::Mmap { file, .. }
            | Op::Munmap { file }
            | Op::MmapStore { file, .. }
            | Op::Flush { file, .. }
            | Op::Msync { file, .. }
            | Op::Fsync { file }
            | Op::Fdatasync { file }
            | Op::Ftruncate { file, .. }
            | Op::Fallocate { file, .. }
            | Op::Unlink { file }
            | Op::Syncfs { file }
            | Op::SyncFileRange { file, .. }
            | Op::MsyncAsync { file, .. }
            | Op::MsyncInvalidate { file, .. }
            | Op::Pwritev2 { file, .. }
            | Op::Chmod { file, .. }
            | Op::Setxattr { file, .. }
            | Op::Removexattr { file, .. }
            | Op::Utimensat { file, .. }
            | Op::UringWrite { file, .. }
            | Op::UringFsync { file, .. } => vec![file.as_str()],
            Op::Rename { from, to } | Op::Link { from, to } | Op::Renameat2 { from, to, .. } => {
                vec![from.as_str(), to.as_str()]
            }
            Op::Mkdir { dir } | Op::Rmdir { dir } => vec![dir.as_str()],
            Op::FsyncDir { dir } => dir.iter().map(String::as_str).collect(),
            Op::Symlink { link, .. } => vec![link.as_str()],
            Op::Sync => vec![],
        }
    }

    /// Short name of the op kind, as in YAML (`pwrite`, `mmap_store`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Open { .. } => "open",
            Op::Close { .. } => "close",
            Op::Pwrite { .. } => "pwrite",
            Op::Mmap { .. } => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::MmapStore { .. } => "mmap_store",
            Op::Flush { .. } => "flush",
            Op::Msync { .. } => "msync",
            Op::Fsync { .. } => "fsync",
            Op::Fdatasync { .. } => "fdatasync",
            Op::Ftruncate { .. } => "ftruncate",
            Op::Fallocate { .. } => "fallocate",
            Op::Rename { .. } => "rename",
            Op::Unlink { .. } => "unlink",
            Op::FsyncDir { .. } => "fsync_dir",
            Op::Mkdir { .. } => "mkdir",
            Op::Rmdir { .. } => "rmdir",
            Op::Link { .. } => "link",
            Op::Symlink { .. } => "symlink",
            Op::Renameat2 { .. } => "renameat2",
            Op::Sync => "sync",
            Op::Syncfs { .. } => "syncfs",
            Op::SyncFileRange { .. } => "sync_file_range",
            Op::MsyncAsync { .. } => "msync_async",
            Op::MsyncInvalidate { .. } => "msync_invalidate",
            Op::Pwritev2 { .. } => "pwritev2",
            Op::Chmod { .. } => "chmod",
            Op::Setxattr { .. } => "setxattr",
            Op::Removexattr { .. } => "removexattr",
            Op::Utimensat { .. } => "utimensat",
            Op::UringWrite { .. } => "uring_write",
            Op::UringFsync { .. } => "uring_fsync",
        }
    }

    /// The kind, with the mode for `fallocate` (`fallocate collapse_range`), the flag for
    /// `pwritev2` and the open flag for `create`/`open` (`open o_sync`): how messages name an
    /// op. A `pwrite`'s label does not show its descriptor's flag: see
    /// [`Workload::label`].
    pub fn label(&self) -> String {
        match self {
            Op::Fallocate { mode, .. } => format!("fallocate {}", mode.name()),
            Op::Pwritev2 { flags, .. } => format!("pwritev2 {}", flags.name()),
            Op::UringWrite { flags: Some(f), .. } => format!("uring_write {}", f.name()),
            Op::UringFsync { datasync: true, .. } => "uring_fsync datasync".to_string(),
            Op::Renameat2 { flags, .. } => format!("renameat2 {}", flags.name()),
            Op::FsyncDir { dir: Some(_) } => "fsync_dir subdir".to_string(),
            Op::Create { sync, .. } | Op::Open { sync, .. } if !sync.is_none() => {
                format!("{} o_{}", self.kind(), sync.name())
            }
            other => other.kind().to_string(),
        }
    }

    /// True for ops after which something is promised durable (fsync, fdatasync, msync,
    /// directory fsync, sync, syncfs, user flush, pwritev2 with RWF_DSYNC/RWF_SYNC): the
    /// natural crash points.
    pub fn is_durability_point(&self) -> bool {
        matches!(
            self,
            Op::Fsync { .. }
                | Op::Fdatasync { .. }
                | Op::Msync { .. }
                | Op::FsyncDir { .. }
                | Op::Sync
                | Op::Flush { .. }
                | Op::Syncfs { .. }
                | Op::Pwritev2 { .. }
                | Op::UringWrite { flags: Some(_), .. }
                | Op::UringFsync { .. }
        )
    }

    /// Sync calls that promise nothing (`sync_file_range`, `msync(MS_ASYNC)`,
    /// `msync(MS_INVALIDATE)`): an application may believe they do, so a crash right after
    /// one tests that the oracle demands nothing of them (a false-alarm trap).
    pub fn is_empty_promise(&self) -> bool {
        matches!(
            self,
            Op::SyncFileRange { .. } | Op::MsyncAsync { .. } | Op::MsyncInvalidate { .. }
        )
    }

    /// Does the campaign put a crash point right after this op (with
    /// `after_durability_ops`)? Every durability point and every empty promise.
    pub fn wants_crash_point_after(&self) -> bool {
        self.is_durability_point() || self.is_empty_promise()
    }

    /// Does this op leave the inode its file name refers to as it is (a data, sync or
    /// metadata op through the name), as opposed to one that may bind the name to another
    /// inode or none (`create`, `unlink`, renames, links, directory ops)?
    pub fn keeps_inode_of_its_file(&self) -> bool {
        !matches!(
            self,
            Op::Create { .. }
                | Op::Unlink { .. }
                | Op::Rename { .. }
                | Op::Renameat2 { .. }
                | Op::Link { .. }
                | Op::Symlink { .. }
                | Op::Mkdir { .. }
                | Op::Rmdir { .. }
        )
    }

    /// Does this op change the data or size of its open file (and so its modification
    /// time)? (`create` of an existing file truncates it too, through a new descriptor.)
    pub fn changes_data(&self) -> bool {
        matches!(
            self,
            Op::Pwrite { .. }
                | Op::Pwritev2 { .. }
                | Op::UringWrite { .. }
                | Op::MmapStore { .. }
                | Op::Ftruncate { .. }
                | Op::Fallocate { .. }
        )
    }

    /// The pattern id this op writes with, if it writes data (`k` is the op's index).
    pub fn pattern_id(&self, k: usize) -> Option<u32> {
        match self {
            Op::Pwrite { pattern, .. }
            | Op::MmapStore { pattern, .. }
            | Op::Pwritev2 { pattern, .. }
            | Op::UringWrite { pattern, .. }
            | Op::Setxattr { pattern, .. } => {
                Some(pattern.unwrap_or_else(|| u32::try_from(k + 1).unwrap_or(u32::MAX)))
            }
            _ => None,
        }
    }
}

/// What one op returned in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpOutcome {
    /// Return value of the system call (bytes for pwrite, 0 for most others); -1 on error.
    pub ret: i64,
    /// errno when the op failed, else `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

impl OpOutcome {
    /// A successful op with return value `ret`.
    pub fn ok(ret: i64) -> Self {
        OpOutcome { ret, errno: None }
    }

    /// A failed op with `errno`.
    pub fn failed(errno: i32) -> Self {
        OpOutcome {
            ret: -1,
            errno: Some(errno),
        }
    }

    /// Did the op succeed?
    pub fn succeeded(&self) -> bool {
        self.errno.is_none()
    }
}
