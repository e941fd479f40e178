//! The oracle's replay of a workload: inodes with their word histories and sizes, names
//! with their durable and pending bindings, and the agent's per-name table, advanced op by
//! op with the durability promises of each op (see the rules in `oracle.rs`).

use std::collections::BTreeMap;

use super::words::{SizeSet, WordMap, WordSrc, WORD};
use super::FsRules;
use crate::op::{FallocMode, Op, OpOutcome};
use crate::sim::{round_down, round_up, CACHE_LINE, PAGE_SIZE};

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
}

/// One directory entry name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Name {
    /// Inode durably bound to the name (`None`: durably absent).
    pub durable: Option<usize>,
    /// Bindings since, oldest first; the last is the current one.
    pub pending: Vec<Option<usize>>,
    /// The current binding was made by a `create` of a new file (not a rename).
    pub created_here: bool,
    /// An op on it had an unknown outcome: bindings are never made durable again.
    pub tainted: bool,
}

impl Name {
    /// The current binding.
    pub fn current(&self) -> Option<usize> {
        self.pending.last().copied().unwrap_or(self.durable)
    }

    fn bind(&mut self, to: Option<usize>) {
        if self.current() != to {
            self.pending.push(to);
        }
        self.created_here = false;
    }

    fn make_durable(&mut self) {
        if !self.tainted {
            self.durable = self.current();
            self.pending.clear();
        }
    }

    /// Every binding a crash may leave, deduplicated, the current one first.
    pub fn candidates(&self) -> Vec<Option<usize>> {
        let mut out = vec![self.current()];
        for b in std::iter::once(self.durable).chain(self.pending.iter().copied()) {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// What the agent holds under a name.
#[derive(Debug, Clone, Copy)]
struct Entry {
    inode: usize,
    fd: bool,
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
            ino.words.write(seed, new, old, WordSrc::Zero, k, false);
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
            Effect::Done(o) if !o.succeeded() => return,
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

    fn replay(&mut self, k: usize, op: &Op, ret: Option<i64>, certain: bool) {
        let seed = self.seed;
        match op {
            Op::Create { file } => self.create(file, k, certain),
            Op::Open { file } => {
                if let Some(i) = self.names.get(file).and_then(Name::current) {
                    let e = self.held.entry(file.clone()).or_insert(Entry {
                        inode: i,
                        fd: false,
                        map: None,
                    });
                    e.fd = true;
                }
            }
            Op::Close { file } => {
                self.held.remove(file);
            }
            Op::Pwrite { file, off, len, .. } => {
                let Some(i) = self.open_inode(file) else {
                    return;
                };
                // A short write (or an error after some bytes) reports the bytes written.
                let written = ret.map_or(*len, |r| u64::try_from(r).unwrap_or(0).min(*len));
                let end = off.saturating_add(written);
                let id = op.pattern_id(k).unwrap_or(0);
                self.inodes[i]
                    .words
                    .write(seed, *off, end, WordSrc::Pattern(id), k, false);
                if written > 0 {
                    self.grow(i, end, k, certain);
                }
            }
            Op::Mmap { file, sync, .. } => {
                if let Some(e) = self.held.get_mut(file).filter(|e| e.fd) {
                    e.map = Some(Map { sync: *sync });
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
                    let hi = round_up(off.saturating_add(*len), CACHE_LINE).min(ino.size) / WORD;
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
                    let start = round_down(*off, PAGE_SIZE);
                    let end = off.saturating_add(*len).min(ino.size);
                    ino.words
                        .make_durable(start / WORD, end / WORD, k, |_| true);
                    if msync_size && start < end {
                        // Synchronized I/O data integrity: the synced bytes must be
                        // retrievable, so the size covers them.
                        ino.sizes.at_least(end);
                    }
                }
            }
            Op::Fsync { file } | Op::Fdatasync { file } => {
                let Some(i) = self.open_inode(file) else {
                    return;
                };
                if !certain || self.inodes[i].tainted {
                    return;
                }
                let ino = &mut self.inodes[i];
                ino.words.make_all_durable(k);
                ino.sizes = SizeSet::exactly(ino.size);
                let names_it = match op {
                    Op::Fsync { .. } => self.rules.fsync_makes_new_name_durable,
                    _ => self.rules.fdatasync_makes_new_name_durable,
                };
                // Only a name made by `create` of this inode: ext4/xfs would also commit an
                // earlier rename with the same journal transaction, but that is not demanded.
                let n = self.name(file);
                if names_it && n.created_here && n.current() == Some(i) {
                    n.make_durable();
                }
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
                if matches!(mode, FallocMode::PunchHole | FallocMode::ZeroRange) {
                    self.inodes[i]
                        .words
                        .write(seed, *off, end.min(size), WordSrc::Zero, k, false);
                }
                if matches!(mode, FallocMode::Allocate | FallocMode::ZeroRange) {
                    self.grow(i, end, k, certain);
                }
            }
            Op::Rename { from, to } => {
                let Some(i) = self.names.get(from).and_then(Name::current) else {
                    return;
                };
                if from == to {
                    return;
                }
                // Permissive: until a directory fsync, each name may show its old or new
                // binding independently (a crash may even leave both names or neither).
                self.name(to).bind(Some(i));
                self.name(from).bind(None);
                self.held.remove(to);
                if let Some(e) = self.held.remove(from) {
                    self.held.insert(to.clone(), e);
                }
            }
            Op::Unlink { file } => {
                self.held.remove(file);
                self.name(file).bind(None);
            }
            Op::FsyncDir => {
                if certain {
                    self.names.values_mut().for_each(Name::make_durable);
                }
            }
            Op::Sync => {
                if certain {
                    self.names.values_mut().for_each(Name::make_durable);
                    for ino in self.inodes.iter_mut().filter(|i| !i.tainted) {
                        ino.words.make_all_durable(k);
                        ino.sizes = SizeSet::exactly(ino.size);
                    }
                }
            }
        }
    }

    fn create(&mut self, file: &str, k: usize, certain: bool) {
        if let Some(i) = self.names.get(file).and_then(Name::current) {
            // O_TRUNC of the existing file.
            self.set_size(i, 0, k, certain);
            let e = self.held.entry(file.to_string()).or_insert(Entry {
                inode: i,
                fd: false,
                map: None,
            });
            e.fd = true;
            return;
        }
        self.inodes.push(Inode {
            words: WordMap::new(),
            size: 0,
            sizes: SizeSet::exactly(0),
            tainted: false,
        });
        let i = self.inodes.len() - 1;
        let n = self.name(file);
        n.bind(Some(i));
        n.created_here = true;
        self.held.insert(
            file.to_string(),
            Entry {
                inode: i,
                fd: true,
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
        ino.words.write(seed, off, end.min(size), id, k, map.sync);
        if end > size {
            // Stores into the tail of the last page past EOF succeed and are not part of
            // the file; whether a later extension shows them or zeros differs between
            // filesystems. Allow both and stop trusting promises about this file.
            let from = off.max(size);
            ino.words.write(seed, from, end, id, k, map.sync);
            ino.words.write(seed, from, end, WordSrc::Zero, k, false);
            ino.tainted = true;
        }
    }
}
