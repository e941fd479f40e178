//! Differential test against a deliberately naive reference: it keeps a full snapshot of
//! every file after every op and, per word, the snapshot index of its last durable point,
//! then builds random crash states a correct kernel could leave (each word from any
//! snapshot since its durable point, any size since the size's). The oracle must accept
//! every one of them: it may be more permissive than the reference, never stricter.
//! Metadata the same way: every value of the mode, the times (`None`: the kernel set it,
//! any value) and each xattr since its last durable point.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use workloads::generator::{generate, Profile};
use workloads::meta::{xattr_value, FileMeta, Timestamp, Xattr, CREATE_MODE};
use workloads::oracle::{expectation, CrashPoint, FsRules, Observed, Verdict};
use workloads::{
    FallocMode, NodeKind, Op, OpOutcome, OpenSync, Pattern, RenameFlag, RwfFlag, Workload,
};

/// One metadata value's every state and the index of the durable one.
#[derive(Clone)]
struct RefValue<T>(Vec<T>, usize);

impl<T: Clone> RefValue<T> {
    fn set(&mut self, v: T) {
        self.0.push(v);
    }
    fn durable(&mut self) {
        self.1 = self.0.len() - 1;
    }
    fn crash(&self, mode: usize, rng: &mut Choices) -> T {
        let since = &self.0[self.1..];
        since[match mode {
            0 => 0,
            1 => since.len() - 1,
            _ => rng.next(since.len()),
        }]
        .clone()
    }
}

struct RefMeta {
    mode: RefValue<u32>,
    atime: RefValue<Option<Timestamp>>,
    mtime: RefValue<Option<Timestamp>>,
    xattrs: BTreeMap<String, RefValue<Option<Vec<u8>>>>,
}

impl RefMeta {
    fn new() -> RefMeta {
        RefMeta {
            mode: RefValue(vec![CREATE_MODE], 0),
            atime: RefValue(vec![None], 0),
            mtime: RefValue(vec![None], 0),
            xattrs: BTreeMap::new(),
        }
    }
    fn fsync(&mut self) {
        self.mode.durable();
        self.atime.durable();
        self.mtime.durable();
        self.xattrs.values_mut().for_each(RefValue::durable);
    }
    fn crash(&self, mode: usize, rng: &mut Choices) -> FileMeta {
        // A time the kernel set may be anything: one no workload sets.
        let any = Timestamp { sec: 7, nsec: 7 };
        FileMeta {
            mode: self.mode.crash(mode, rng),
            atime: self.atime.crash(mode, rng).unwrap_or(any),
            mtime: self.mtime.crash(mode, rng).unwrap_or(any),
            xattrs: self
                .xattrs
                .iter()
                .filter_map(|(n, v)| {
                    let value = v.crash(mode, rng)?;
                    Some(Xattr {
                        name: n.clone(),
                        value,
                    })
                })
                .collect(),
        }
    }
}

const PAGE: u64 = 4096;
const LINE: u64 = 64;

/// One file of the reference: every content it had, per-word durable snapshot index,
/// whether a MAP_SYNC store last changed each word, and the sizes a crash may leave.
struct RefInode {
    meta: RefMeta,
    hist: Vec<Vec<u8>>,
    durable: Vec<usize>,
    last_sync: Vec<bool>,
    sizes: Vec<u64>,
}

impl RefInode {
    fn new(words: usize) -> RefInode {
        RefInode {
            meta: RefMeta::new(),
            hist: vec![Vec::new()],
            durable: vec![0; words],
            last_sync: vec![false; words],
            sizes: vec![0],
        }
    }

    fn cur(&self) -> &Vec<u8> {
        self.hist.last().expect("never empty")
    }

    fn size(&self) -> u64 {
        self.cur().len() as u64
    }

    fn word(data: &[u8], w: usize) -> [u8; 8] {
        let mut out = [0; 8];
        for (i, b) in out.iter_mut().enumerate() {
            *b = data.get(w * 8 + i).copied().unwrap_or(0);
        }
        out
    }

    /// Record `new` as the content after an op (`sync`: a MAP_SYNC store).
    fn push(&mut self, new: Vec<u8>, sync: bool) {
        for w in 0..self.durable.len() {
            if Self::word(self.cur(), w) != Self::word(&new, w) {
                self.last_sync[w] = sync;
            }
        }
        if new.len() != self.cur().len() {
            self.sizes.push(new.len() as u64);
        }
        self.hist.push(new);
    }

    fn make_durable(&mut self, words: std::ops::Range<u64>, only_sync: bool) {
        let now = self.hist.len() - 1;
        for w in words {
            let w = w as usize;
            if w < self.durable.len() && (!only_sync || self.last_sync[w]) {
                self.durable[w] = now;
            }
        }
    }

    fn fsync(&mut self) {
        self.make_durable(0..self.durable.len() as u64, false);
        self.sizes = vec![self.size()];
    }
}

struct Reference {
    seed: u64,
    words: usize,
    names: BTreeMap<String, usize>,
    inodes: Vec<RefInode>,
    /// Per name: inode, mapping (`Some(MAP_SYNC)`), the descriptor's open flag.
    held: BTreeMap<String, (usize, Option<bool>, OpenSync)>,
    /// Names of directories, symlinks (with their text) and whiteouts.
    nodes: BTreeMap<String, (NodeKind, Option<String>)>,
}

impl Reference {
    /// Move whatever `from` names (and holds) to `to`, replacing what `to` named.
    fn move_name(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        let file = self.names.remove(from);
        let node = self.nodes.remove(from);
        let held = self.held.remove(from);
        self.names.remove(to);
        self.nodes.remove(to);
        self.held.remove(to);
        if let Some(i) = file {
            self.names.insert(to.to_string(), i);
        }
        if let Some(n) = node {
            self.nodes.insert(to.to_string(), n);
        }
        if let Some(h) = held {
            self.held.insert(to.to_string(), h);
        }
    }

    /// The namespace ops (content does not change).
    fn apply_namespace(&mut self, op: &Op) {
        match op {
            Op::Mkdir { dir } => {
                self.nodes.insert(dir.clone(), (NodeKind::Dir, None));
            }
            Op::Rmdir { dir } => {
                self.nodes.remove(dir);
            }
            Op::Symlink { target, link } => {
                self.nodes
                    .insert(link.clone(), (NodeKind::Symlink, Some(target.clone())));
            }
            Op::Link { from, to } => {
                let i = self.names[from];
                self.names.insert(to.clone(), i);
            }
            Op::Renameat2 { from, to, flags } => match flags {
                RenameFlag::Exchange => {
                    self.move_name(to, "\0tmp");
                    self.move_name(from, to);
                    self.move_name("\0tmp", from);
                }
                RenameFlag::Noreplace => self.move_name(from, to),
                RenameFlag::Whiteout => {
                    self.move_name(from, to);
                    self.nodes.insert(from.clone(), (NodeKind::Whiteout, None));
                }
            },
            _ => {}
        }
    }
}

impl Reference {
    fn apply(&mut self, k: usize, op: &Op) {
        let seed = self.seed;
        let pattern = |k: usize| Pattern::new(seed, k as u32 + 1);
        // Writes, truncates and fallocate set the modification time, mmap the access time.
        if let Some(&(i, _, _)) = op.files().first().and_then(|f| self.held.get(*f)) {
            match op {
                Op::Mmap { .. } => self.inodes[i].meta.atime.set(None),
                Op::Create { .. } => self.inodes[i].meta.mtime.set(None),
                _ if op.changes_data() => self.inodes[i].meta.mtime.set(None),
                _ => {}
            }
        }
        let held = |f: &str| self.held.get(f).copied();
        match op {
            Op::Create { file, sync, .. } => {
                if let Some(&i) = self.names.get(file) {
                    self.inodes[i].push(Vec::new(), false);
                    self.inodes[i].meta.mtime.set(None);
                    self.held.entry(file.clone()).or_insert((i, None, *sync)).2 = *sync;
                } else {
                    self.inodes.push(RefInode::new(self.words));
                    let i = self.inodes.len() - 1;
                    self.names.insert(file.clone(), i);
                    self.held.insert(file.clone(), (i, None, *sync));
                }
            }
            Op::Open { file, sync, .. } => {
                let i = self.names[file];
                self.held.entry(file.clone()).or_insert((i, None, *sync)).2 = *sync;
            }
            Op::Close { file } | Op::Unlink { file } => {
                self.held.remove(file);
                if matches!(op, Op::Unlink { .. }) {
                    self.names.remove(file);
                    self.nodes.remove(file);
                }
            }
            Op::Mkdir { .. }
            | Op::Rmdir { .. }
            | Op::Symlink { .. }
            | Op::Link { .. }
            | Op::Renameat2 { .. } => self.apply_namespace(op),
            Op::Pwrite { file, off, len, .. }
            | Op::MmapStore { file, off, len, .. }
            | Op::UringWrite {
                file,
                off,
                len,
                flags: None,
                ..
            } => {
                let (i, map, open_sync) = held(file).expect("valid workload");
                let ino = &mut self.inodes[i];
                let mut data = ino.cur().clone();
                let end = off + len;
                let store = matches!(op, Op::MmapStore { .. });
                let stop = if store {
                    end.min(data.len() as u64)
                } else {
                    end
                };
                if data.len() < stop as usize {
                    data.resize(stop as usize, 0);
                }
                pattern(k).fill(*off, &mut data[*off as usize..stop as usize]);
                ino.push(data, store && map == Some(true));
                // O_DSYNC / O_SYNC: a pwrite (never a store) promises as RWF_DSYNC does.
                if !store && open_sync != OpenSync::None {
                    ino.make_durable(off.div_ceil(8)..end / 8, false);
                    ino.sizes.retain(|&s| s >= end);
                }
                if !store && open_sync == OpenSync::Sync {
                    ino.meta.fsync();
                }
            }
            Op::Mmap { file, sync, .. } => {
                if let Some(h) = self.held.get_mut(file) {
                    h.1 = Some(*sync);
                }
            }
            Op::Munmap { file } => {
                if let Some(h) = self.held.get_mut(file) {
                    h.1 = None;
                }
            }
            Op::Flush { file, off, len } => {
                let (i, map, _) = held(file).expect("valid workload");
                let ino = &mut self.inodes[i];
                let hi = ((off + len).div_ceil(LINE) * LINE).min(ino.size()) / 8;
                if map == Some(true) {
                    ino.make_durable(off / LINE * LINE / 8..hi, true);
                }
            }
            Op::Msync { file, off, len } => {
                let (i, _, _) = held(file).expect("valid workload");
                let ino = &mut self.inodes[i];
                let (start, end) = (off / PAGE * PAGE, (off + len).min(ino.size()));
                ino.make_durable(start / 8..end / 8, false);
                if start < end {
                    ino.sizes.retain(|&s| s >= end);
                }
            }
            Op::Fsync { file } | Op::Fdatasync { file } | Op::UringFsync { file, .. } => {
                let (i, _, _) = held(file).expect("valid workload");
                self.inodes[i].fsync();
                if matches!(
                    op,
                    Op::Fsync { .. }
                        | Op::UringFsync {
                            datasync: false,
                            ..
                        }
                ) {
                    self.inodes[i].meta.fsync();
                }
            }
            Op::Chmod { file, mode } => {
                let (i, _, _) = held(file).expect("valid workload");
                self.inodes[i].meta.mode.set(*mode);
            }
            Op::Utimensat { file, sec, nsec } => {
                let (i, _, _) = held(file).expect("valid workload");
                let t = Some(Timestamp {
                    sec: *sec as i64,
                    nsec: *nsec,
                });
                self.inodes[i].meta.atime.set(t);
                self.inodes[i].meta.mtime.set(t);
            }
            Op::Setxattr { file, name, .. } | Op::Removexattr { file, name } => {
                let (i, _, _) = held(file).expect("valid workload");
                let value = match op {
                    Op::Setxattr { len, .. } => Some(xattr_value(seed, k as u32 + 1, *len)),
                    _ => None,
                };
                let x = self.inodes[i].meta.xattrs.entry(name.clone());
                x.or_insert_with(|| RefValue(vec![None], 0)).set(value);
            }
            Op::Ftruncate { file, size } => {
                let (i, _, _) = held(file).expect("valid workload");
                let mut data = self.inodes[i].cur().clone();
                data.resize(*size as usize, 0);
                self.inodes[i].push(data, false);
            }
            Op::Fallocate {
                file,
                mode,
                off,
                len,
            } => {
                let (i, _, _) = held(file).expect("valid workload");
                let mut data = self.inodes[i].cur().clone();
                let end = (off + len) as usize;
                // Collapse and insert range: the new layout (a crash may also leave the old
                // one per word, which the snapshots since the durable point cover).
                if *mode == FallocMode::CollapseRange {
                    data.drain(*off as usize..end);
                } else if *mode == FallocMode::InsertRange {
                    data.splice(*off as usize..*off as usize, vec![0; *len as usize]);
                }
                if matches!(mode, FallocMode::PunchHole | FallocMode::ZeroRange) {
                    let stop = end.min(data.len());
                    if (*off as usize) < stop {
                        data[*off as usize..stop].fill(0);
                    }
                }
                if matches!(mode, FallocMode::Allocate | FallocMode::ZeroRange) && data.len() < end
                {
                    data.resize(end, 0);
                }
                self.inodes[i].push(data, false);
            }
            Op::Rename { from, to } => self.move_name(from, to),
            Op::Pwritev2 { file, off, len, .. } | Op::UringWrite { file, off, len, .. } => {
                let (i, _, _) = held(file).expect("valid workload");
                let ino = &mut self.inodes[i];
                let mut data = ino.cur().clone();
                let end = off + len;
                if data.len() < end as usize {
                    data.resize(end as usize, 0);
                }
                pattern(k).fill(*off, &mut data[*off as usize..end as usize]);
                ino.push(data, false);
                // RWF_DSYNC / RWF_SYNC: the whole words written, and a size covering them.
                ino.make_durable(off.div_ceil(8)..end / 8, false);
                ino.sizes.retain(|&s| s >= end);
            }
            // Sync calls that promise nothing.
            Op::SyncFileRange { .. } | Op::MsyncAsync { .. } | Op::MsyncInvalidate { .. } => {}
            Op::FsyncDir { .. } => {}
            Op::Sync | Op::Syncfs { .. } => self.inodes.iter_mut().for_each(|i| {
                i.fsync();
                i.meta.fsync();
            }),
        }
        // A per-write sync is a whole fsync when the write asks RWF_SYNC or its descriptor
        // was opened O_SYNC (the kiocb's IOCB_SYNC comes from either: `generic_write_sync`
        // then syncs with datasync 0, even for RWF_DSYNC on an O_SYNC descriptor).
        let per_write = match op {
            Op::Pwritev2 { file, flags, .. } => Some((file, *flags)),
            Op::UringWrite {
                file,
                flags: Some(f),
                ..
            } => Some((file, *f)),
            _ => None,
        };
        if let Some((file, flags)) = per_write {
            let (i, _, open_sync) = self.held[file];
            if flags == RwfFlag::Sync || open_sync == OpenSync::Sync {
                self.inodes[i].meta.fsync();
            }
        }
    }
}

/// A small xorshift generator for the crash-state choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A crash state of `ino`: `mode` 0 = everything lost, 1 = everything kept, 2 = per word,
/// 3 = per page.
fn crash_content(ino: &RefInode, mode: usize, rng: &mut Choices) -> Vec<u8> {
    let size = ino.sizes[rng.next(ino.sizes.len())];
    let mut out = Vec::with_capacity(size as usize);
    let mut page_pick = 0;
    for w in 0..size.div_ceil(8) as usize {
        let since = &ino.hist[ino.durable[w]..];
        if w % 512 == 0 {
            page_pick = rng.next(1 << 16);
        }
        let pick = match mode {
            0 => 0,
            1 => since.len() - 1,
            2 => rng.next(since.len()),
            _ => page_pick % since.len(),
        };
        out.extend_from_slice(&RefInode::word(&since[pick], w));
    }
    out.truncate(size as usize);
    out
}

fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| match op {
            Op::Pwrite { len, .. } | Op::Pwritev2 { len, .. } | Op::UringWrite { len, .. } => {
                Some(OpOutcome::ok(*len as i64))
            }
            _ => Some(OpOutcome::ok(0)),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_reference_crash_state_passes_the_oracle(
        seed in any::<u64>(),
        deep in any::<bool>(),
        pick in any::<Index>(),
        at_promise in any::<bool>(),
        choice_seed in 1..u64::MAX,
    ) {
        let profile = if deep { Profile::Default } else { Profile::Smoke };
        let w = generate(seed, profile);
        // Half the time crash right after a durability op, where promises bite.
        let points = w.durability_points();
        let promises: Vec<usize> = (0..w.ops.len()).filter(|&j| points[j]).collect();
        let k = if at_promise && !promises.is_empty() { *pick.get(&promises) } else { pick.index(w.ops.len()) };
        let mut reference = Reference {
            seed: w.seed,
            words: (profile.max_file_bytes() / 8) as usize,
            names: BTreeMap::new(),
            inodes: Vec::new(),
            held: BTreeMap::new(),
            nodes: BTreeMap::new(),
        };
        for (j, op) in w.ops.iter().enumerate().take(k + 1) {
            reference.apply(j, op);
        }
        let mut rng = Choices(choice_seed);

        for rules in [FsRules::ext4(), FsRules::generic()] {
            let e = expectation(&w, &all_ok(&w), CrashPoint::AfterOp(k), &rules);
            for mode in 0..4 {
                let mut observed: BTreeMap<String, Observed> = reference
                    .names
                    .iter()
                    .map(|(n, &i)| {
                        let ino = &reference.inodes[i];
                        let data = crash_content(ino, mode, &mut rng);
                        let meta = Some(ino.meta.crash(mode, &mut rng));
                        (n.clone(), Observed { meta, ..Observed::present(data) })
                    })
                    .collect();
                for (n, (kind, target)) in &reference.nodes {
                    observed.insert(n.clone(), Observed::node(*kind, target.clone()));
                }
                let r = e.check(&observed);
                let titles: Vec<String> = r.findings.iter().map(|f| f.title()).collect();
                prop_assert_eq!(r.verdict, Verdict::Pass, "{} mode {}: {:?}", rules.name, mode, titles);
            }
        }
    }
}
