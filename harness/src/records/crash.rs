//! How power is cut: the crash model and the crash points of a run, as configured.

use serde::{Deserialize, Serialize};

/// Crash model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CrashModel {
    /// QMP stop + copy of the pmem file: every store is in the image (eADR-like).
    Snapshot,
    /// TCG plugin trace of stores, flushes and fences: crash states at cache-line
    /// granularity (TCG only).
    Cache,
}

/// Which crash points to take in each run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrashPointConfig {
    /// A crash point right after every sync call (`Op::wants_crash_point_after`): fsync,
    /// fdatasync, msync, fsync_dir, sync, syncfs, flush, pwritev2, and the sync calls that
    /// promise nothing (sync_file_range, msync_async, msync_invalidate).
    pub after_durability_ops: bool,
    /// Extra crash points after seeded random ops.
    pub random_after: usize,
    /// Crash points inside seeded random ops (QMP stop a short time after the op started).
    pub inside: usize,
}

impl Default for CrashPointConfig {
    fn default() -> Self {
        CrashPointConfig {
            after_durability_ops: true,
            random_after: 2,
            inside: 1,
        }
    }
}

/// Cache crash model settings (`crash_model: cache`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheModelConfig {
    /// Cuts drawn (seeded) among the fences and op-done markers that are not taken anyway
    /// (those are: each durability op's return, its last fence, the first fence after it).
    pub sampled_cuts: usize,
    /// Seeded subsets of the in-flight lines per cut, besides worst and best case.
    pub subsets_per_cut: usize,
    /// Most crash states checked per run (worst and best cases of the durability cuts
    /// first).
    pub max_states_per_run: usize,
}

impl Default for CacheModelConfig {
    fn default() -> Self {
        CacheModelConfig {
            sampled_cuts: 2,
            subsets_per_cut: 1,
            max_states_per_run: 24,
        }
    }
}
