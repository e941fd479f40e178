//! Seeded workload generator: `generate(seed, profile)` builds a random workload that
//! always passes validation and never faults in the agent, weighted towards the cases where
//! DAX durability goes wrong (mmap stores then fsync/msync, truncate and hole punching
//! under a mapping, MAP_SYNC flushes, writes past EOF, renames).

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::op::{FallocMode, Op, OpenSync, RwfFlag, Workload};
use crate::sim::{round_down, round_up, Sim, FS_BLOCK, PAGE_SIZE};

/// The generator's RNG, recorded with results: the same seed only reproduces a workload
/// with the same RNG (the `rand_chacha` version is pinned by the workspace).
pub const RNG: &str = "rand_chacha 0.3 ChaCha8";

/// Size class of generated workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// 8–15 ops on 1–2 files of at most 64 KiB: quick CI runs.
    Smoke,
    /// 20–40 ops on at most 3 files of at most 256 KiB.
    Default,
    /// 100–200 ops on at most 4 files of at most 1 MiB: nightly sweeps.
    Deep,
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload profile `{0}`; valid profiles: smoke, default, deep")]
pub struct UnknownProfile(pub String);

impl Profile {
    /// Every profile, smallest first.
    pub const ALL: [Profile; 3] = [Profile::Smoke, Profile::Default, Profile::Deep];

    /// Its name (`smoke`, `default`, `deep`).
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Default => "default",
            Profile::Deep => "deep",
        }
    }

    /// Number of ops generated (a trailing fsync may add one).
    pub fn ops(&self) -> RangeInclusive<usize> {
        match self {
            Profile::Smoke => 8..=15,
            Profile::Default => 20..=40,
            Profile::Deep => 100..=200,
        }
    }

    /// Most files that exist at once.
    pub fn max_files(&self) -> usize {
        match self {
            Profile::Smoke => 2,
            Profile::Default => 3,
            Profile::Deep => 4,
        }
    }

    /// Largest file size and offset + length of any op.
    pub fn max_file_bytes(&self) -> u64 {
        match self {
            Profile::Smoke => 64 << 10,
            Profile::Default => 256 << 10,
            Profile::Deep => 1 << 20,
        }
    }
}

impl Profile {
    /// Percent of `create`/`open` ops that add `O_DSYNC`, and that add `O_SYNC` (each): the
    /// per-write promises. Higher in `smoke` so its few seeds reach both.
    pub fn open_sync_percent(&self) -> u32 {
        match self {
            Profile::Smoke => 35,
            Profile::Default | Profile::Deep => 10,
        }
    }

    /// Percent of generator steps followed by a namespace episode (`generator::namespace`).
    pub fn namespace_percent(&self) -> u32 {
        match self {
            Profile::Smoke => 30,
            Profile::Default => 20,
            Profile::Deep => 10,
        }
    }
}

/// The RNG of the open flags: stream 1 of the seed's ChaCha8, so choosing a flag draws
/// nothing from the main stream (stream 0) and every other choice of a seed stays what it
/// was before open flags were generated.
fn flag_rng(seed: u64) -> ChaCha8Rng {
    stream_rng(seed, 1)
}

/// Stream `stream` of the seed's ChaCha8 (0 is the main stream; 1 the open flags; 2 the
/// namespace episodes).
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// Generate the workload for `seed` under `profile`. Same inputs, same workload (and the
/// same YAML), on every machine.
pub fn generate(seed: u64, profile: Profile) -> Workload {
    let g = generate_with(seed, profile, side::SideStreams::new(seed, profile));
    Workload {
        name: format!("seed-{seed}"),
        seed,
        profile: Some(profile.name().to_string()),
        ops: g.ops,
    }
}

/// [`generate`] with the given side streams: the generator's final state.
fn generate_with(seed: u64, profile: Profile, side: side::SideStreams) -> Gen {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        sim: Sim::new(),
        ops: Vec::new(),
        names: (0..profile.max_files()).map(|i| format!("f{i}")).collect(),
        max: profile.max_file_bytes(),
        flag_rng: flag_rng(seed),
        open_sync_percent: profile.open_sync_percent(),
        side,
        side_ops: Vec::new(),
        ns_rng: stream_rng(seed, 2),
    };
    let target = g.rng.gen_range(profile.ops());
    // Side-stream ops and namespace episodes do not count towards the target: the main
    // stream makes the same ops with or without them.
    let mut main_ops = 0;
    while main_ops < target {
        let before = g.ops.len();
        g.step();
        main_ops += g.ops.len() - before;
        if g.ns_rng.gen_range(0..100) < profile.namespace_percent() {
            g.namespace_episode();
        }
        g.metadata();
        g.uring();
    }
    g.ensure_durability_op();
    g
}

/// One generator step's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Open,
    Pwrite,
    Mmap,
    Store,
    Fsync,
    Fdatasync,
    Msync,
    Flush,
    Truncate,
    Fallocate,
    Rename,
    Unlink,
    Close,
    Munmap,
    FsyncDir,
    Sync,
    Syncfs,
    SyncFileRange,
    MsyncAsync,
    MsyncInvalidate,
    Pwritev2,
}

struct Gen {
    rng: ChaCha8Rng,
    sim: Sim,
    ops: Vec<Op>,
    names: Vec<String>,
    max: u64,
    flag_rng: ChaCha8Rng,
    open_sync_percent: u32,
    side: side::SideStreams,
    /// Indexes of the ops the side streams emitted.
    side_ops: Vec<usize>,
    ns_rng: ChaCha8Rng,
}

impl Gen {
    /// Emit `op` if the simulation accepts it (it always should; a refused op is dropped
    /// rather than producing an invalid workload).
    fn emit(&mut self, op: Op) -> bool {
        let ok = self.sim.apply(&op).is_ok();
        if ok {
            self.ops.push(op);
        }
        ok
    }

    /// The open flag of a generated `create`/`open` (from the flag stream only).
    fn open_sync(&mut self) -> OpenSync {
        let p = self.open_sync_percent;
        match self.flag_rng.gen_range(0..100) {
            r if r < p => OpenSync::Dsync,
            r if r < 2 * p => OpenSync::Sync,
            _ => OpenSync::None,
        }
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.rng.gen_range(0..items.len())].clone())
        }
    }

    fn names_where(&self, pred: impl Fn(&Sim, &str) -> bool) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| pred(&self.sim, n))
            .cloned()
            .collect()
    }

    fn open_files(&self) -> Vec<String> {
        self.names_where(|s, n| s.held(n).fd)
    }

    /// Mapped files and the bytes a store or flush may touch: min(mapping, size).
    fn storable(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .filter_map(|n| {
                let map = self.sim.held(n).map?;
                let limit = map.len.min(self.sim.size(n)?);
                (limit > 0).then(|| (n.clone(), limit))
            })
            .collect()
    }

    fn step(&mut self) {
        let existing = self.names_where(|s, n| s.exists(n)).len();
        let open = self.open_files().len();
        let mapped = self.names_where(|s, n| s.held(n).map.is_some()).len();
        let storable = self.storable().len();
        let closed = self.names_where(|s, n| s.exists(n) && !s.held(n).fd).len();
        let unmapped_open = self
            .names_where(|s, n| s.held(n).fd && s.held(n).map.is_none())
            .len();
        let w = |cond: bool, weight: u32| if cond { weight } else { 0 };
        let table = [
            (
                Action::Create,
                w(
                    existing < self.names.len(),
                    if existing == 0 { 100 } else { 5 },
                ),
            ),
            (Action::Open, w(closed > 0, 6)),
            (Action::Pwrite, w(open > 0, 14)),
            (Action::Mmap, w(unmapped_open > 0, 10) + w(open > 0, 1)),
            (Action::Store, w(storable > 0, 24)),
            (Action::Fsync, w(open > 0, 7)),
            (Action::Fdatasync, w(open > 0, 5)),
            (Action::Msync, w(mapped > 0, 7)),
            (Action::Flush, w(storable > 0, 5)),
            (Action::Truncate, w(open > 0, 6)),
            (Action::Fallocate, w(open > 0, 6)),
            (Action::Rename, w(existing > 0 && self.names.len() > 1, 3)),
            (Action::Unlink, w(existing > 0, 1)),
            (Action::Close, w(open > 0, 2)),
            (Action::Munmap, w(mapped > 0, 1)),
            (Action::FsyncDir, w(existing > 0, 2)),
            (Action::Sync, w(existing > 0, 1)),
            (Action::Syncfs, w(open > 0, 1)),
            (Action::SyncFileRange, w(open > 0, 2)),
            (Action::MsyncAsync, w(mapped > 0, 1)),
            (Action::MsyncInvalidate, w(mapped > 0, 1)),
            (Action::Pwritev2, w(open > 0, 3)),
        ];
        let total: u32 = table.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.gen_range(0..total.max(1));
        let mut action = Action::Create;
        for (a, weight) in table {
            if roll < weight {
                action = a;
                break;
            }
            roll -= weight;
        }
        self.act(action);
    }

    fn act(&mut self, action: Action) {
        let open = self.open_files();
        match action {
            Action::Create => self.create(),
            Action::Open => {
                let closed = self.names_where(|s, n| s.exists(n) && !s.held(n).fd);
                if let Some(file) = self.pick(&closed) {
                    let sync = self.open_sync();
                    let direct = self.side.direct();
                    self.emit(Op::Open { file, sync, direct });
                }
            }
            Action::Pwrite => {
                if let Some(file) = self.pick(&open) {
                    self.pwrite(file);
                }
            }
            Action::Mmap => {
                if let Some(file) = self.pick(&open) {
                    self.mmap(file);
                }
            }
            Action::Store => self.store(),
            Action::Fsync | Action::Fdatasync => {
                if let Some(file) = self.pick(&open) {
                    self.emit(if action == Action::Fsync {
                        Op::Fsync { file }
                    } else {
                        Op::Fdatasync { file }
                    });
                }
            }
            Action::Msync | Action::MsyncAsync | Action::MsyncInvalidate => {
                let mapped = self.names_where(|s, n| s.held(n).map.is_some());
                if let Some(file) = self.pick(&mapped) {
                    let len = self.sim.held(&file).map.map_or(0, |m| m.len);
                    let (off, len) = self.range(len);
                    self.emit(match action {
                        Action::Msync => Op::Msync { file, off, len },
                        Action::MsyncAsync => Op::MsyncAsync { file, off, len },
                        _ => Op::MsyncInvalidate { file, off, len },
                    });
                }
            }
            Action::Syncfs => {
                if let Some(file) = self.pick(&open) {
                    self.emit(Op::Syncfs { file });
                }
            }
            Action::SyncFileRange => {
                if let Some(file) = self.pick(&open) {
                    // Mostly over the data written so far, where a false alarm would show.
                    let size = self.sim.size(&file).unwrap_or(0);
                    let limit = if size > 0 && self.rng.gen_bool(0.8) {
                        size
                    } else {
                        self.max
                    };
                    let (off, len) = self.range(limit);
                    self.emit(Op::SyncFileRange { file, off, len });
                }
            }
            Action::Pwritev2 => {
                if let Some(file) = self.pick(&open) {
                    let flags = if self.rng.gen_bool(0.5) {
                        RwfFlag::Dsync
                    } else {
                        RwfFlag::Sync
                    };
                    let (off, len) = self.write_range(&file);
                    self.emit(Op::Pwritev2 {
                        file,
                        off,
                        len,
                        pattern: None,
                        flags,
                    });
                }
            }
            Action::Flush => {
                let storable = self.storable();
                if let Some((file, limit)) = self.pick(&storable) {
                    let (off, len) = self.range(limit);
                    self.emit(Op::Flush { file, off, len });
                }
            }
            Action::Truncate => {
                if let Some(file) = self.pick(&open) {
                    self.truncate(file);
                }
            }
            Action::Fallocate => {
                if let Some(file) = self.pick(&open) {
                    self.fallocate(file);
                }
            }
            Action::Rename => self.rename(),
            Action::Unlink => {
                let existing = self.names_where(|s, n| s.exists(n));
                if let Some(file) = self.pick(&existing) {
                    self.emit(Op::Unlink { file });
                    if self.rng.gen_bool(0.5) {
                        self.emit(Op::fsync_root());
                    }
                }
            }
            Action::Close => {
                if let Some(file) = self.pick(&open) {
                    self.emit(Op::Close { file });
                }
            }
            Action::Munmap => {
                let mapped = self.names_where(|s, n| s.held(n).map.is_some());
                if let Some(file) = self.pick(&mapped) {
                    self.emit(Op::Munmap { file });
                }
            }
            Action::FsyncDir => {
                self.emit(Op::fsync_root());
            }
            Action::Sync => {
                self.emit(Op::Sync);
            }
        }
    }

    /// An alignment for offsets and lengths: mostly 8 bytes, often a page, sometimes none.
    fn alignment(&mut self) -> u64 {
        match self.rng.gen_range(0..100) {
            0..=29 => PAGE_SIZE,
            30..=84 => 8,
            _ => 1,
        }
    }

    /// A range `[off, off + len)` inside `[0, limit)` with `len ≥ 1` (`limit ≥ 1`).
    fn range(&mut self, limit: u64) -> (u64, u64) {
        let mut align = self.alignment();
        while align > 1 && align > limit {
            align = if align == PAGE_SIZE { 8 } else { 1 };
        }
        let max_len = match self.rng.gen_range(0..10) {
            0..=3 => 256,
            4..=7 => 4 * PAGE_SIZE,
            _ => limit,
        }
        .min(limit);
        let len = round_down(self.rng.gen_range(1..=max_len), align)
            .max(align)
            .min(limit);
        let off = round_down(self.rng.gen_range(0..=limit - len), align);
        (off, len)
    }

    /// A size in `[0, max]`, page-aligned, 8-aligned or arbitrary.
    fn size(&mut self, max: u64) -> u64 {
        let align = self.alignment();
        round_down(self.rng.gen_range(0..=max), align)
    }

    fn create(&mut self) {
        let free = self.names_where(|s, n| !s.exists(n));
        let Some(file) = self.pick(&free) else { return };
        let sync = self.open_sync();
        let direct = self.side.direct();
        self.emit(Op::Create {
            file: file.clone(),
            sync,
            direct,
        });
        if self.rng.gen_bool(0.6) {
            let size = self.size(self.max).max(8);
            self.emit(Op::Ftruncate {
                file: file.clone(),
                size,
            });
        }
        if self.rng.gen_bool(0.5) {
            self.mmap(file.clone());
        }
        if self.rng.gen_bool(0.3) {
            self.emit(Op::Fsync { file });
            if self.rng.gen_bool(0.5) {
                self.emit(Op::fsync_root());
            }
        }
    }

    fn pwrite(&mut self, file: String) {
        let (off, len) = self.write_range(&file);
        self.emit(Op::Pwrite {
            file: file.clone(),
            off,
            len,
            pattern: None,
        });
        if self.rng.gen_bool(0.3) {
            let op = if self.rng.gen_bool(0.5) {
                Op::Fdatasync { file }
            } else {
                Op::Fsync { file }
            };
            self.emit(op);
        }
    }

    /// A write range for `file`: a quarter of the time at or past EOF (extending the file,
    /// maybe leaving a hole), else anywhere below the profile's largest size.
    fn write_range(&mut self, file: &str) -> (u64, u64) {
        let size = self.sim.size(file).unwrap_or(0);
        if size < self.max && self.rng.gen_bool(0.25) {
            // Past (or at) EOF: extends the file, maybe leaving a hole.
            let start = self.rng.gen_range(size..self.max);
            let start = if self.rng.gen_bool(0.7) {
                round_down(start, 8)
            } else {
                start
            };
            let (_, len) = self.range(self.max - start);
            (start, len)
        } else {
            self.range(self.max)
        }
    }

    fn mmap(&mut self, file: String) {
        let size = self.sim.size(&file).unwrap_or(0);
        let len = if size == 0 || self.rng.gen_bool(0.6) {
            self.max
        } else {
            round_up(size, PAGE_SIZE).min(self.max)
        };
        let sync = self.rng.gen_bool(0.35);
        self.emit(Op::Mmap { file, len, sync });
    }

    fn store(&mut self) {
        let storable = self.storable();
        let Some((file, limit)) = self.pick(&storable) else {
            return;
        };
        let (off, len) = self.range(limit);
        self.emit(Op::MmapStore {
            file: file.clone(),
            off,
            len,
            pattern: None,
        });
        let sync = self.sim.held(&file).map.is_some_and(|m| m.sync);
        if !self.rng.gen_bool(0.45) {
            return;
        }
        // Make it durable right away, the way an application would.
        let op = match self.rng.gen_range(0..4) {
            0 if sync => Op::Flush { file, off, len },
            0 | 1 => Op::Msync { file, off, len },
            2 => Op::Fsync { file },
            _ => Op::Fdatasync { file },
        };
        self.emit(op);
    }

    fn truncate(&mut self, file: String) {
        let size = self.sim.size(&file).unwrap_or(0);
        let new = if size > 0 && self.rng.gen_bool(0.4) {
            self.size(size - 1)
        } else {
            self.size(self.max)
        };
        self.emit(Op::Ftruncate { file, size: new });
    }

    fn fallocate(&mut self, file: String) {
        let size = self.sim.size(&file).unwrap_or(0);
        let mode = match self.rng.gen_range(0..12) {
            0..=3 => FallocMode::PunchHole,
            4..=6 => FallocMode::ZeroRange,
            7 | 8 => FallocMode::Allocate,
            9 => FallocMode::KeepSize,
            10 => return self.shift(file, FallocMode::CollapseRange, size),
            _ => return self.shift(file, FallocMode::InsertRange, size),
        };
        // Punch and zero mostly where data is (dirty mapped pages), else anywhere.
        let inside = matches!(mode, FallocMode::PunchHole | FallocMode::ZeroRange) && size > 0;
        let limit = if inside && self.rng.gen_bool(0.8) {
            size
        } else {
            self.max
        };
        let (off, len) = self.range(limit);
        self.emit(Op::Fallocate {
            file,
            mode,
            off,
            len,
        });
    }

    /// A collapse or insert range of whole blocks that the kernel accepts for a file of
    /// `size` bytes (a collapse ends below EOF, an insert starts below it and keeps the file
    /// within the profile); nothing when the file is too small.
    fn shift(&mut self, file: String, mode: FallocMode, size: u64) {
        let blocks = size / FS_BLOCK;
        let (off_blocks, len_blocks) = match mode {
            // [off, off + len) must end below EOF: at least one block stays after it.
            FallocMode::CollapseRange if size > FS_BLOCK => {
                let last = (size - 1) / FS_BLOCK; // block holding the last byte
                let off = self.rng.gen_range(0..last);
                let len = self.rng.gen_range(1..=(last - off).min(4));
                (off, len)
            }
            FallocMode::InsertRange if size > 0 && size < self.max => {
                let room = (self.max - size) / FS_BLOCK;
                if room == 0 {
                    return;
                }
                let off = self.rng.gen_range(0..=blocks.min((size - 1) / FS_BLOCK));
                (off, self.rng.gen_range(1..=room.min(4)))
            }
            _ => return,
        };
        self.emit(Op::Fallocate {
            file,
            mode,
            off: off_blocks * FS_BLOCK,
            len: len_blocks * FS_BLOCK,
        });
    }

    fn rename(&mut self) {
        let existing = self.names_where(|s, n| s.exists(n));
        let Some(from) = self.pick(&existing) else {
            return;
        };
        let targets: Vec<String> = self.names.iter().filter(|n| **n != from).cloned().collect();
        let Some(to) = self.pick(&targets) else {
            return;
        };
        self.emit(Op::Rename { from, to });
        if self.rng.gen_bool(0.6) {
            self.emit(Op::fsync_root());
        }
    }

    /// Every workload keeps at least one fsync, fdatasync or msync.
    fn ensure_durability_op(&mut self) {
        let has = self.ops.iter().any(|op| {
            matches!(
                op,
                Op::Fsync { .. } | Op::Fdatasync { .. } | Op::Msync { .. }
            )
        });
        if has {
            return;
        }
        if let Some(file) = self.open_files().first().cloned() {
            self.emit(Op::Fsync { file });
            return;
        }
        let existing = self.names_where(|s, n| s.exists(n));
        let file = existing
            .first()
            .cloned()
            .unwrap_or_else(|| self.names[0].clone());
        let reopen = if existing.is_empty() {
            Op::create(file.clone())
        } else {
            Op::open(file.clone())
        };
        self.emit(reopen);
        self.emit(Op::Fsync { file });
    }
}

mod side;

mod namespace;
#[cfg(test)]
mod tests;
