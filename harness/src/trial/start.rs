//! How a workload VM starts: restored from the booted state ([`crate::image::booted`]) on
//! a fresh copy of its pmem base, or cold-booted on a copy of the golden image. A restore
//! that fails falls back to a cold boot of the same seed, and the run says so once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::TrialSetup;
use crate::image::golden::{scratch_pmem, GoldenCopy};
use crate::image::{booted_state, BootedState, GoldenImage, GuestImage};
use crate::vm::{Accel, Vm, VmError, VmSpec};

/// How a VM came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// Booted the kernel.
    ColdBoot,
    /// Restored from the booted state.
    Restore,
}

impl std::fmt::Display for StartMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartMode::ColdBoot => "cold-boot",
            StartMode::Restore => "restore",
        })
    }
}

/// How the workload VMs of a campaign (or a `run`, `repro`, benchmark) start.
#[derive(Debug, Clone)]
pub struct VmStart {
    state: Option<BootedState>,
    /// Why a VM cold-booted although restores were wanted: the first such reason.
    fallback: Arc<OnceLock<String>>,
}

impl VmStart {
    /// Every VM cold-boots (`--cold-boot`).
    pub fn cold() -> VmStart {
        VmStart {
            state: None,
            fallback: Arc::default(),
        }
    }

    /// Every VM is restored from `state`.
    pub fn restore(state: BootedState) -> VmStart {
        VmStart {
            state: Some(state),
            fallback: Arc::default(),
        }
    }

    /// Restores were wanted but there is no state: every VM cold-boots, and the run says
    /// why.
    pub fn unavailable(why: String) -> VmStart {
        let start = VmStart::cold();
        start.fell_back(why);
        start
    }

    /// The mode VMs start in (unless a restore fails).
    pub fn mode(&self) -> StartMode {
        match self.state {
            Some(_) => StartMode::Restore,
            None => StartMode::ColdBoot,
        }
    }

    /// The booted state restores use.
    pub fn state(&self) -> Option<&BootedState> {
        self.state.as_ref()
    }

    /// Why a VM cold-booted although restores were wanted (the first reason), if one did.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.get().map(String::as_str)
    }

    /// Record a fallback; said once (the first one) per run.
    fn fell_back(&self, why: String) {
        if self.fallback.set(why.clone()).is_ok() {
            tracing::warn!("restore failed, cold-booting instead (said once): {why}");
        }
    }
}

/// The start of a run: `cold_boot` (the flag), else the booted state of `image` on
/// `golden` for crash `model`, built if missing; when it cannot be built, every VM
/// cold-boots and [`VmStart::fallback`] says why.
pub fn prepare(
    cold_boot: bool,
    image: &GuestImage,
    golden: &GoldenImage,
    accel: Accel,
    model: &str,
    debug: bool,
) -> VmStart {
    if cold_boot {
        return VmStart::cold();
    }
    match booted_state(
        image,
        golden,
        accel,
        model,
        &crate::cache_dir::cache_root(),
        debug,
    ) {
        Ok(state) => VmStart::restore(state),
        Err(e) => VmStart::unavailable(format!("no booted state: {e}")),
    }
}

/// A workload VM that is up, with its own pmem file.
pub struct WorkVm {
    /// The VM (SSH answers, nothing mounted).
    pub vm: Vm,
    /// Its pmem file, deleted when dropped.
    pub pmem: GoldenCopy,
    /// What the pmem file held when the VM came up (the golden image, or the booted
    /// state's base): the image the cache model's trace starts from.
    pub base: PathBuf,
    /// How it came up.
    pub started: StartMode,
}

/// Start the workload VM `name` of `setup` in `dir` with `extra_args` (a TCG plugin):
/// restored when the setup says so, cold-booted otherwise or when the restore fails.
pub fn start_workload_vm(
    setup: &TrialSetup,
    dir: &Path,
    name: &str,
    extra_args: Vec<String>,
) -> Result<WorkVm, VmError> {
    std::fs::create_dir_all(dir).map_err(|source| VmError::HostIo {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let pmem_path = dir.join("work.pmem");
    let spec = |pmem: &Path| {
        let mut spec = VmSpec::new(name, &setup.image, pmem, setup.accel, dir);
        spec.debug = setup.debug;
        spec.extra_args = extra_args.clone();
        spec
    };
    if let Some(state) = setup.start.state() {
        let restored = copy(&state.pmem_base, &pmem_path)
            .and_then(|pmem| Ok((Vm::restore(&spec(pmem.path()), &state.state)?, pmem)));
        match restored {
            Ok((vm, pmem)) => {
                return Ok(WorkVm {
                    vm,
                    pmem,
                    base: state.pmem_base.clone(),
                    started: StartMode::Restore,
                })
            }
            Err(e) if e.is_disk_full() => return Err(e),
            Err(e) => setup
                .start
                .fell_back(format!("{name}: {}", super::first_line(&e))),
        }
    }
    // A failed restore may have written to its copy: start again from the golden image.
    let pmem = copy(&setup.golden.path, &pmem_path)?;
    let vm = Vm::boot(&spec(pmem.path()))?;
    Ok(WorkVm {
        vm,
        pmem,
        base: setup.golden.path.clone(),
        started: StartMode::ColdBoot,
    })
}

fn copy(from: &Path, to: &Path) -> Result<GoldenCopy, VmError> {
    scratch_pmem(from, to)
        .map_err(|e| VmError::Guest(format!("copying the pmem image {}: {e}", from.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fallback_is_kept_and_shared_by_clones() {
        let start = VmStart::cold();
        let clone = start.clone();

        clone.fell_back("work-1: restore timed out".into());
        clone.fell_back("work-2: later".into());

        assert_eq!(start.fallback(), Some("work-1: restore timed out"));
        assert_eq!(start.mode(), StartMode::ColdBoot);
    }

    #[test]
    fn a_missing_state_means_cold_boots_that_say_why() {
        let start = VmStart::unavailable("no booted state: disk".into());

        assert_eq!(start.mode(), StartMode::ColdBoot);
        assert_eq!(start.fallback(), Some("no booted state: disk"));
        assert_eq!(StartMode::Restore.to_string(), "restore");
    }
}
