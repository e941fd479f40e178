//! The campaign engine: seeds → trials ([`crate::trial`]) on worker threads → events
//! ([`events`]) that one coordinator ([`coordinator`]) records in the journal
//! ([`journal`]) and folds ([`fold`]) for progress, seed completion, the summary, `--resume`
//! and the reports. The coordinator owns failure: what it cannot record stops the campaign.
//!
//! - [`config`]: the campaign YAML and its bounds.
//! - [`item`]: what runs (a seed or a workload file) and in which order.
//! - [`inputs`]: workload files as input: expanded, loaded and validated before any VM.
//! - [`matrix`]: a kernel matrix (`kernels:`): one engine run per kernel, one journal.
//! - [`expect`]: expected outcomes per kernel (`expect:`) and the exit status they give.
//! - [`budget`]: which seeds run (the list, then more until the time budget ends).
//! - [`shard`]: which share of the items one shard (`--shard K/N`) runs.
//! - [`workers`]: workload and checker worker threads.

pub mod budget;
pub mod config;
pub mod coordinator;
pub mod events;
pub mod expect;
pub mod fold;
pub mod inputs;
pub mod item;
pub mod journal;
pub mod matrix;
pub mod shard;
pub mod workers;

use std::path::PathBuf;

use crate::image::{GoldenImage, GuestImage};
use crate::rundir::RunDirError;
use crate::trial::start::VmStart;
use crate::trial::ModelSetup;
use crate::vm::Accel;
use config::CampaignConfig;
use fold::Totals;
use journal::JournalError;

/// Everything the campaign needs that is not in its config.
pub struct CampaignEnv {
    /// Guest image.
    pub image: GuestImage,
    /// Golden pmem.
    pub golden: GoldenImage,
    /// Accelerator.
    pub accel: Accel,
    /// Crash model, with the cache model's plugin and NVDIMM range.
    pub model: ModelSetup,
    /// How workload VMs start (restore of the booted state, or cold boot).
    pub start: VmStart,
    /// Run directory.
    pub dir: PathBuf,
    /// `--debug`.
    pub debug: bool,
    /// Show progress bars (stderr is a TTY).
    pub progress: bool,
    /// The workload inputs (name, workload), validated, in the order they run.
    pub inputs: Vec<(String, workloads::Workload)>,
    /// The campaign's `config.yaml` in its run directory (for the reproduce commands).
    pub config_path: PathBuf,
    /// In a kernel matrix, the kernel this run of the engine tests: its journal lines are
    /// tagged with its name, its VMs named `…-k<index>`. `None` for a campaign on one kernel.
    pub kernel: Option<MatrixKernel>,
}

/// One kernel of a kernel matrix ([`matrix`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixKernel {
    /// Position in `kernels:` (0-based).
    pub index: usize,
    /// Its name: the spec as `kernels:` lists it.
    pub name: String,
}

impl CampaignEnv {
    /// The name of a workload VM of `item` (`work-7`, `work-7-k1` in a kernel matrix).
    pub fn work_vm_name(&self, item: &item::TrialItem) -> String {
        match &self.kernel {
            None => format!("work-{}", item.short()),
            Some(k) => format!("work-{}-k{}", item.short(), k.index),
        }
    }
}

impl CampaignEnv {
    /// The one command that re-runs an item of this campaign: its workload and planned
    /// crash points, with the run directory's config.
    pub fn reproduce(&self, item: &item::TrialItem) -> String {
        item.reproduce(
            &self.config_path,
            self.kernel.as_ref().map(|k| k.name.as_str()),
        )
    }
}

/// Why a campaign could not go on.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The journal of the run directory is damaged (bad input: nothing was run).
    #[error(transparent)]
    Journal(JournalError),
    /// The run directory could not be prepared.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// An error the campaign could not record stopped it: workers stopped drawing seeds,
    /// the VMs in flight were killed and the crash images deleted.
    #[error("the campaign stopped: {0}")]
    Fatal(String),
}

impl From<JournalError> for CampaignError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Io { .. } => CampaignError::Fatal(e.to_string()),
            other => CampaignError::Journal(other),
        }
    }
}

/// How a campaign ended.
#[derive(Debug)]
pub struct CampaignOutcome {
    /// Totals of the finished seeds, this run and earlier ones.
    pub totals: Totals,
    /// It was interrupted (SIGINT/SIGTERM) before every seed was done.
    pub interrupted: bool,
}

/// Run the campaign in `env.dir` (created by the caller, `config.yaml` written).
pub fn run_campaign(
    cfg: &CampaignConfig,
    env: &CampaignEnv,
) -> Result<CampaignOutcome, CampaignError> {
    coordinator::run(cfg, env)
}
