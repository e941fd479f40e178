//! The workload inputs of a campaign (`--workload`, `workloads:`): loaded and validated from
//! the files for a new campaign, or read back from the run directory's copies on `--resume`.

use crate::config::inputs::WorkloadInput;
use crate::config::CampaignConfig;
use crate::rundir::RunDir;

/// The workload inputs of a campaign: read from the files (new) or the run directory's
/// copies (resume).
pub(crate) enum WorkloadInputs {
    New(Vec<WorkloadInput>),
    Recorded(Vec<crate::rundir::items::RecordedWorkload>),
}

impl WorkloadInputs {
    /// The new inputs (nothing for a resume, whose inputs are already recorded).
    pub(crate) fn new_inputs(&self) -> Option<&Vec<WorkloadInput>> {
        match self {
            WorkloadInputs::New(l) => Some(l),
            WorkloadInputs::Recorded(_) => None,
        }
    }

    /// The workload names, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            WorkloadInputs::New(l) => l.iter().map(|w| w.name.clone()).collect(),
            WorkloadInputs::Recorded(l) => l.iter().map(|w| w.input.name.clone()).collect(),
        }
    }

    /// The names of the workloads a guided campaign derived (recorded in the run directory;
    /// none for a new campaign).
    pub(crate) fn derived_names(&self) -> Vec<String> {
        match self {
            WorkloadInputs::New(_) => Vec::new(),
            WorkloadInputs::Recorded(l) => l
                .iter()
                .filter(|w| w.input.derived.is_some())
                .map(|w| w.input.name.clone())
                .collect(),
        }
    }

    pub(crate) fn into_named(self) -> Vec<(String, workloads::Workload)> {
        match self {
            WorkloadInputs::New(l) => l.into_iter().map(|w| (w.name, w.workload)).collect(),
            WorkloadInputs::Recorded(l) => {
                l.into_iter().map(|w| (w.input.name, w.workload)).collect()
            }
        }
    }
}

/// Load and validate the workload inputs, or the message naming the bad file.
pub(crate) fn workload_inputs(
    cfg: &CampaignConfig,
    run: &RunDir,
    resume: bool,
) -> Result<WorkloadInputs, String> {
    if resume {
        let recorded = run.read_workload_inputs().map_err(|e| e.to_string())?;
        let inputs = recorded
            .iter()
            .filter(|w| w.input.derived.is_none())
            .count();
        if (inputs == 0) != cfg.workloads.is_empty() {
            return Err(format!(
                "--resume: config.yaml lists workloads but {} is missing or empty",
                run.workloads_json().display()
            ));
        }
        return Ok(WorkloadInputs::Recorded(recorded));
    }
    let pmem = cfg.pmem_bytes().unwrap_or(u64::MAX);
    crate::config::inputs::load_all(&cfg.workloads, pmem)
        .map(WorkloadInputs::New)
        .map_err(|e| e.to_string())
}
