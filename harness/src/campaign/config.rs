//! Campaign configuration: the YAML file (`ci/smoke.yaml`), validated on load, with
//! command-line overrides applied on top.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::Filesystem;
use crate::vm::AccelChoice;

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
    /// A crash point right after every fsync / fdatasync / msync / fsync_dir / sync / flush.
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

/// A campaign configuration (every key is documented in the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    /// Guest kernel package (.deb); default: newest in `~/.cache/powercut/kernel/`.
    pub kernel_deb: Option<PathBuf>,
    /// File system under test.
    pub filesystem: Filesystem,
    /// NVDIMM size in MiB.
    pub pmem_mib: u64,
    /// Accelerator.
    pub accel: AccelChoice,
    /// Crash model.
    pub crash_model: CrashModel,
    /// Generator profile (`smoke`, `default`, `deep`).
    pub profile: String,
    /// Seeds: `"1..5"` (end exclusive) or `"1,2,7"`.
    pub seeds: String,
    /// Crash points per run.
    pub crash_points: CrashPointConfig,
    /// Cache crash model settings.
    pub cache: CacheModelConfig,
    /// Mutant to load in workload VMs (`m1`..`m5`), or none for the stock kernel.
    pub mutant: Option<String>,
    /// Workload VMs at once; 0 = fit the machine (cores and memory).
    pub workers: usize,
    /// Checker VMs; 0 = fit the machine.
    pub checkers: usize,
    /// Keep drawing new seeds after the listed ones until this much time has passed
    /// (`8h`, `30m`, `1h30m`); in-flight work then finishes and the report is written.
    pub time_budget: Option<String>,
    /// Regexes on failure titles of known kernel bugs: reported separately, not failing.
    pub suppressions: Vec<String>,
    /// Keep the crash image of at most this many failure directories (disk cap).
    pub keep_failure_images: usize,
    /// Deadline of one workload run, seconds.
    pub run_timeout_secs: u64,
    /// Deadline of one crash-image check, seconds.
    pub check_timeout_secs: u64,
    /// ext4 journal commit interval in workload VMs (long, so a missing fsync commit is
    /// not hidden by the periodic one).
    pub ext4_commit_secs: u32,
    /// Run directory root; each campaign gets a subdirectory.
    pub output: PathBuf,
    /// Free disk space (MiB) the run directory's file system must have before the
    /// campaign starts and before each seed; 0 disables the check.
    pub min_free_mib: u64,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            kernel_deb: None,
            filesystem: Filesystem::Ext4,
            pmem_mib: 256,
            accel: AccelChoice::Auto,
            crash_model: CrashModel::Snapshot,
            profile: "smoke".into(),
            seeds: "1..5".into(),
            crash_points: CrashPointConfig::default(),
            cache: CacheModelConfig::default(),
            mutant: None,
            workers: 0,
            checkers: 0,
            time_budget: None,
            suppressions: Vec::new(),
            keep_failure_images: 20,
            run_timeout_secs: 300,
            check_timeout_secs: 60,
            ext4_commit_secs: 600,
            output: PathBuf::from("runs"),
            min_free_mib: 1024,
        }
    }
}

/// Errors of loading a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Read {
        /// File.
        path: PathBuf,
        /// Error.
        cause: std::io::Error,
    },
    /// YAML syntax or schema error (serde_yaml's message names the field and line).
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Message.
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}: field `{field}`: {message}")]
    Invalid {
        /// File or "command line".
        origin: String,
        /// Field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Parse a seed list: `"A..B"` (B exclusive), `"A..=B"`, or `"1,2,7"`.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let s = s.trim();
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` is not a seed number (use \"1..5\" or \"1,2,7\")"))
    };
    let seeds: Vec<u64> = if let Some((a, b)) = s.split_once("..=") {
        (num(a)?..=num(b)?).collect()
    } else if let Some((a, b)) = s.split_once("..") {
        (num(a)?..num(b)?).collect()
    } else {
        s.split(',').map(num).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(format!("`{s}` names no seeds"));
    }
    if seeds.len() > 1_000_000 {
        return Err(format!("`{s}` names more than a million seeds"));
    }
    Ok(seeds)
}

impl CampaignConfig {
    /// Load and validate a YAML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            cause: e,
        })?;
        let cfg: CampaignConfig = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Check value ranges; `origin` names the file in messages.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |field, message: String| {
            Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                field,
                message,
            })
        };
        if let Err(m) = parse_seeds(&self.seeds) {
            return bad("seeds", m);
        }
        if self.pmem_mib < 16 || !self.pmem_mib.is_multiple_of(2) {
            return bad(
                "pmem_mib",
                format!("{} must be even and at least 16", self.pmem_mib),
            );
        }
        if (self.pmem_mib << 20) < self.filesystem.min_bytes() {
            return bad(
                "pmem_mib",
                format!(
                    "{} needs at least {} MiB",
                    self.filesystem,
                    self.filesystem.min_bytes() >> 20
                ),
            );
        }
        if let Err(e) = self.profile.parse::<workloads::generator::Profile>() {
            return bad("profile", e.to_string());
        }
        if let Some(m) = &self.mutant {
            if !crate::image::mutant::MUTANTS.iter().any(|(n, _)| n == m) {
                return bad("mutant", format!("unknown mutant `{m}` (m1..m5)"));
            }
        }
        if self.workers > 64 || self.checkers > 64 {
            return bad("workers", "at most 64 workers and 64 checkers".into());
        }
        if let Err(e) = self.budget() {
            return bad("time_budget", e);
        }
        if let Err(e) = self.suppression_regexes() {
            return bad("suppressions", e);
        }
        if self.cache.max_states_per_run == 0 {
            return bad("cache", "max_states_per_run must be at least 1".into());
        }
        if self.run_timeout_secs == 0 || self.check_timeout_secs == 0 {
            return bad("run_timeout_secs", "timeouts must be positive".into());
        }
        Ok(())
    }

    /// The time budget, if any.
    pub fn budget(&self) -> Result<Option<std::time::Duration>, String> {
        self.time_budget
            .as_deref()
            .map(super::budget::parse_duration)
            .transpose()
    }

    /// The compiled suppressions.
    pub fn suppression_regexes(&self) -> Result<Vec<regex::Regex>, String> {
        self.suppressions
            .iter()
            .map(|r| regex::Regex::new(r).map_err(|e| format!("bad regex `{r}`: {e}")))
            .collect()
    }

    /// (workload workers, checker VMs): the configured numbers, or for 0 what fits the
    /// machine: each VM wants about one core and 1 GiB (512 MiB RAM + pmem + QEMU).
    pub fn parallelism(&self) -> (usize, usize) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mem_gib = available_memory_gib();
        let vm_slots = cores.min(mem_gib.max(1)).max(2);
        let workers = if self.workers == 0 {
            (vm_slots / 2).max(1)
        } else {
            self.workers
        };
        let checkers = if self.checkers == 0 {
            (vm_slots / 2).max(1)
        } else {
            self.checkers
        };
        (workers, checkers)
    }

    /// The seeds to run.
    pub fn seed_list(&self) -> Vec<u64> {
        parse_seeds(&self.seeds).unwrap_or_default()
    }
}

fn available_memory_gib() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(1, |kb| kb / (1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_ranges_and_lists() {
        assert_eq!(parse_seeds("1..4"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("1..=3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("7, 9"), Ok(vec![7, 9]));
        assert!(parse_seeds("x..3").is_err());
        assert!(parse_seeds("5..5").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "filesystem: ext4\nseedz: 1..3\n").expect("write");
        let err = CampaignConfig::load(&p).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("seedz") && msg.contains("c.yaml"), "{msg}");
    }

    #[test]
    fn wrong_types_name_the_field_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "filesystem: ext4\npmem_mib: lots\n").expect("write");
        let msg = CampaignConfig::load(&p).expect_err("bad type").to_string();
        assert!(msg.contains("pmem_mib") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn bad_budgets_and_suppressions_name_the_field() {
        let cfg = CampaignConfig {
            time_budget: Some("8 hours".into()),
            ..CampaignConfig::default()
        };
        assert!(cfg
            .validate("n.yaml")
            .expect_err("budget")
            .to_string()
            .contains("`time_budget`"));
        let cfg = CampaignConfig {
            suppressions: vec!["(".into()],
            ..CampaignConfig::default()
        };
        assert!(cfg
            .validate("n.yaml")
            .expect_err("regex")
            .to_string()
            .contains("`suppressions`"));
    }

    #[test]
    fn automatic_parallelism_is_at_least_one_each() {
        let (w, c) = CampaignConfig::default().parallelism();
        assert!(w >= 1 && c >= 1);
    }

    #[test]
    fn cache_model_settings_parse_and_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "crash_model: cache\ncache:\n  max_states_per_run: 5\n").expect("write");
        let cfg = CampaignConfig::load(&p).expect("loads");
        assert_eq!(cfg.crash_model, CrashModel::Cache);
        assert_eq!(cfg.cache.max_states_per_run, 5);
        assert_eq!(
            cfg.cache.sampled_cuts,
            CacheModelConfig::default().sampled_cuts
        );
        std::fs::write(&p, "cache:\n  max_states_per_run: 0\n").expect("write");
        let msg = CampaignConfig::load(&p).expect_err("zero").to_string();
        assert!(msg.contains("`cache`"), "{msg}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let cfg = CampaignConfig {
            mutant: Some("m9".into()),
            ..CampaignConfig::default()
        };
        let msg = cfg.validate("x.yaml").expect_err("m9").to_string();
        assert!(msg.contains("`mutant`") && msg.contains("m9"), "{msg}");
    }
}
