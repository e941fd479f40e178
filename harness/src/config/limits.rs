//! The bounds of every number in a campaign config, checked by
//! [`CampaignConfig::validate`](super::CampaignConfig::validate) and listed in the README's
//! configuration reference.

pub use super::duration::MAX_TIME_BUDGET;

/// Largest config file, in bytes (checked before it is read).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most seeds a seed list may name (counted before any is generated).
pub const MAX_SEEDS: u64 = 1_000_000;
/// Smallest `pmem_mib` (xfs needs more: [`crate::image::Filesystem::min_bytes`]).
pub const MIN_PMEM_MIB: u64 = 16;
/// Largest `pmem_mib` (16 GiB; every workload and checker VM has a pmem file this big).
pub const MAX_PMEM_MIB: u64 = 16_384;
/// Largest `run_timeout_secs` (a day).
pub const MAX_RUN_TIMEOUT_SECS: u64 = 86_400;
/// Largest `check_timeout_secs` (an hour).
pub const MAX_CHECK_TIMEOUT_SECS: u64 = 3_600;
/// Largest `ext4_commit_secs` (a day).
pub const MAX_EXT4_COMMIT_SECS: u32 = 86_400;
/// Largest `keep_failure_images`.
pub const MAX_KEEP_FAILURE_IMAGES: usize = 10_000;
/// Largest `workers` and `checkers` (VMs of each kind at once).
pub const MAX_VMS: usize = 64;
/// Largest `cache.sampled_cuts` and `cache.subsets_per_cut`.
pub const MAX_CACHE_SAMPLES: usize = 1_000;
/// Largest `cache.max_states_per_run`.
pub const MAX_STATES_PER_RUN: usize = 10_000;
/// Largest `crash_points.random_after` and `crash_points.inside`.
pub const MAX_CRASH_POINTS: usize = 10_000;
/// Largest `min_free_mib` (1 TiB).
pub const MAX_MIN_FREE_MIB: u64 = 1_048_576;
/// Largest `guided_items` (`--guided-items`).
pub const MAX_GUIDED_ITEMS: u64 = 1_000_000;
