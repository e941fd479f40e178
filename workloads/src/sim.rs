//! Static simulation of a workload's directory as the agent will hold it: which names exist,
//! which are open, what is mapped and how large each file is, assuming every op succeeds.
//! Shared by spec validation (which rejects ops that are certainly wrong) and the generator
//! (which only emits ops this simulation accepts).

use std::collections::BTreeMap;

use crate::namespace::{check_path, NodeKind};
use crate::op::{FallocMode, Op};

mod namespace;

/// Page size the agent and the oracle assume (x86_64 base pages).
pub const PAGE_SIZE: u64 = 4096;
/// CPU cache-line size: the unit of a user-space flush.
pub const CACHE_LINE: u64 = 64;
/// Largest file offset (exclusive) a workload may touch: `off + len` and sizes stay within it.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// File system block size the workloads' file systems are made with (ext4 and xfs, 4 KiB):
/// collapse and insert range need offsets and lengths that are multiples of it.
pub const FS_BLOCK: u64 = 4096;
/// Longest file name (one path component) a workload may use.
pub const MAX_NAME_LEN: usize = crate::namespace::MAX_COMPONENT_LEN;

/// `v` rounded down to a multiple of `unit` (a power of two).
pub(crate) fn round_down(v: u64, unit: u64) -> u64 {
    v & !(unit - 1)
}

/// `v` rounded up to a multiple of `unit` (a power of two), saturating.
pub(crate) fn round_up(v: u64, unit: u64) -> u64 {
    v.checked_add(unit - 1)
        .map_or(!(unit - 1), |x| x & !(unit - 1))
}

/// Why an op cannot run where it stands: the offending field and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Field of the op the problem is about (`file`, `off`, `len`, …).
    pub field: &'static str,
    /// What is wrong and what to do instead.
    pub message: String,
}

fn problem(field: &'static str, message: String) -> Problem {
    Problem { field, message }
}

/// A mapping the agent holds for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapState {
    /// Mapped length, rounded up to whole pages as the agent maps it.
    pub len: u64,
    /// Mapped with MAP_SYNC.
    pub sync: bool,
}

/// What the agent holds under one name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// A descriptor is open.
    pub fd: bool,
    /// The mapping, if any.
    pub map: Option<MapState>,
}

/// The simulated directory: names → inodes, inode sizes, and the agent's per-name table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sim {
    names: BTreeMap<String, usize>,
    sizes: Vec<u64>,
    /// Per inode, what it is (files, directories, symlinks, whiteouts).
    kinds: Vec<NodeKind>,
    /// Per inode, the largest extent it ever had: its size or the end of a block
    /// allocation past it (`fallocate` with KEEP_SIZE).
    extents: Vec<u64>,
    held: BTreeMap<String, Held>,
}

/// Check that `name` is a path below the workload directory ([`check_path`]).
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), Problem> {
    check_path(name).map_err(|e| problem(field, e.0))
}

/// Check `off + len` against the file-size bound and `len` against zero.
fn check_range(off: u64, len: u64) -> Result<u64, Problem> {
    if len == 0 {
        return Err(problem("len", "must be greater than 0".into()));
    }
    match off.checked_add(len) {
        Some(end) if end <= MAX_FILE_BYTES => Ok(end),
        _ => Err(problem(
            if off >= MAX_FILE_BYTES { "off" } else { "len" },
            format!(
                "off + len = {off} + {len} exceeds the limit of {MAX_FILE_BYTES} bytes (1 GiB)"
            ),
        )),
    }
}

impl Sim {
    /// An empty directory.
    pub fn new() -> Sim {
        Sim::default()
    }

    /// Does `name` exist?
    pub fn exists(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// What the agent holds under `name`.
    pub fn held(&self, name: &str) -> Held {
        self.held.get(name).copied().unwrap_or_default()
    }

    /// Current size of the file named `name`.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.names
            .get(name)
            .and_then(|&i| self.sizes.get(i).copied())
    }

    fn open_inode(&self, name: &str) -> Result<usize, Problem> {
        match (self.held(name).fd, self.names.get(name)) {
            (true, Some(&i)) => Ok(i),
            _ if self.exists(name) => Err(problem(
                "file",
                format!("`{name}` is not open here: add an `open` of it first"),
            )),
            _ => Err(problem(
                "file",
                format!("`{name}` is not open here (no `create` of it before, or it was unlinked or renamed away)"),
            )),
        }
    }

    fn mapping(&self, name: &str) -> Result<(usize, MapState), Problem> {
        let inode = self.open_inode(name)?;
        self.held(name).map.map(|m| (inode, m)).ok_or_else(|| {
            problem(
                "file",
                format!("`{name}` is not mapped here: add an `mmap` of it first"),
            )
        })
    }

    fn grow(&mut self, inode: usize, end: u64) {
        if let Some(s) = self.sizes.get_mut(inode) {
            *s = (*s).max(end);
        }
        self.reach(inode, end);
    }

    /// Record that `inode` holds data or blocks up to `end`.
    fn reach(&mut self, inode: usize, end: u64) {
        if let Some(e) = self.extents.get_mut(inode) {
            *e = (*e).max(end);
        }
    }

    /// Sum over every inode the workload created of the largest extent it ever had: an
    /// upper bound of the file data the workload can leave on the file system at any point.
    pub fn total_extent(&self) -> u64 {
        self.extents
            .iter()
            .fold(0u64, |sum, &e| sum.saturating_add(e))
    }

    fn size_of(&self, inode: usize) -> u64 {
        self.sizes.get(inode).copied().unwrap_or(0)
    }

    /// Check `op` against the current state and, when it can run, apply its effect.
    pub fn apply(&mut self, op: &Op) -> Result<(), Problem> {
        if let Some(done) = self.apply_namespace(op) {
            return done;
        }
        match op {
            Op::Rename { from, to } => {
                check_name("from", from)?;
                check_name("to", to)?;
            }
            _ => {
                for f in op.files() {
                    check_name("file", f)?;
                }
            }
        }
        match op {
            Op::Create { file, .. } => {
                let inode = match self.names.get(file) {
                    Some(&i) => {
                        self.need_kind("file", file, NodeKind::File)?;
                        i
                    }
                    None => {
                        self.need_dir_of("file", file)?;
                        self.new_inode(file, NodeKind::File)
                    }
                };
                self.sizes[inode] = 0;
                self.held.entry(file.clone()).or_default().fd = true;
            }
            Op::Open { file, .. } => {
                if !self.exists(file) {
                    return Err(problem(
                        "file",
                        format!("`{file}` does not exist here (no `create` of it before, or it was unlinked or renamed away)"),
                    ));
                }
                self.need_kind("file", file, NodeKind::File)?;
                self.held.entry(file.clone()).or_default().fd = true;
            }
            Op::Close { file } => {
                self.open_inode(file)?;
                self.held.remove(file);
            }
            Op::Pwrite { file, off, len, .. }
            | Op::Pwritev2 { file, off, len, .. }
            | Op::UringWrite { file, off, len, .. } => {
                let inode = self.open_inode(file)?;
                let end = check_range(*off, *len)?;
                self.grow(inode, end);
            }
            Op::SyncFileRange { file, off, len } => {
                self.open_inode(file)?;
                check_range(*off, *len)?;
            }
            Op::Syncfs { file } => {
                self.open_inode(file)?;
            }
            Op::Mmap { file, len, sync } => {
                self.open_inode(file)?;
                check_range(0, *len)?;
                let map = MapState {
                    len: round_up(*len, PAGE_SIZE),
                    sync: *sync,
                };
                self.held.entry(file.clone()).or_default().map = Some(map);
            }
            Op::Munmap { file } => {
                self.mapping(file)?;
                if let Some(h) = self.held.get_mut(file) {
                    h.map = None;
                }
            }
            Op::MmapStore { file, off, len, .. } => {
                let (inode, map) = self.mapping(file)?;
                let end = check_range(*off, *len)?;
                check_in_map(*off, end, map)?;
                let size = self.size_of(inode);
                if end > size {
                    return Err(problem(
                        if *off >= size { "off" } else { "len" },
                        format!(
                            "stores [{off}, {end}) reach past the end of `{file}` (size {size} here): \
                             bytes past EOF are lost and pages past it fault; ftruncate or pwrite first"
                        ),
                    ));
                }
            }
            Op::Flush { file, off, len } => {
                let (inode, map) = self.mapping(file)?;
                let end = check_range(*off, *len)?;
                check_in_map(*off, end, map)?;
                let backed = round_up(self.size_of(inode), PAGE_SIZE);
                if end > backed {
                    return Err(problem(
                        "len",
                        format!("flush [{off}, {end}) reaches past the pages backing `{file}` ({backed} bytes here); it would fault"),
                    ));
                }
            }
            Op::Msync { file, off, len }
            | Op::MsyncAsync { file, off, len }
            | Op::MsyncInvalidate { file, off, len } => {
                let (_, map) = self.mapping(file)?;
                let end = check_range(*off, *len)?;
                check_in_map(*off, end, map)?;
            }
            Op::Fsync { file } | Op::Fdatasync { file } | Op::UringFsync { file, .. } => {
                self.open_inode(file)?;
            }
            Op::Ftruncate { file, size } => {
                let inode = self.open_inode(file)?;
                if *size > MAX_FILE_BYTES {
                    return Err(problem(
                        "size",
                        format!("{size} exceeds the limit of {MAX_FILE_BYTES} bytes (1 GiB)"),
                    ));
                }
                self.sizes[inode] = *size;
                self.reach(inode, *size);
            }
            Op::Fallocate {
                file,
                mode,
                off,
                len,
            } => {
                let inode = self.open_inode(file)?;
                let end = check_range(*off, *len)?;
                match mode {
                    FallocMode::Allocate | FallocMode::ZeroRange => self.grow(inode, end),
                    FallocMode::KeepSize => self.reach(inode, end),
                    FallocMode::PunchHole => {}
                    FallocMode::CollapseRange | FallocMode::InsertRange => {
                        let size = self.size_of(inode);
                        let new = check_shift(file, *mode, *off, *len, size)?;
                        self.sizes[inode] = new;
                        self.reach(inode, new);
                    }
                }
            }
            Op::Rename { from, to } => {
                let Some(&inode) = self.names.get(from) else {
                    return Err(problem(
                        "from",
                        format!("`{from}` does not exist here (no `create` of it before, or it was unlinked or renamed away)"),
                    ));
                };
                self.need_renamable("from", from)?;
                self.need_other_inode(from, to)?;
                self.need_dir_of("to", to)?;
                if self.exists(to) {
                    self.need_renamable("to", to)?;
                }
                if from != to {
                    self.held.remove(to);
                    self.names.remove(from);
                    self.names.insert(to.clone(), inode);
                    if let Some(h) = self.held.remove(from) {
                        self.held.insert(to.clone(), h);
                    }
                }
            }
            Op::Unlink { file } => {
                if self.kind(file) == Some(NodeKind::Dir) {
                    return Err(problem(
                        "file",
                        format!("`{file}` is a directory: use `rmdir`"),
                    ));
                }
                if self.names.remove(file).is_none() {
                    return Err(problem(
                        "file",
                        format!("`{file}` does not exist here (no `create` of it before, or it was unlinked or renamed away)"),
                    ));
                }
                self.held.remove(file);
            }
            Op::Sync => {}
            // Handled by `apply_namespace`.
            Op::FsyncDir { .. }
            | Op::Mkdir { .. }
            | Op::Rmdir { .. }
            | Op::Link { .. }
            | Op::Symlink { .. }
            | Op::Renameat2 { .. } => {}
            Op::Chmod { file, mode } => {
                self.open_inode(file)?;
                if *mode > crate::meta::MODE_BITS {
                    return Err(problem(
                        "mode",
                        format!("{mode:#o} is more than permission bits (at most 0o777)"),
                    ));
                }
            }
            Op::Setxattr {
                file, name, len, ..
            } => {
                self.open_inode(file)?;
                crate::meta::check_xattr_name(name).map_err(|m| problem("name", m))?;
                if *len > crate::meta::MAX_XATTR_VALUE {
                    return Err(problem(
                        "len",
                        format!(
                            "an xattr value of {len} bytes; at most {}",
                            crate::meta::MAX_XATTR_VALUE
                        ),
                    ));
                }
            }
            Op::Removexattr { file, name } => {
                self.open_inode(file)?;
                crate::meta::check_xattr_name(name).map_err(|m| problem("name", m))?;
            }
            Op::Utimensat { file, sec, nsec } => {
                self.open_inode(file)?;
                if *sec > crate::meta::MAX_TIME_SEC {
                    return Err(problem(
                        "sec",
                        format!("{sec} is past 2^31 - 1 (2038-01-19)"),
                    ));
                }
                if *nsec >= 1_000_000_000 {
                    return Err(problem("nsec", format!("{nsec} is not below 1e9")));
                }
            }
        }
        Ok(())
    }
}

/// Check a collapse or insert range of `[off, off+len)` on `file` of size `size` against
/// what the kernel requires (ext4_collapse_range/ext4_insert_range and their xfs
/// counterparts return EINVAL otherwise) and return the new size.
fn check_shift(
    file: &str,
    mode: FallocMode,
    off: u64,
    len: u64,
    size: u64,
) -> Result<u64, Problem> {
    let name = mode.name();
    for (field, v) in [("off", off), ("len", len)] {
        if !v.is_multiple_of(FS_BLOCK) {
            return Err(problem(
                field,
                format!(
                    "{name} needs `{field}` to be a multiple of the {FS_BLOCK}-byte file system \
                     block; {v} is not (the kernel returns EINVAL)"
                ),
            ));
        }
    }
    let end = off + len;
    match mode {
        FallocMode::CollapseRange if end >= size => Err(problem(
            if off >= size { "off" } else { "len" },
            format!(
                "{name} of [{off}, {end}) must end below the end of `{file}` (size {size} here); \
                 the kernel returns EINVAL (to cut the tail, ftruncate)"
            ),
        )),
        FallocMode::CollapseRange => Ok(size - len),
        _ if off >= size => Err(problem(
            "off",
            format!(
                "{name} at {off} must start below the end of `{file}` (size {size} here); the \
                 kernel returns EINVAL (to grow the file, ftruncate)"
            ),
        )),
        _ => match size.checked_add(len) {
            Some(new) if new <= MAX_FILE_BYTES => Ok(new),
            _ => Err(problem(
                "len",
                format!(
                    "{name} would grow `{file}` from {size} by {len} bytes, past the limit of \
                     {MAX_FILE_BYTES} bytes (1 GiB)"
                ),
            )),
        },
    }
}

fn check_in_map(off: u64, end: u64, map: MapState) -> Result<(), Problem> {
    if end > map.len {
        return Err(problem(
            if off >= map.len { "off" } else { "len" },
            format!(
                "[{off}, {end}) is outside the mapping ({} bytes); mmap a longer length first",
                map.len
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(round_up(0, PAGE_SIZE), 0);
        assert_eq!(round_up(1, PAGE_SIZE), 4096);
        assert_eq!(round_down(4097, PAGE_SIZE), 4096);
        assert_eq!(round_up(65, CACHE_LINE), 128);
    }

    #[test]
    fn the_total_extent_keeps_each_inodes_largest_reach() {
        let mut sim = Sim::new();
        let ops = [
            Op::create("a"),
            Op::Ftruncate {
                file: "a".into(),
                size: 8192,
            },
            Op::Ftruncate {
                file: "a".into(),
                size: 0,
            },
            Op::Fallocate {
                file: "a".into(),
                mode: FallocMode::KeepSize,
                off: 0,
                len: 16384,
            },
            Op::create("b"),
            Op::Pwrite {
                file: "b".into(),
                off: 96,
                len: 4,
                pattern: None,
            },
            Op::Unlink { file: "b".into() },
            Op::create("b"),
            Op::Fallocate {
                file: "b".into(),
                mode: FallocMode::PunchHole,
                off: 0,
                len: 1 << 20,
            },
        ];

        for op in &ops {
            sim.apply(op).expect("valid op");
        }

        assert_eq!(sim.total_extent(), 16384 + 100);
        assert_eq!(sim.size("a"), Some(0));
    }

    #[test]
    fn rename_moves_what_is_held() {
        let mut sim = Sim::new();
        sim.apply(&Op::create("a")).expect("create");
        sim.apply(&Op::Rename {
            from: "a".into(),
            to: "b".into(),
        })
        .expect("rename");
        assert!(!sim.exists("a"));
        assert!(sim.held("b").fd);
    }
}
