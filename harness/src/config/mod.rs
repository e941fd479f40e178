//! Campaign configuration: the YAML file (`ci/smoke.yaml`), validated on load, with
//! command-line overrides applied on top.

pub mod duration;
pub mod expect;
pub mod inputs;
pub mod kernels;
pub mod limits;
pub mod overrides;
pub mod shard;
pub mod vm_count;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workloads::spec::yaml_limits::{self, YamlLimitError};

use crate::image::user_modules::ModuleSpec;
use crate::image::{Filesystem, KernelSpec, Wants};
use crate::vm::AccelChoice;
use limits::*;
pub use vm_count::VmCount;

pub use crate::records::{CacheModelConfig, CrashModel, CrashPointConfig};

/// A campaign configuration (every key is documented in the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    /// The kernel under test (a `--kernel` spec); default: the newest package in
    /// `~/.cache/powercut/kernel/`. `kernel_deb` is the old name.
    #[serde(alias = "kernel_deb")]
    pub kernel: Option<KernelSpec>,
    /// A kernel matrix: every item runs on every kernel (each a `--kernel` spec, named by
    /// its text in the journal and the reports). Empty: the one `kernel`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<String>,
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
    /// Seeds: `"1..5"` (end exclusive) or `"1,2,7"`; `""` for none (then `workloads` or
    /// `time_budget` must say what to run).
    pub seeds: String,
    /// Workload files to crash-test besides the seeds: a file, or a directory of `*.yaml`
    /// (paths relative to the current directory). A new campaign copies them into its run
    /// directory; `--resume` uses the copies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<PathBuf>,
    /// Crash points per run.
    pub crash_points: CrashPointConfig,
    /// Cache crash model settings.
    pub cache: CacheModelConfig,
    /// Mutant to load in workload VMs (`m1`..`m9`), or none for the stock kernel.
    pub mutant: Option<String>,
    /// The user's own modules (`.ko` files or kbuild source directories, with `insmod`
    /// arguments), loaded in every workload VM after the mount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleSpec>,
    /// Workload VMs at once; 0 = fit the machine (cores and memory), `auto` = from the
    /// measured balance of runs and checks.
    pub workers: VmCount,
    /// Checker VMs; 0 = fit the machine, `auto` = from the measured balance.
    pub checkers: VmCount,
    /// Keep drawing new seeds after the listed ones until this much time has passed
    /// (`8h`, `30m`, `1h30m`); in-flight work then finishes and the report is written.
    pub time_budget: Option<String>,
    /// Run only shard K of N of the campaign's items (`--shard K/N`; see
    /// [`self::shard`]); `None`: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<self::shard::Shard>,
    /// Regexes on failure titles of known kernel bugs: reported separately, not failing.
    pub suppressions: Vec<String>,
    /// Expected outcomes per kernel ([`self::expect`]): the first rule covering a kernel's
    /// release says which (item, bucket) failures must come there; a missing one makes the
    /// campaign exit [`self::expect::UNMET`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<self::expect::ExpectRule>,
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
    /// Record kernel coverage of every run (TCG only; `docs/coverage.md`).
    pub coverage: bool,
    /// Coverage-guided generation (`--guided`): after the listed seeds, derive workloads
    /// from a corpus of those that reached new blocks of the target subsystems.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub guided: bool,
    /// The corpus directory of a guided campaign (default: `<run dir>/corpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus: Option<PathBuf>,
    /// Most items a guided campaign draws after the listed seeds (derived workloads, and
    /// fresh seeds); with `time_budget`, whichever ends first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guided_items: Option<u64>,
    /// List the functions `git diff REV` of the kernel's source tree changes, and how far
    /// the campaign reached each (`--coverage-diff REV`; needs `coverage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_diff: Option<String>,
    /// The kernel's source tree: a git tree for `coverage_diff`, and the source files
    /// coverage is grouped by. Default: the `--kernel` build tree, if the kernel is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_tree: Option<PathBuf>,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            kernel: None,
            kernels: Vec::new(),
            filesystem: Filesystem::Ext4,
            pmem_mib: 256,
            accel: AccelChoice::Auto,
            crash_model: CrashModel::Snapshot,
            profile: "smoke".into(),
            seeds: "1..5".into(),
            workloads: Vec::new(),
            crash_points: CrashPointConfig::default(),
            cache: CacheModelConfig::default(),
            mutant: None,
            modules: Vec::new(),
            workers: VmCount::Fit,
            checkers: VmCount::Fit,
            time_budget: None,
            shard: None,
            suppressions: Vec::new(),
            expect: Vec::new(),
            keep_failure_images: 20,
            run_timeout_secs: 300,
            check_timeout_secs: 60,
            ext4_commit_secs: 600,
            output: PathBuf::from("runs"),
            min_free_mib: 1024,
            coverage: true,
            guided: false,
            corpus: None,
            guided_items: None,
            coverage_diff: None,
            source_tree: None,
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
    /// The file is too large, not UTF-8, or nested too deeply to be parsed.
    #[error("{path}: {limit}")]
    Limit {
        /// File.
        path: PathBuf,
        /// Which bound it passed.
        limit: YamlLimitError,
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

/// Parse a seed list: `"A..B"` (B exclusive), `"A..=B"`, or `"1,2,7"`, naming at most
/// [`MAX_SEEDS`] seeds. The seeds are counted before any is generated.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let s = s.trim();
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` is not a seed number (use \"1..5\" or \"1,2,7\")"))
    };
    // u128 holds every count, up to 2^64 for `0..=u64::MAX`.
    let check_count = |count: u128| {
        if count == 0 {
            Err(format!("`{s}` names no seeds"))
        } else if count > u128::from(MAX_SEEDS) {
            Err(format!(
                "`{s}` names {count} seeds; at most {MAX_SEEDS} (split the range, or use time_budget)"
            ))
        } else {
            Ok(())
        }
    };
    if let Some((a, b)) = s.split_once("..=") {
        let (a, b) = (num(a)?, num(b)?);
        check_count((u128::from(b) + 1).saturating_sub(u128::from(a)))?;
        Ok((a..=b).collect())
    } else if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        check_count(u128::from(b).saturating_sub(u128::from(a)))?;
        Ok((a..b).collect())
    } else {
        check_count(s.split(',').count() as u128)?;
        s.split(',').map(num).collect()
    }
}

/// `Err(message)` unless `min <= value <= max`.
fn in_range(value: u64, min: u64, max: u64, unit: &str) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{value} is out of range: {min} to {max}{unit}"))
    }
}

/// A count as u64 for [`in_range`] (saturating: usize is never wider on our targets).
/// VMs this machine runs at once: one per core and free GiB, at least 2.
pub fn machine_vm_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cores.min(available_memory_gib().max(1)).max(2)
}

/// VMs this machine's free memory holds (about 1 GiB each: 512 MiB RAM, pmem, QEMU), at
/// least 2: the bound of `auto`, which may run more VMs than cores since none of them
/// keeps its core busy all the time.
pub fn machine_memory_vms() -> usize {
    available_memory_gib().max(2)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl CampaignConfig {
    /// The kernels of a matrix, parsed (empty without `kernels:`): at most
    /// [`self::kernels::MAX_KERNELS`], each a valid spec, no name twice, and not with
    /// `kernel`.
    pub fn kernel_matrix(&self) -> Result<Vec<(String, KernelSpec)>, String> {
        self::kernels::parse_kernels(&self.kernels, self.kernel.is_some())
    }

    /// What this campaign needs from its kernel's config: its file system, and kprobes
    /// when a mutant is loaded.
    pub fn kernel_wants(&self) -> Wants {
        Wants {
            filesystems: vec![self.filesystem],
            mutants: self.mutant.is_some(),
        }
    }

    /// Load and validate a YAML config file (at most [`MAX_CONFIG_BYTES`], nesting checked
    /// before parsing).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = yaml_limits::read_yaml(path, MAX_CONFIG_BYTES).map_err(|e| match e {
            YamlLimitError::Io(cause) => ConfigError::Read {
                path: path.to_owned(),
                cause,
            },
            limit => ConfigError::Limit {
                path: path.to_owned(),
                limit,
            },
        })?;
        let cfg: CampaignConfig = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Check every value against its bounds ([`limits`]); `origin` names the file (or "command
    /// line") in messages, which also name the field.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let at = |field: &'static str| {
            move |message: String| ConfigError::Invalid {
                origin: origin.to_owned(),
                field,
                message,
            }
        };
        if self.seeds.trim().is_empty() {
            let guided_end = self.guided && self.guided_items.is_some();
            if self.workloads.is_empty() && self.time_budget.is_none() && !guided_end {
                return Err(at("seeds")(
                    "no seeds, no workloads and no time_budget: nothing to run".into(),
                ));
            }
        } else {
            parse_seeds(&self.seeds).map_err(at("seeds"))?;
        }
        if self.workloads.len() > self::inputs::MAX_WORKLOAD_INPUTS {
            return Err(at("workloads")(format!(
                "{} paths; at most {}",
                self.workloads.len(),
                self::inputs::MAX_WORKLOAD_INPUTS
            )));
        }
        self.validate_pmem().map_err(at("pmem_mib"))?;
        if let Err(e) = self.profile.parse::<workloads::generator::Profile>() {
            return Err(at("profile")(e.to_string()));
        }
        if let Some(m) = &self.mutant {
            crate::image::mutant::validate_mutant(m).map_err(|e| at("mutant")(e.to_string()))?;
            if m == crate::image::mutant::STOCK {
                return Err(at("mutant")(
                    "`none` is not a mutant: leave `mutant` out (null) for the stock kernel".into(),
                ));
            }
            crate::image::mutant::check_mutant_fits(m, self.filesystem)
                .map_err(|e| at("mutant")(e.to_string()))?;
        }
        crate::image::user_modules::validate_specs(&self.modules)
            .map_err(|e| at("modules")(e.to_string()))?;
        self.kernel_matrix().map_err(at("kernels"))?;
        let vms = count(MAX_VMS);
        for (key, n) in [("workers", self.workers), ("checkers", self.checkers)] {
            if let Some(n) = n.exactly() {
                in_range(count(n), 1, vms, " VMs").map_err(at(key))?;
            }
        }
        self.budget().map_err(at("time_budget"))?;
        self.suppression_regexes().map_err(at("suppressions"))?;
        if let Some(rev) = &self.coverage_diff {
            crate::coverage::git_diff::check_rev(rev)
                .map_err(|w| at("coverage_diff")(format!("needs {w}")))?;
            if !self.coverage {
                return Err(at("coverage_diff")(
                    "needs `coverage: true` (it reads the campaign's coverage)".into(),
                ));
            }
        }
        self::expect::validate(&self.expect).map_err(at("expect"))?;
        let samples = count(MAX_CACHE_SAMPLES);
        in_range(count(self.cache.sampled_cuts), 0, samples, "")
            .map_err(at("cache.sampled_cuts"))?;
        in_range(count(self.cache.subsets_per_cut), 0, samples, "")
            .map_err(at("cache.subsets_per_cut"))?;
        let states = count(MAX_STATES_PER_RUN);
        in_range(count(self.cache.max_states_per_run), 1, states, "")
            .map_err(at("cache.max_states_per_run"))?;
        let points = count(MAX_CRASH_POINTS);
        in_range(count(self.crash_points.random_after), 0, points, "")
            .map_err(at("crash_points.random_after"))?;
        in_range(count(self.crash_points.inside), 0, points, "")
            .map_err(at("crash_points.inside"))?;
        in_range(
            count(self.keep_failure_images),
            0,
            count(MAX_KEEP_FAILURE_IMAGES),
            "",
        )
        .map_err(at("keep_failure_images"))?;
        in_range(self.run_timeout_secs, 1, MAX_RUN_TIMEOUT_SECS, " seconds")
            .map_err(at("run_timeout_secs"))?;
        in_range(
            self.check_timeout_secs,
            1,
            MAX_CHECK_TIMEOUT_SECS,
            " seconds",
        )
        .map_err(at("check_timeout_secs"))?;
        in_range(
            u64::from(self.ext4_commit_secs),
            1,
            u64::from(MAX_EXT4_COMMIT_SECS),
            " seconds",
        )
        .map_err(at("ext4_commit_secs"))?;
        in_range(self.min_free_mib, 0, MAX_MIN_FREE_MIB, " MiB").map_err(at("min_free_mib"))?;
        self.validate_guided().map_err(at("guided"))?;
        Ok(())
    }

    /// A guided campaign needs coverage (so TCG), one kernel, and an end.
    fn validate_guided(&self) -> Result<(), String> {
        if !self.guided {
            if self.corpus.is_some() || self.guided_items.is_some() {
                return Err("`corpus` and `guided_items` need `guided: true` (--guided)".into());
            }
            return Ok(());
        }
        if !self.coverage {
            return Err(
                "guided generation is steered by kernel coverage: it needs `coverage: true`".into(),
            );
        }
        if self.accel == AccelChoice::Kvm {
            return Err("guided generation needs kernel coverage, which needs TCG (the QEMU plugin): use --accel tcg or auto".into());
        }
        if !self.kernels.is_empty() {
            return Err("guided generation runs on one kernel: a kernel matrix (`kernels:`) is not supported".into());
        }
        if let Some(n) = self.guided_items {
            in_range(n, 1, MAX_GUIDED_ITEMS, " items")?;
        } else if self.time_budget.is_none() {
            return Err("a guided campaign needs an end: --time-budget D or --guided-items N (guided_items)".into());
        }
        Ok(())
    }

    fn validate_pmem(&self) -> Result<(), String> {
        in_range(self.pmem_mib, MIN_PMEM_MIB, MAX_PMEM_MIB, " MiB")?;
        if !self.pmem_mib.is_multiple_of(2) {
            return Err(format!("{} must be even", self.pmem_mib));
        }
        let min = self.filesystem.min_bytes();
        if self.pmem_bytes().is_none_or(|b| b < min) {
            return Err(format!(
                "{} needs at least {} MiB",
                self.filesystem,
                min >> 20
            ));
        }
        Ok(())
    }

    /// The NVDIMM size in bytes (`pmem_mib` MiB); `None` if that does not fit in a u64
    /// (never after [`validate`](Self::validate)).
    pub fn pmem_bytes(&self) -> Option<u64> {
        self.pmem_mib.checked_mul(1 << 20)
    }

    /// `min_free_mib` in bytes; `None` if that does not fit in a u64 (never after
    /// [`validate`](Self::validate)).
    pub fn min_free_bytes(&self) -> Option<u64> {
        self.min_free_mib.checked_mul(1 << 20)
    }

    /// Deadline of one workload run (`run_timeout_secs`).
    pub fn run_timeout(&self) -> Duration {
        Duration::from_secs(self.run_timeout_secs)
    }

    /// Deadline of every guest call of one crash-image check (`check_timeout_secs`).
    pub fn check_timeout(&self) -> Duration {
        Duration::from_secs(self.check_timeout_secs)
    }

    /// The time budget, if any.
    pub fn budget(&self) -> Result<Option<std::time::Duration>, String> {
        self.time_budget
            .as_deref()
            .map(self::duration::parse_duration)
            .transpose()
    }

    /// The compiled suppressions.
    pub fn suppression_regexes(&self) -> Result<Vec<regex::Regex>, String> {
        self.suppressions
            .iter()
            .map(|r| regex::Regex::new(r).map_err(|e| format!("bad regex `{r}`: {e}")))
            .collect()
    }

    /// (workload workers, checker VMs) to start with: the configured numbers, for 0 what
    /// fits the machine (each VM wants about one core and 1 GiB: 512 MiB RAM + pmem +
    /// QEMU), for `auto` one (more may follow: [`CampaignConfig::auto_balance`]).
    pub fn parallelism(&self) -> (usize, usize) {
        let half = (machine_vm_slots() / 2).max(1);
        let first = |c: VmCount| match c {
            VmCount::Fit => half,
            VmCount::Auto => 1,
            VmCount::Exactly(n) => n,
        };
        (first(self.workers), first(self.checkers))
    }

    /// Does either count say `auto` (the campaign adds VMs once it has measured runs and
    /// checks)?
    pub fn auto_balance(&self) -> bool {
        self.workers == VmCount::Auto || self.checkers == VmCount::Auto
    }

    /// The seeds to run (none for `seeds: ""`).
    pub fn seed_list(&self) -> Vec<u64> {
        if self.seeds.trim().is_empty() {
            return Vec::new();
        }
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
mod guided_tests;
#[cfg(test)]
mod tests;
