//! Helpers shared by the hand-computed oracle cases: workload and op builders, all-success
//! outcomes, and accessors for allowed bytes.

use std::collections::{BTreeMap, BTreeSet};

use workloads::oracle::{expectation, CrashPoint, Expectation, FsRules, Observed};
use workloads::{FallocMode, Op, OpOutcome, Pattern, RwfFlag, Workload};

pub const SEED: u64 = 42;

pub fn wl(ops: Vec<Op>) -> Workload {
    Workload {
        name: "case".into(),
        seed: SEED,
        profile: None,
        ops,
    }
}

/// Every op succeeded (pwrite wrote its whole length).
pub fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
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

pub fn after(w: &Workload, k: usize, rules: &FsRules) -> Expectation {
    expectation(w, &all_ok(w), CrashPoint::AfterOp(k), rules)
}

/// Pattern bytes op `k` writes at `[off, off + len)`.
pub fn pat(k: usize, off: u64, len: usize) -> Vec<u8> {
    Pattern::new(SEED, k as u32 + 1).bytes(off, len)
}

pub fn one(name: &str, data: Vec<u8>) -> BTreeMap<String, Observed> {
    BTreeMap::from([(name.to_string(), Observed::present(data))])
}

pub fn bytes_at(e: &Expectation, file: &str, off: u64) -> BTreeSet<u8> {
    let states = &e.files[file].states;
    states.iter().flat_map(|s| s.allowed_bytes(off)).collect()
}

pub fn set(v: &[u8]) -> BTreeSet<u8> {
    v.iter().copied().collect()
}

pub fn create(f: &str) -> Op {
    Op::create(f)
}
pub fn pwrite(f: &str, off: u64, len: u64) -> Op {
    Op::Pwrite {
        file: f.into(),
        off,
        len,
        pattern: None,
    }
}
pub fn store(f: &str, off: u64, len: u64) -> Op {
    Op::MmapStore {
        file: f.into(),
        off,
        len,
        pattern: None,
    }
}
pub fn mmap(f: &str, len: u64, sync: bool) -> Op {
    Op::Mmap {
        file: f.into(),
        len,
        sync,
    }
}
pub fn fsync(f: &str) -> Op {
    Op::Fsync { file: f.into() }
}
pub fn truncate(f: &str, size: u64) -> Op {
    Op::Ftruncate {
        file: f.into(),
        size,
    }
}
pub fn falloc(f: &str, mode: FallocMode, off: u64, len: u64) -> Op {
    Op::Fallocate {
        file: f.into(),
        mode,
        off,
        len,
    }
}
pub fn pwritev2(f: &str, off: u64, len: u64, flags: RwfFlag) -> Op {
    Op::Pwritev2 {
        file: f.into(),
        off,
        len,
        pattern: None,
        flags,
    }
}
