//! Command-line overrides of a campaign config: applied on top of the file (or of a resumed
//! run directory's own `config.yaml`), then the whole config validated again.

use std::path::PathBuf;

use super::shard::Shard;
use super::{CampaignConfig, ConfigError};
use crate::image::user_modules::ModuleSpec;
use crate::image::{Filesystem, KernelSpec};
use crate::records::CrashModel;
use crate::vm::AccelChoice;

/// The flags of `powercut campaign` that replace config keys, parsed.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--seeds`.
    pub seeds: Option<String>,
    /// `--workload` (without `--seeds`, only the workloads run).
    pub workloads: Vec<PathBuf>,
    /// `--mutant` (`Some(None)`: the stock kernel).
    pub mutant: Option<Option<String>>,
    /// `--module`, added to `modules:`.
    pub modules: Vec<ModuleSpec>,
    /// `--crash-model`.
    pub crash_model: Option<CrashModel>,
    /// `--filesystem`.
    pub filesystem: Option<Filesystem>,
    /// `--pmem-mib`.
    pub pmem_mib: Option<u64>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--workers`.
    pub workers: Option<super::VmCount>,
    /// `--checkers`.
    pub checkers: Option<super::VmCount>,
    /// `--time-budget`.
    pub time_budget: Option<String>,
    /// `--accel`.
    pub accel: Option<AccelChoice>,
    /// `--shard`.
    pub shard: Option<Shard>,
    /// `--kernel`.
    pub kernel: Option<KernelSpec>,
    /// `--guided`.
    pub guided: bool,
    /// `--corpus`.
    pub corpus: Option<PathBuf>,
    /// `--guided-items`.
    pub guided_items: Option<u64>,
    /// `--coverage-diff`.
    pub coverage_diff: Option<String>,
    /// `--source-tree`.
    pub source_tree: Option<PathBuf>,
}

impl Overrides {
    /// Did the flags narrow the items (`--workload` or `--seeds`)?
    pub fn narrows_items(&self) -> bool {
        !self.workloads.is_empty() || self.seeds.is_some()
    }

    /// `cfg` with these overrides, validated (errors say "command line").
    pub fn apply(&self, mut cfg: CampaignConfig) -> Result<CampaignConfig, ConfigError> {
        if !self.workloads.is_empty() {
            cfg.workloads = self.workloads.clone();
            if self.seeds.is_none() {
                cfg.seeds = String::new();
            }
        }
        if let Some(s) = &self.seeds {
            cfg.seeds = s.clone();
        }
        if let Some(m) = &self.mutant {
            cfg.mutant = m.clone();
        }
        cfg.modules.extend(self.modules.iter().cloned());
        if let Some(c) = self.crash_model {
            cfg.crash_model = c;
        }
        if let Some(f) = self.filesystem {
            cfg.filesystem = f;
        }
        if let Some(m) = self.pmem_mib {
            cfg.pmem_mib = m;
        }
        if let Some(p) = &self.profile {
            cfg.profile = p.clone();
        }
        if let Some(w) = self.workers {
            cfg.workers = w;
        }
        if let Some(c) = self.checkers {
            cfg.checkers = c;
        }
        if let Some(b) = &self.time_budget {
            cfg.time_budget = Some(b.clone());
        }
        if let Some(a) = self.accel {
            cfg.accel = a;
        }
        if let Some(s) = self.shard {
            cfg.shard = Some(s);
        }
        if let Some(k) = &self.kernel {
            cfg.kernel = Some(k.clone());
        }
        cfg.guided |= self.guided;
        if let Some(c) = &self.corpus {
            cfg.corpus = Some(c.clone());
        }
        if let Some(n) = self.guided_items {
            cfg.guided_items = Some(n);
        }
        if let Some(r) = &self.coverage_diff {
            cfg.coverage_diff = Some(r.clone());
        }
        if let Some(t) = &self.source_tree {
            cfg.source_tree = Some(t.clone());
        }
        cfg.validate("command line")?;
        Ok(cfg)
    }
}
