//! Host ↔ guest-agent protocol: line-delimited JSON messages, declared once for both sides.
//!
//! The host writes [`HostMsg`] lines to the agent's stdin (over the SSH channel); the agent
//! writes [`AgentMsg`] lines to stdout. The first agent line is always [`AgentMsg::Hello`]
//! carrying [`PROTOCOL_VERSION`]; the host refuses a mismatch.

use serde::{Deserialize, Serialize};

use crate::content::{Run, Source};
use crate::meta::FileMeta;
use crate::namespace::NodeKind;
use crate::op::{OpOutcome, Workload};

/// Bumped on any incompatible change to these messages (2: `extents`; 3: read-backs as
/// [`Run`]s, `check`; 4: metadata ops and read-backs with [`FileMeta`]).
pub const PROTOCOL_VERSION: u32 = 4;

/// Host → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostMsg {
    /// Run `workload` in directory `dir` (created if missing). After each op index listed in
    /// `barriers` completes, the agent sends [`AgentMsg::Barrier`] and waits for
    /// [`HostMsg::Continue`]. With `markers`, the agent announces each op to a TCG plugin by
    /// executing `cpuid` with a magic leaf (see the agent).
    Run {
        /// Directory on the DAX mount.
        dir: String,
        /// The workload.
        workload: Workload,
        /// Op indexes after which to stop and wait.
        #[serde(default)]
        barriers: Vec<usize>,
        /// Emit cpuid op markers.
        #[serde(default)]
        markers: bool,
    },
    /// Resume after a barrier.
    Continue,
    /// Read back the named files in `dir` (live comparison), their bytes as runs of the
    /// patterns `sources` of workload `seed` ([`crate::content::encode`]).
    ReadFiles {
        /// Directory to read.
        dir: String,
        /// File names to report on (missing ones are reported as absent).
        names: Vec<String>,
        /// Workload seed of the patterns.
        #[serde(default)]
        seed: u64,
        /// Patterns the files may hold.
        #[serde(default)]
        sources: Vec<Source>,
    },
    /// Check a crash image in one request: mount `device` (type `fs`, option `dax`) on
    /// `mountpoint`, read back `names` in `dir` as [`HostMsg::ReadFiles`] does, unmount, and
    /// drop the guest's caches of the device (page cache, and the block device's buffers)
    /// so that the host can write the next image into it.
    Check {
        /// The pmem block device (`/dev/pmem0`).
        device: String,
        /// File system type (`ext4`, `xfs`).
        fs: String,
        /// Where to mount it (`/mnt`).
        mountpoint: String,
        /// Directory of the workload's files inside the mount.
        dir: String,
        /// File names to report on.
        names: Vec<String>,
        /// Workload seed of the patterns.
        seed: u64,
        /// Patterns the files may hold.
        sources: Vec<Source>,
    },
    /// Report where the named files in `dir` lie on the block device (FIEMAP, after a sync
    /// of each file): the cache model maps lost pmem lines back to file offsets with it.
    Extents {
        /// Directory holding the files.
        dir: String,
        /// File names (missing ones get an empty list and no error).
        names: Vec<String>,
    },
    /// End the session; the agent exits 0.
    Quit,
}

/// One extent of a file, as FIEMAP reports it: `length` bytes at file offset `logical`
/// lie at byte `physical` of the block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// File offset, bytes.
    pub logical: u64,
    /// Block-device offset, bytes.
    pub physical: u64,
    /// Length, bytes.
    pub length: u64,
    /// `FIEMAP_EXTENT_*` flags (0x800: unwritten, reads as zeros).
    pub flags: u32,
}

/// Flag of an [`Extent`] allocated but not written (it reads back as zeros).
pub const EXTENT_UNWRITTEN: u32 = 0x800;

/// Where one file's bytes lie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileExtents {
    /// File name.
    pub name: String,
    /// Its extents, by file offset (empty for a missing or empty file).
    pub extents: Vec<Extent>,
    /// Error of the FIEMAP call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the agent found for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// File name.
    pub name: String,
    /// Does it exist?
    pub exists: bool,
    /// Size in bytes (0 when absent).
    pub size: u64,
    /// Contents as runs ([`crate::content`]; none when absent or unreadable).
    pub runs: Vec<Run>,
    /// Error reading it (errno text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its mode, times and `user.` xattrs (`stat` before the read, so the read's access
    /// time is not in it); none when absent or when they could not be read (then `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<FileMeta>,
    /// What it is, when it exists (a regular file unless said otherwise).
    #[serde(default, skip_serializing_if = "NodeKind::is_file")]
    pub kind: NodeKind,
    /// A symlink's text (at most [`MAX_REPORTED_TARGET`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A regular file's inode number (0: not reported).
    #[serde(default)]
    pub ino: u64,
    /// A regular file's link count (0: not reported).
    #[serde(default)]
    pub nlink: u64,
}

/// Longest symlink text a [`FileReport`] carries (a longer one is cut: it cannot be one a
/// workload made).
pub const MAX_REPORTED_TARGET: usize = 4096;

/// The guest's own timing of a [`HostMsg::Check`], microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckTimings {
    /// `mount(2)`, journal recovery included.
    pub mount_us: u64,
    /// Reading the files and encoding them.
    pub read_us: u64,
    /// Unmount and dropping the caches.
    pub cleanup_us: u64,
}

/// Agent → host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMsg {
    /// First line: protocol and agent versions.
    Hello {
        /// [`PROTOCOL_VERSION`] of the agent.
        protocol: u32,
        /// Agent crate version.
        version: String,
    },
    /// Op `k` is about to run.
    OpStarted {
        /// Op index.
        k: usize,
    },
    /// Op `k` returned.
    OpDone {
        /// Op index.
        k: usize,
        /// What it returned.
        outcome: OpOutcome,
    },
    /// Stopped after op `k`; waiting for [`HostMsg::Continue`].
    Barrier {
        /// Op index.
        k: usize,
    },
    /// All ops of the workload ran.
    Finished {
        /// Number of ops run.
        ops: usize,
        /// Wall time of the ops in microseconds (excluding barrier waits).
        micros: u64,
    },
    /// Answer to [`HostMsg::ReadFiles`].
    Files {
        /// One entry per requested name, in request order.
        files: Vec<FileReport>,
    },
    /// Answer to [`HostMsg::Check`].
    Checked {
        /// Why the mount failed (the error of `mount(2)`); then nothing was read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mount_error: Option<String>,
        /// One entry per requested name, in request order (empty when the mount failed).
        files: Vec<FileReport>,
        /// Why the unmount or the dropping of caches failed, if it did: the checker VM is
        /// then no longer fit for the next image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cleanup_error: Option<String>,
        /// Where the time went in the guest.
        #[serde(default)]
        timings: CheckTimings,
    },
    /// Answer to [`HostMsg::Extents`].
    Extents {
        /// One entry per requested name, in request order.
        files: Vec<FileExtents>,
    },
    /// A request could not be carried out (bad message, directory missing, …).
    Error {
        /// What went wrong.
        message: String,
    },
}
