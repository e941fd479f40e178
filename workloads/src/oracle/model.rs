//! The oracle's replay of a workload: inodes with their word histories and sizes, names
//! with their durable and pending bindings, and the agent's per-name table, advanced op by
//! op with the durability promises of each op (see the rules in `oracle.rs`; the namespace
//! ops and what an fsync commits of names are in `model::namespace`).

use std::collections::BTreeMap;

use super::meta::{MetaHist, XattrVal};
pub(crate) use super::names::Name;
use super::words::{SizeSet, WordMap, WordSrc, WORD};
use super::FsRules;
use crate::namespace::{parent, NodeKind};
use crate::op::{FallocMode, Op, OpOutcome, OpenSync, RwfFlag};
use crate::sim::{round_down, round_up, CACHE_LINE, FS_BLOCK, PAGE_SIZE};

mod namespace;

/// How much is known about one op's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Completed with this outcome: a failed op changes nothing; a successful one keeps
    /// its promises.
    Done(OpOutcome),
    /// Completed, outcome unknown: applied as if it succeeded (whole length), its promises
    /// are not kept, and what it touched is tainted (never promised anything again).
    Unknown,
    /// The op the crash interrupted: it may or may not have taken effect, in part.
    InFlight,
}

/// One file (inode).
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    /// Word histories.
    pub words: WordMap,
    /// Current size.
    pub size: u64,
    /// Sizes a crash may leave.
    pub sizes: SizeSet,
    /// An op on it had an unknown outcome or stored past EOF: no promise is trusted.
    pub tainted: bool,
    /// Collapse and insert ranges since its layout was last durable, oldest first: until
    /// an fsync, fdatasync or sync, a crash may leave any of the layouts before them.
    pub shifts: Vec<Shift>,
    /// Mode, times and xattrs.
    pub meta: MetaHist,
    /// What it is (a regular file, a directory, a symlink, a whiteout).
    pub kind: NodeKind,
    /// A symlink's text.
    pub target: Option<String>,
    /// The op that made it (`create`, `mkdir`, `symlink`, a whiteout's `renameat2`).
    pub created_by: Option<usize>,
    /// The last op that changed its names or, for a directory, its entries: an fsync of
    /// it commits the journal transaction of that op (see `model::namespace`).
    pub last_ns_op: Option<usize>,
}

/// One collapse or insert range, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shift {
    /// First word that moved.
    pub at: u64,
    /// How far: negative for a collapse, positive for an insert.
    pub by: i64,
}

impl Inode {
    /// A new, empty inode of kind `kind` made by op `k`.
    pub(crate) fn new(kind: NodeKind, k: usize) -> Inode {
        Inode {
            words: WordMap::new(),
            size: 0,
            sizes: SizeSet::exactly(0),
            tainted: false,
            shifts: Vec::new(),
            kind,
            target: None,
            created_by: Some(k),
            last_ns_op: Some(k),
            meta: MetaHist::created(),
        }
    }

    /// Write bytes `[start, end)` from `src` as op `k` (see [`WordMap::write`]). While
    /// shifts are pending, the words written are blocks that an undone shift shows at
    /// their older offsets, so each older offset also allows what was written.
    fn write(&mut self, seed: u64, start: u64, end: u64, src: WordSrc, k: usize, sync: bool) {
        self.words.write(seed, start, end, src, k, sync);
        if start >= end || self.shifts.is_empty() {
            return;
        }
        let (lo, hi) = (start / WORD, end.div_ceil(WORD));
        // (current words [a, b), offset d of the older words): every older place of a block.
        let mut places: Vec<(u64, u64, i64)> = vec![(lo, hi, 0)];
        for sh in self.shifts.iter().rev() {
            let mut older = Vec::new();
            for &(a, b, d) in &places {
                // In the layout right after this shift, the words sit at [a + d, b + d).
                let (x0, x1) = (a.saturating_add_signed(d), b.saturating_add_signed(d));
                // Collapse: words from `at` on came from `by` words to the right. Insert:
                // words from `at + by` on came from `by` to the left; [at, at + by) is new.
                let from = if sh.by < 0 {
                    sh.at
                } else {
                    sh.at.saturating_add(sh.by.unsigned_abs())
                };
                let s = x0.max(from);
                if s < x1 {
                    let p = (s.saturating_add_signed(-d), b, d.saturating_sub(sh.by));
                    if !places.contains(&p) && !older.contains(&p) {
                        older.push(p);
                    }
                }
            }
            places.extend(older);
        }
        for (a, b, d) in places.into_iter().filter(|p| p.2 != 0) {
            self.words.allow_moved(a, b, d);
        }
    }

    /// First byte a pending shift moved (`u64::MAX` when none): msync and user flushes
    /// promise nothing from here on, since they need not make the shift durable.
    fn shift_floor(&self) -> u64 {
        self.shifts
            .iter()
            .map(|s| s.at.saturating_mul(WORD))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The layout and every word are durable (fsync, fdatasync, sync).
    fn make_all_durable(&mut self, k: usize) {
        self.words.make_all_durable(k);
        self.sizes = SizeSet::exactly(self.size);
        self.shifts.clear();
    }

    /// `fsync`'s promise: data, layout and every metadata value.
    fn make_all_and_metadata_durable(&mut self, k: usize) {
        self.make_all_durable(k);
        self.meta.make_durable(k);
    }
}

/// What the agent holds under a name.
#[derive(Debug, Clone, Copy)]
struct Entry {
    inode: usize,
    fd: bool,
    /// The open flag of the descriptor (meaningful while `fd`).
    sync: OpenSync,
    map: Option<Map>,
}

#[derive(Debug, Clone, Copy)]
struct Map {
    sync: bool,
}

/// The replay state.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    seed: u64,
    rules: FsRules,
    /// Every inode the workload created, by creation order.
    pub inodes: Vec<Inode>,
    /// Every name the workload mentions.
    pub names: BTreeMap<String, Name>,
    held: BTreeMap<String, Entry>,
    /// The last op that changed an entry of the workload directory itself.
    root_ns_op: Option<usize>,
}

impl Model {
    /// An empty directory for a workload seeded `seed` that mentions `names`.
    pub fn new<'a>(seed: u64, rules: &FsRules, names: impl Iterator<Item = &'a str>) -> Model {
        Model {
            seed,
            rules: rules.clone(),
            inodes: Vec::new(),
            names: names.map(|n| (n.to_string(), Name::default())).collect(),
            held: BTreeMap::new(),
            root_ns_op: None,
        }
    }

    fn name(&mut self, name: &str) -> &mut Name {
        self.names.entry(name.to_string()).or_default()
    }

    /// Inode held open (with a descriptor) under `name`.
    fn open_inode(&self, name: &str) -> Option<usize> {
        self.held.get(name).filter(|e| e.fd).map(|e| e.inode)
    }

    /// Inode and mapping held under `name`.
    fn mapped(&self, name: &str) -> Option<(usize, Map)> {
        self.held
            .get(name)
            .and_then(|e| e.map.map(|m| (e.inode, m)))
    }

    /// Set inode `i`'s size to `new` as op `k`: bytes cut off become zero versions.
    fn set_size(&mut self, i: usize, new: u64, k: usize, certain: bool) {
        let seed = self.seed;
        let ino = &mut self.inodes[i];
        let old = ino.size;
        if new < old {
            ino.write(seed, new, old, WordSrc::Zero, k, false);
        }
        ino.size = new;
        if certain {
            ino.sizes.add(new, new);
        } else {
            // An interrupted size change may have been cut short anywhere in between.
            ino.sizes.add(old, new);
        }
    }

    fn grow(&mut self, i: usize, end: u64, k: usize, certain: bool) {
        if end > self.inodes[i].size {
            self.set_size(i, end, k, certain);
        }
    }

    /// Everything op `op` could touch: names and inodes (for tainting).
    fn touched(&self, op: &Op) -> (Vec<String>, Vec<usize>) {
        let names: Vec<String> = op.files().into_iter().map(str::to_string).collect();
        let inodes = names
            .iter()
            .filter_map(|n| {
                self.held
                    .get(n)
                    .map(|e| e.inode)
                    .or_else(|| self.names.get(n).and_then(Name::current))
            })
            .collect();
        (names, inodes)
    }

    /// Advance over op `k`.
    pub fn apply(&mut self, k: usize, op: &Op, effect: Effect) {
        let ret = match effect {
            Effect::Done(o) if !o.succeeded() => {
                self.failed(op);
                return;
            }
            Effect::Done(o) => Some(o.ret),
            Effect::Unknown | Effect::InFlight => None,
        };
        let certain = matches!(effect, Effect::Done(_));
        let before = if effect == Effect::Unknown {
            Some(self.touched(op))
        } else {
            None
        };
        self.replay(k, op, ret, certain);
        if let Some((names, inodes)) = before.map(|(n, mut i)| {
            i.extend(self.touched(op).1);
            (n, i)
        }) {
            for n in names {
                self.name(&n).tainted = true;
            }
            for i in inodes {
                self.inodes[i].tainted = true;
            }
        }
    }

    /// A failed op changes no data, but one that writes may have updated the modification
    /// time before it failed (the write paths call `file_modified()` first): permissive.
    fn failed(&mut self, op: &Op) {
        if op.changes_data() {
            if let Some(i) = op.files().first().and_then(|f| self.open_inode(f)) {
                self.inodes[i].meta.modified();
            }
        }
    }

    fn replay(&mut self, k: usize, op: &Op, ret: Option<i64>, certain: bool) {
        let seed = self.seed;
        if op.changes_data() {
            if let Some(i) = op.files().first().and_then(|f| self.open_inode(f)) {
                self.inodes[i].meta.modified();
            }
        }
        match op {
            Op::Create { file, sync, .. } => self.create(file, *sync, k, certain),
            Op::Open { file, sync, .. } => {
                if let Some(i) = self.names.get(file).and_then(Name::current) {
                    let e = self.held.entry(file.clone()).or_insert(Entry {
                        inode: i,
                        fd: false,
                        sync: OpenSync::None,
                        map: None,
                    });
                    e.fd = true;
                    e.sync = *sync;
                }
            }
            Op::Close { file } => {
                self.held.remove(file);
            }
            Op::Pwrite { file, off, len, .. }
            | Op::Pwritev2 { file, off, len, .. }
            | Op::UringWrite { file, off, len, .. } => {
                let Some(i) = self.open_inode(file) else {
                    return;
                };
                // A short write (or an error after some bytes) reports the bytes written.
                let written = ret.map_or(*len, |r| u64::try_from(r).unwrap_or(0).min(*len));
                let end = off.saturating_add(written);
                let id = op.pattern_id(k).unwrap_or(0);
                self.inodes[i].write(seed, *off, end, WordSrc::Pattern(id), k, false);
                if written > 0 {
                    self.grow(i, end, k, certain);
                }
                // RWF_DSYNC/RWF_SYNC, or a descriptor opened O_DSYNC/O_SYNC: the same promise
                // (generic_write_sync() tests iocb->ki_flags, which hold either).
                let per_write = matches!(
                    op,
                    Op::Pwritev2 { .. } | Op::UringWrite { flags: Some(_), .. }
                ) || self.held.get(file).is_some_and(|e| !e.sync.is_none());
                if per_write && certain && written > 0 {
                    self.per_write_promise(i, *off, end, k);
                    // O_SYNC and RWF_SYNC: generic_write_sync() passes datasync = 0, an
                    // fsync of the inode: every metadata value is durable too.
                    let full = matches!(
                        op,
                        Op::Pwritev2 {
                            flags: RwfFlag::Sync,
                            ..
                        } | Op::UringWrite {
                            flags: Some(RwfFlag::Sync),
                            ..
                        }
                    ) || self
                        .held
                        .get(file)
                        .is_some_and(|e| e.sync == OpenSync::Sync);
                    if full && !self.inodes[i].tainted {
                        self.inodes[i].meta.make_durable(k);
                    }
                }
            }
            // Promise nothing: sync_file_range writes back dirty pages but commits no
            // metadata (no block allocation, no size), msync(MS_ASYNC) is a no-op and
            // msync(MS_INVALIDATE) without MS_SYNC only checks for locked pages (mm/msync.c).
            Op::SyncFileRange { .. } | Op::MsyncAsync { .. } | Op::MsyncInvalidate { .. } => {}
            Op::Mmap { file, sync, .. } => {
                if let Some(e) = self.held.get_mut(file).filter(|e| e.fd) {
                    e.map = Some(Map { sync: *sync });
                    // mmap() calls file_accessed(): relatime may set the access time.
                    let i = e.inode;
                    self.inodes[i].meta.accessed();
                }
            }
            Op::Munmap { file } => {
                if let Some(e) = self.held.get_mut(file) {
                    e.map = None;
                }
            }
            Op::MmapStore { file, off, len, .. } => self.store(file, *off, *len, op, k),
            Op::Flush { file, off, len } => {
                let Some((i, map)) = self.mapped(file) else {
                    return;
                };
                let ino = &mut self.inodes[i];
                if certain && map.sync && !ino.tainted {
                    // Only words whose current version a MAP_SYNC store wrote: the store's
                    // page fault made the block mapping durable. Other bytes in the lines
                    // (e.g. a pwrite into a fresh block) may lack durable metadata. Words
                    // straddling or past EOF are left out (a truncate may not be durable).
                    let lo = round_down(*off, CACHE_LINE) / WORD;
                    let hi = round_up(off.saturating_add(*len), CACHE_LINE)
                        .min(ino.size)
                        .min(ino.shift_floor())
                        / WORD;
                    ino.words.make_durable(lo, hi, k, |v| v.sync_store);
                }
            }
            Op::Msync { file, off, len } => {
                let Some((i, _)) = self.mapped(file) else {
                    return;
                };
                let msync_size = self.rules.msync_makes_size_durable;
                let ino = &mut self.inodes[i];
                if certain && !ino.tainted {
                    // The kernel rounds the start down to a page; only words wholly inside
                    // [start, off + len) and below EOF are promised (permissive: the kernel
                    // also rounds the end up to a page, which is not demanded).
                    // Nor the words a pending collapse or insert range moved: msync need not
                    // make the new layout durable (permissive).
                    let start = round_down(*off, PAGE_SIZE);
                    let end = off
                        .saturating_add(*len)
                        .min(ino.size)
                        .min(ino.shift_floor());
                    ino.words
                        .make_durable(start / WORD, end / WORD, k, |_| true);
                    if msync_size && start < end {
                        // Synchronized I/O data integrity: the synced bytes must be
                        // retrievable, so the size covers them.
                        ino.sizes.at_least(end);
                    }
                }
            }
            Op::Fsync { file } | Op::Fdatasync { file } | Op::UringFsync { file, .. } => {
                let Some(i) = self.open_inode(file) else {
                    return;
                };
                if !certain || self.inodes[i].tainted {
                    return;
                }
                let full = matches!(
                    op,
                    Op::Fsync { .. }
                        | Op::UringFsync {
                            datasync: false,
                            ..
                        }
                );
                if full {
                    self.inodes[i].make_all_and_metadata_durable(k);
                } else {
                    self.inodes[i].make_all_durable(k);
                }
                self.fsync_names(file, i, !full, k);
            }
            Op::Ftruncate { file, size } => {
                if let Some(i) = self.open_inode(file) {
                    self.set_size(i, *size, k, certain);
                }
            }
            Op::Fallocate {
                file,
                mode,
                off,
                len,
            } => {
                let Some(i) = self.open_inode(file) else {
                    return;
                };
                let end = off.saturating_add(*len);
                let size = self.inodes[i].size;
                if mode.shifts() {
                    self.shift(i, *mode, *off, *len, k, certain);
                    return;
                }
                if matches!(mode, FallocMode::PunchHole | FallocMode::ZeroRange) {
                    self.inodes[i].write(seed, *off, end.min(size), WordSrc::Zero, k, false);
                }
                if matches!(mode, FallocMode::Allocate | FallocMode::ZeroRange) {
                    self.grow(i, end, k, certain);
                }
            }
            Op::Rename { from, to } => self.rename(from, to, k),
            Op::Unlink { file } => {
                self.held.remove(file);
                if let Some(i) = self.names.get(file).and_then(Name::current) {
                    self.inodes[i].last_ns_op = Some(k);
                }
                self.name(file).bind(None, k);
                self.touch_dir(parent(file), k);
            }
            Op::FsyncDir { dir } => {
                if certain {
                    self.fsync_dir(dir.as_deref().unwrap_or(""), k);
                }
            }
            Op::Mkdir { .. }
            | Op::Rmdir { .. }
            | Op::Link { .. }
            | Op::Symlink { .. }
            | Op::Renameat2 { .. } => self.replay_namespace(k, op),
            // syncfs(fd) is sync_filesystem() of the fd's file system, the same work sync(2)
            // does for each file system; every workload file is on that one DAX mount.
            Op::Sync | Op::Syncfs { .. } => {
                if certain {
                    self.names.values_mut().for_each(|n| n.make_durable(k));
                    for ino in self.inodes.iter_mut().filter(|i| !i.tainted) {
                        ino.make_all_and_metadata_durable(k);
                    }
                }
            }
            Op::Chmod { file, mode } => {
                if let Some(i) = self.open_inode(file) {
                    self.inodes[i].meta.chmod(*mode);
                }
            }
            Op::Setxattr {
                file, name, len, ..
            } => {
                if let Some(i) = self.open_inode(file) {
                    let id = op.pattern_id(k).unwrap_or(0);
                    let v = XattrVal {
                        id,
                        len: (*len).min(crate::meta::MAX_XATTR_VALUE),
                    };
                    self.inodes[i].meta.set_xattr(name, Some(v));
                }
            }
            Op::Removexattr { file, name } => {
                if let Some(i) = self.open_inode(file) {
                    self.inodes[i].meta.set_xattr(name, None);
                }
            }
            Op::Utimensat { file, sec, nsec } => {
                if let Some(i) = self.open_inode(file) {
                    let sec = i64::try_from(*sec).unwrap_or(i64::MAX);
                    let t = crate::meta::Timestamp { sec, nsec: *nsec };
                    self.inodes[i].meta.set_times(t);
                }
            }
        }
    }

    /// The promise of a `pwritev2` with RWF_DSYNC or RWF_SYNC, or a `pwrite` through a
    /// descriptor opened O_DSYNC or O_SYNC, that wrote `[off, end)` of inode `i` as op `k`:
    /// generic_write_sync() (called by ext4_dax_write_iter() and xfs_file_dax_write() after
    /// the DAX copy) runs vfs_fsync_range() over the written range before the call returns, so the words wholly inside it are durable and the size
    /// covers them. Not demanded (permissive): the ragged edge words (their other bytes may
    /// come from stores nobody promised), words a pending collapse or insert moved (the
    /// range sync need not make the new layout durable), anything outside the range.
    fn per_write_promise(&mut self, i: usize, off: u64, end: u64, k: usize) {
        let ino = &mut self.inodes[i];
        if ino.tainted {
            return;
        }
        let end = end.min(ino.shift_floor());
        let (lo, hi) = (off.div_ceil(WORD), end / WORD);
        if lo < hi {
            ino.words.make_durable(lo, hi, k, |_| true);
        }
        if off < end {
            ino.sizes.at_least(end);
        }
    }

    fn create(&mut self, file: &str, sync: OpenSync, k: usize, certain: bool) {
        if let Some(i) = self.names.get(file).and_then(Name::current) {
            // O_TRUNC of the existing file (do_truncate() sets the modification time).
            self.set_size(i, 0, k, certain);
            self.inodes[i].meta.modified();
            let e = self.held.entry(file.to_string()).or_insert(Entry {
                inode: i,
                fd: false,
                sync: OpenSync::None,
                map: None,
            });
            e.fd = true;
            e.sync = sync;
            return;
        }
        self.inodes.push(Inode::new(NodeKind::File, k));
        let i = self.inodes.len() - 1;
        let n = self.name(file);
        n.bind(Some(i), k);
        n.created_here = true;
        self.touch_dir(parent(file), k);
        self.held.insert(
            file.to_string(),
            Entry {
                inode: i,
                fd: true,
                sync,
                map: None,
            },
        );
    }

    fn store(&mut self, file: &str, off: u64, len: u64, op: &Op, k: usize) {
        let Some((i, map)) = self.mapped(file) else {
            return;
        };
        let seed = self.seed;
        let id = WordSrc::Pattern(op.pattern_id(k).unwrap_or(0));
        let ino = &mut self.inodes[i];
        let end = off.saturating_add(len);
        let size = ino.size;
        ino.write(seed, off, end.min(size), id, k, map.sync);
        if end > size {
            // Stores into the tail of the last page past EOF succeed and are not part of
            // the file; whether a later extension shows them or zeros differs between
            // filesystems. Allow both and stop trusting promises about this file.
            let from = off.max(size);
            ino.write(seed, from, end, id, k, map.sync);
            ino.write(seed, from, end, WordSrc::Zero, k, false);
            ino.tainted = true;
        }
    }

    /// Collapse or insert range `[off, off+len)` of inode `i` as op `k`. A range the kernel
    /// refuses (unaligned, or past EOF) changes nothing: only an op with an unknown outcome
    /// gets here with one, and the kernel would have failed it.
    fn shift(&mut self, i: usize, mode: FallocMode, off: u64, len: u64, k: usize, certain: bool) {
        let ino = &mut self.inodes[i];
        let old = ino.size;
        let aligned = off.is_multiple_of(FS_BLOCK) && len.is_multiple_of(FS_BLOCK) && len > 0;
        let Ok(words) = i64::try_from(len / WORD) else {
            return;
        };
        let (by, new) = match mode {
            FallocMode::CollapseRange if aligned && off.saturating_add(len) < old => {
                (-words, old - len)
            }
            FallocMode::InsertRange if aligned && off < old => (words, old.saturating_add(len)),
            _ => return,
        };
        // ext4 and xfs move one extent per transaction (ext4_ext_shift_extents restarts its
        // handle when it runs out of credits; xfs_collapse_file_space and
        // xfs_insert_file_space roll the transaction per extent), so before a durability
        // point any mix of the old and new layout with holes may survive (WordMap::shift).
        ino.words.shift(off / WORD, by, k);
        ino.shifts.push(Shift { at: off / WORD, by });
        ino.size = new;
        // The size changes in a transaction of its own (xfs: before an insert, after a
        // collapse; ext4: first for an insert, last for a collapse): either size.
        if certain {
            ino.sizes.add(new, new);
        } else {
            ino.sizes.add(old, new);
        }
    }
}
