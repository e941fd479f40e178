//! The durability oracle: from a workload, the outcomes of its ops so far and a crash
//! point, what every file it names may contain after the crash; and the exact live state
//! when no crash happened. Pure: no I/O.
//!
//! Rules (DESIGN.md, "Oracle"):
//! - After `fsync`/`fdatasync` returns, every byte of the file written (by `pwrite` or by
//!   stores through a mapping) before the call started, and its size, are durable.
//! - After `msync(MS_SYNC)` of `[off, off+len)` the words wholly inside
//!   `[page_floor(off), off+len)` and below EOF are durable, and the size covers them.
//! - After a user flush on a MAP_SYNC mapping, the words of the flushed cache lines that a
//!   MAP_SYNC store wrote last are durable. A flush on any other mapping promises nothing.
//! - `sync` makes everything durable; `fsync_dir` of a directory makes its entries durable;
//!   [`FsRules`] says whether fsync/fdatasync of a newly created file also makes its name
//!   durable (ext4, xfs) or not (generic POSIX), and whether an fsync commits every
//!   namespace op up to the last one that logged the synced inode (`journal_prefix`: ext4,
//!   xfs; see `model::namespace` for subdirectories, links, symlinks and `renameat2`).
//! - Until then, each aligned 8-byte word may hold any version written to it since its last
//!   durable point (whole-word snapshots after each write, truncate, punch or zeroing), and
//!   a file may have any size set since its size was last durable.
//! - `fallocate` collapse and insert range move the words from their offset on. Until an
//!   fsync, fdatasync or sync of the file the layout may be the old one, the new one or a
//!   partly shifted one with holes (ext4 and xfs shift one extent per transaction), so each
//!   moved word may also hold its old versions, zeros, or the versions of the word that
//!   moved there; data written after the shift may show at its block's old offset; msync
//!   and user flushes promise nothing about moved words (see `model::Inode::write`).
//!
//! Where the semantics are uncertain the oracle is permissive (a false alarm is the worst
//! failure of this tool): names and word histories are judged independently, a name may
//! show any inode it referred to since its last durable point, ops with unknown outcomes
//! keep no promises and taint what they touch, and an interrupted op may have taken any
//! part of its effect. Each such choice is commented where it is made.

mod check;
mod expect;
mod meta;
mod model;
mod names;
mod verdict;
mod words;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::op::{OpOutcome, Workload};
use model::{Effect, Model};

pub use check::{AllowedVersion, CheckResult, Finding, FINDING_BYTES, MAX_FINDINGS_PER_FILE};
pub use expect::{Existence, Expectation, FileExpectation, FileState, Observed};
pub use meta::{AllowedXattr, MetaMismatch, MetaState, XattrVal};
pub use verdict::{UnknownVerdict, Verdict};
pub use words::{SizeRange, SizeSet, WordSpan, WordSrc, WordVersion, WORD};

/// Where the crash happened, relative to the ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// Ops `0..=k` completed; nothing later started.
    AfterOp(usize),
    /// Ops `0..k` completed; op `k` started and may have taken effect in part, or not.
    InsideOp(usize),
}

/// Per-file-system durability rules that go beyond POSIX, named so that results say which
/// rules a verdict was reached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRules {
    /// Rule set name (`ext4`, `xfs`, `generic`).
    pub name: String,
    /// fsync of a newly created file makes its directory entry durable (ext4 and xfs: the
    /// journal commit that fsync forces carries the create).
    pub fsync_makes_new_name_durable: bool,
    /// Same for fdatasync (ext4 and xfs: a new inode is dirty for datasync too).
    pub fdatasync_makes_new_name_durable: bool,
    /// msync(MS_SYNC) makes the size cover the synced range (POSIX synchronized I/O data
    /// integrity: the data must be retrievable).
    pub msync_makes_size_durable: bool,
    /// Namespace ops are journalled in order: an fsync of a file or directory makes every
    /// namespace op up to the last one that changed that inode durable (ext4 without fast
    /// commits, xfs; see `oracle::model::namespace`).
    #[serde(default)]
    pub journal_prefix: bool,
}

impl FsRules {
    /// ext4 (data=ordered journal).
    pub fn ext4() -> FsRules {
        FsRules {
            name: "ext4".into(),
            fsync_makes_new_name_durable: true,
            fdatasync_makes_new_name_durable: true,
            msync_makes_size_durable: true,
            journal_prefix: true,
        }
    }

    /// xfs.
    pub fn xfs() -> FsRules {
        FsRules {
            name: "xfs".into(),
            ..FsRules::ext4()
        }
    }

    /// POSIX only: a new name is durable after fsync of its directory.
    pub fn generic() -> FsRules {
        FsRules {
            name: "generic".into(),
            fsync_makes_new_name_durable: false,
            fdatasync_makes_new_name_durable: false,
            msync_makes_size_durable: true,
            journal_prefix: false,
        }
    }

    /// The rules for file system `fs` (`ext4`, `xfs`); `generic` for any other.
    pub fn for_fs(fs: &str) -> FsRules {
        match fs {
            "ext4" => FsRules::ext4(),
            "xfs" => FsRules::xfs(),
            _ => FsRules::generic(),
        }
    }
}

/// Every file name `workload` mentions, in order.
pub fn file_names(workload: &Workload) -> BTreeSet<&str> {
    workload.ops.iter().flat_map(|op| op.files()).collect()
}

/// What may be on disk after a crash at `crash`, given the outcomes known so far
/// (`outcomes[k]` for op `k`; `None` or missing when unknown).
pub fn expectation(
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
    crash: CrashPoint,
    rules: &FsRules,
) -> Expectation {
    let mut model = Model::new(workload.seed, rules, file_names(workload).into_iter());
    let n = workload.ops.len();
    let (done, in_flight) = match crash {
        CrashPoint::AfterOp(k) => (k.saturating_add(1).min(n), None),
        CrashPoint::InsideOp(k) if k < n => (k, Some(k)),
        CrashPoint::InsideOp(_) => (n, None),
    };
    for (k, op) in workload.ops.iter().enumerate().take(done) {
        let effect = match outcomes.get(k).copied().flatten() {
            Some(o) => Effect::Done(o),
            // Permissive: an op with an unknown outcome is assumed to have written its
            // whole range, keeps no promise, and taints its files (see model::Effect).
            None => Effect::Unknown,
        };
        model.apply(k, op, effect);
    }
    if let Some(k) = in_flight {
        match outcomes.get(k).copied().flatten() {
            // It is known to have failed: it changed nothing.
            Some(o) if !o.succeeded() => {}
            _ => model.apply(k, &workload.ops[k], Effect::InFlight),
        }
    }
    let crash_k = match crash {
        CrashPoint::AfterOp(k) | CrashPoint::InsideOp(k) => k,
    };
    Expectation {
        seed: workload.seed,
        crash,
        crash_op: workload
            .ops
            .get(crash_k)
            .map_or("none", |op| op.kind())
            .to_string(),
        rules: rules.name.clone(),
        files: files_of(&model, workload.seed),
    }
}

fn files_of(model: &Model, seed: u64) -> BTreeMap<String, FileExpectation> {
    let mut files = BTreeMap::new();
    for (name, n) in &model.names {
        let candidates = n.candidates();
        let existence = if candidates.iter().all(Option::is_none) {
            Existence::MustNotExist
        } else if candidates.iter().all(Option::is_some) {
            Existence::MustExist
        } else {
            Existence::Either
        };
        let states = candidates
            .iter()
            .flatten()
            .map(|&i| {
                let ino = &model.inodes[i];
                FileState {
                    seed,
                    inode: i,
                    current: n.current() == Some(i),
                    sizes: ino.sizes.clone(),
                    words: ino.words.spans(),
                    meta: if ino.kind == crate::namespace::NodeKind::File {
                        ino.meta.state()
                    } else {
                        MetaState::default()
                    },
                    kind: ino.kind,
                    target: ino.target.clone(),
                }
            })
            .collect();
        files.insert(
            name.clone(),
            FileExpectation {
                existence,
                states,
                durable_by: n.durable_by,
            },
        );
    }
    // Permissive: a name can only be demanded where every directory above it is.
    let unsure: Vec<String> = files
        .iter()
        .filter(|(name, f)| {
            f.existence == Existence::MustExist
                && crate::namespace::ancestors(name).any(|a| {
                    files
                        .get(a)
                        .is_none_or(|d| d.existence != Existence::MustExist)
                })
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in unsure {
        if let Some(f) = files.get_mut(&name) {
            f.existence = Existence::Either;
        }
    }
    files
}

/// The exact content of every file that exists after all ops ran (no crash), for comparing
/// the live file system. Ops with a missing outcome are taken as having succeeded in full.
/// Mmap stores past EOF (which `validate` rejects) are taken as lost.
pub fn live_state(
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
) -> BTreeMap<String, Vec<u8>> {
    let model = live_model(workload, outcomes);
    model
        .names
        .iter()
        .filter_map(|(name, n)| {
            let ino = &model.inodes[n.current()?];
            if ino.kind != crate::namespace::NodeKind::File {
                return None;
            }
            Some((name.clone(), ino.words.content(workload.seed, ino.size)))
        })
        .collect()
}

/// The metadata of every regular file that exists after all ops ran (no crash): only the current
/// values are allowed (times the kernel set: any). As [`live_state`] for outcomes.
pub fn live_meta(
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
) -> BTreeMap<String, MetaState> {
    let model = live_model(workload, outcomes);
    model
        .names
        .iter()
        .filter_map(|(name, n)| {
            let ino = &model.inodes[n.current()?];
            (ino.kind == crate::namespace::NodeKind::File)
                .then(|| (name.clone(), ino.meta.live_state()))
        })
        .collect()
}

/// The replay of every op with its outcome (or full success when it is missing).
fn live_model(workload: &Workload, outcomes: &[Option<OpOutcome>]) -> Model {
    let mut model = Model::new(
        workload.seed,
        &FsRules::generic(),
        file_names(workload).into_iter(),
    );
    for (k, op) in workload.ops.iter().enumerate() {
        let outcome = outcomes
            .get(k)
            .copied()
            .flatten()
            .unwrap_or_else(|| assumed_success(op));
        model.apply(k, op, Effect::Done(outcome));
    }
    model
}

/// What every name that exists after all ops ran (no crash) is, with a symlink's text:
/// the namespace part of [`live_state`] (which holds regular files only).
pub fn live_nodes(
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
) -> BTreeMap<String, (crate::namespace::NodeKind, Option<String>)> {
    let mut model = Model::new(
        workload.seed,
        &FsRules::generic(),
        file_names(workload).into_iter(),
    );
    for (k, op) in workload.ops.iter().enumerate() {
        let outcome = outcomes
            .get(k)
            .copied()
            .flatten()
            .unwrap_or_else(|| assumed_success(op));
        model.apply(k, op, Effect::Done(outcome));
    }
    model
        .names
        .iter()
        .filter_map(|(name, n)| {
            let ino = &model.inodes[n.current()?];
            Some((name.clone(), (ino.kind, ino.target.clone())))
        })
        .collect()
}

/// The outcome of `op` had it fully succeeded.
fn assumed_success(op: &crate::Op) -> OpOutcome {
    match op {
        crate::Op::Pwrite { len, .. }
        | crate::Op::Pwritev2 { len, .. }
        | crate::Op::UringWrite { len, .. } => {
            OpOutcome::ok(i64::try_from(*len).unwrap_or(i64::MAX))
        }
        _ => OpOutcome::ok(0),
    }
}
