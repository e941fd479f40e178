//! The campaign: the use case ([`run`]: a request in, a [`run::Finished`] campaign out) and
//! the engine under it: items → trials ([`crate::trial`]) on worker threads ([`workers`]) →
//! events ([`crate::journal::events`]) that one coordinator ([`coordinator`]) records in the
//! journal, folds ([`crate::journal::fold`]) and hands to an event sink
//! ([`crate::journal::sink`]). The coordinator owns failure: what it cannot record stops the
//! campaign, reported as a [`CampaignError`] value.
//!
//! - [`run`]: resume checks, the kernels, run-info, the kernel-matrix loop, reports and the
//!   judgement of `expect:`.
//! - [`source`]: which item runs next (workloads, listed seeds, then drawn ones).
//! - [`budget`]: which seeds run (the list, then more until the time budget ends).
//! - [`workload_inputs`]: a campaign's workload inputs, from the files or the run directory.
//! - [`workers`]: workload and checker worker threads.
//! - [`guided`]: the guided draws and the corpus' feedback of a `--guided` campaign.

pub mod balance;
mod boot_console;
pub mod budget;
pub mod coordinator;
pub mod guided;
mod pool;
pub mod run;
pub mod source;
pub mod workers;
pub mod workload_inputs;

pub use run::{run, Finished, Request};

use std::path::PathBuf;

use crate::image::{GoldenImage, GuestImage};
use crate::journal::fold::Totals;
use crate::journal::JournalError;
use crate::prepare::PrepareError;
use crate::records::TrialItem;
use crate::rundir::RunDirError;
use crate::trial::start::VmStart;
use crate::trial::ModelSetup;
use crate::vm::Accel;

/// Everything the campaign needs that is not in its config.
#[derive(Clone)]
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
    /// Check each distinct crash image once (off with `--no-dedupe`).
    pub dedupe: bool,
    /// The workload inputs (name, workload), validated, in the order they run.
    pub inputs: Vec<(String, workloads::Workload)>,
    /// The campaign's `config.yaml` in its run directory (for the reproduce commands).
    pub config_path: PathBuf,
    /// Kernel coverage of the runs, or `None`.
    pub coverage: Option<crate::trial::coverage_run::CoverageSetup>,
    /// In a kernel matrix, the kernel this run of the engine tests: its journal lines are
    /// tagged with its name, its VMs named `…-k<index>`. `None` for a campaign on one kernel.
    pub kernel: Option<MatrixKernel>,
    /// Guided generation (`--guided`), or `None`.
    pub guided: Option<guided::GuidedSetup>,
}

/// One kernel of a kernel matrix ([`crate::config::kernels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixKernel {
    /// Position in `kernels:` (0-based).
    pub index: usize,
    /// Its name: the spec as `kernels:` lists it.
    pub name: String,
}

impl CampaignEnv {
    /// The names of the campaign's workload inputs, in order, without the workloads a
    /// guided campaign derived in earlier runs (those are not shared out by position).
    pub fn input_names(&self) -> Vec<String> {
        let derived = self.guided.as_ref().map_or(&[][..], |g| &g.derived[..]);
        self.inputs
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !derived.contains(n))
            .collect()
    }

    /// The name of a workload VM of `item` (`work-7`, `work-7-k1` in a kernel matrix).
    pub fn work_vm_name(&self, item: &TrialItem) -> String {
        match &self.kernel {
            None => format!("work-{}", item.short()),
            Some(k) => format!("work-{}-k{}", item.short(), k.index),
        }
    }
}

impl CampaignEnv {
    /// The one command that re-runs an item of this campaign: its workload and planned
    /// crash points, with the run directory's config.
    pub fn reproduce(&self, item: &TrialItem) -> String {
        item.reproduce(
            &self.config_path,
            self.kernel.as_ref().map(|k| k.name.as_str()),
        )
    }
}

/// Why a campaign could not go on.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// Bad usage or input (config, flags, `--resume` of another campaign); nothing ran.
    #[error("{0}")]
    Usage(String),
    /// The journal of the run directory is damaged (bad input: nothing was run).
    #[error(transparent)]
    Journal(JournalError),
    /// A kernel could not be prepared (image, accelerator, golden pmem, crash model).
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The run directory could not be prepared.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Recording a campaign's inputs or environment in its run directory failed.
    #[error("{what}")]
    Record {
        /// What was being recorded.
        what: String,
        /// Why it failed.
        #[source]
        source: RunDirError,
    },
    /// Writing the reports failed.
    #[error("{what}")]
    Report {
        /// Which reports.
        what: String,
        /// Why.
        #[source]
        source: crate::report::ReportError,
    },
    /// An error the campaign could not record stopped it: workers stopped drawing seeds,
    /// the VMs in flight were killed and the crash images deleted.
    #[error("the campaign stopped: {0}")]
    Fatal(String),
    /// Interrupted twice, and the workers did not end within the grace period after the
    /// second interrupt: every VM was killed and the crash images deleted.
    #[error("interrupted: the work in flight did not end after its VMs were killed")]
    Abandoned,
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
