//! What `repro` and `minimize` re-run a failure (or a seed) with: the config, mutant,
//! kernel image, accelerator, golden pmem and crash model, in a scratch directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{accel, build_image, golden, model_setup, vm_start, PrepareError};
use crate::cache_dir::{cache_root, workspace_root};
use crate::config::CampaignConfig;
use crate::image::kernel::KernelSpec;
use crate::image::{Filesystem, ImageOptions};
use crate::records::CrashModel;
use crate::rundir::failure::FailureDir;
use crate::triage::session::TriageEnv;
use crate::trial::TrialSetup;
use crate::vm::AccelChoice;

/// The environment a triage command asks for (its flags, parsed).
#[derive(Debug, Clone, Default)]
pub struct TriageRequest {
    /// `--mutant`: `Some(None)` is the stock kernel; `None`: the failure's, else the config's.
    pub mutant: Option<Option<String>>,
    /// `--config`; default: the failure's campaign config, else ci/smoke.yaml.
    pub config: Option<PathBuf>,
    /// `--kernel`; default: the failure's matrix kernel, else the config's.
    pub kernel: Option<KernelSpec>,
    /// `--accel`; default: the config's.
    pub accel: Option<AccelChoice>,
    /// `--cold-boot`.
    pub cold_boot: bool,
    /// `--debug`.
    pub debug: bool,
}

/// Everything a triage command runs with, and the scratch directory it lives in.
pub struct Prepared {
    /// The trial setup and the checker's deadline.
    pub env: TriageEnv,
    /// The config the runs follow.
    pub cfg: CampaignConfig,
    /// The mutant loaded, if any.
    pub mutant: Option<String>,
    /// The guest kernel's release.
    pub kernel: String,
    /// The file system under test.
    pub fs: Filesystem,
    _scratch: tempfile::TempDir,
}

impl Prepared {
    /// The delay of the failure's crash point inside its op (µs), as its campaign planned
    /// it; 0 for a point after an op.
    pub fn inside_delay(&self, fd: &FailureDir) -> u64 {
        let (k, inside) = crate::records::finding::point_parts(fd.record.crash.point);
        if inside {
            crate::trial::plan::inside_delay_us(
                &fd.workload,
                &self.cfg.crash_points,
                fd.record.seed,
                k,
            )
        } else {
            0
        }
    }
}

/// Load a failure directory; a bad one is a usage error naming it.
pub fn load_failure_dir(dir: &Path) -> Result<FailureDir, PrepareError> {
    FailureDir::load_valid(dir).map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        PrepareError::Usage(format!(
            "{msg}\n(a failure directory is <run dir>/failures/<slug>/ of a campaign)"
        ))
    })
}

/// The config: `--config`, else the failure's campaign's, else ci/smoke.yaml.
fn config_of(req: &TriageRequest, fd: Option<&FailureDir>) -> Result<CampaignConfig, String> {
    let recorded = fd
        .map(FailureDir::campaign_config)
        .transpose()
        .map_err(|e| e.to_string())?
        .flatten();
    match (&req.config, recorded) {
        (Some(p), _) => CampaignConfig::load(p).map_err(|e| e.to_string()),
        (None, Some(c)) => Ok(c),
        (None, None) => {
            CampaignConfig::load(&workspace_root().join("ci/smoke.yaml")).map_err(|e| e.to_string())
        }
    }
}

/// The kernel: the flag's, else the matrix kernel the failure was found on, else the
/// config's, else the newest cached package.
fn kernel_of(
    req: &TriageRequest,
    found_on: Option<&str>,
    cfg: &CampaignConfig,
) -> Result<KernelSpec, String> {
    match (&req.kernel, found_on) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(name)) => KernelSpec::parse(name)
            .map_err(|e| format!("the failure's kernel `{name}` (failure.json): {e}")),
        (None, None) if !cfg.kernels.is_empty() => Err(format!(
            "the config lists a kernel matrix ({}): pass --kernel with the one to re-run on",
            cfg.kernels.join(", ")
        )),
        (None, None) => Ok(cfg.kernel.clone().unwrap_or_default()),
    }
}

/// The config and mutant of a triage run, checked: the failure's file system, a mutant
/// that exists, a workload that fits the pmem.
fn checked_inputs(
    req: &TriageRequest,
    fd: Option<&FailureDir>,
    cache_model: bool,
    mut cfg: CampaignConfig,
) -> Result<(CampaignConfig, Option<String>), String> {
    if cache_model && req.accel == Some(AccelChoice::Kvm) {
        return Err("--accel kvm: this failure was found by the cache crash model, whose tracing plugin needs TCG".into());
    }
    if let Some(f) = fd {
        match f.record.filesystem.as_str() {
            "ext4" => cfg.filesystem = Filesystem::Ext4,
            "xfs" => cfg.filesystem = Filesystem::Xfs,
            _ => {}
        }
    }
    let mutant = match (&req.mutant, fd) {
        (Some(m), _) => m.clone(),
        (None, Some(f)) => f.record.mutant.clone(),
        (None, None) => cfg.mutant.clone(),
    };
    if let Some(m) = &mutant {
        crate::image::mutant::validate_mutant(m).map_err(|e| format!("--mutant: {e}"))?;
    }
    if let Some(f) = fd {
        let pmem_bytes = cfg.pmem_mib.saturating_mul(1 << 20);
        workloads::spec::check_fits(&f.workload, pmem_bytes)
            .map_err(|e| format!("{}: {e}", f.dir.display()))?;
    }
    Ok((cfg, mutant))
}

/// Resolve config, mutant, image, accelerator and golden pmem for `fd` (or a seed).
pub fn prepare(req: &TriageRequest, fd: Option<&FailureDir>) -> Result<Prepared, PrepareError> {
    let cfg = config_of(req, fd).map_err(PrepareError::Usage)?;
    // A failure found by the cache model is re-run with it (traced, TCG), whatever the
    // config says; a seed follows the config.
    let cache_model = fd.map_or(cfg.crash_model == CrashModel::Cache, |f| {
        f.record.crash_model.starts_with("cache")
    });
    let (cfg, mutant) = checked_inputs(req, fd, cache_model, cfg).map_err(PrepareError::Usage)?;
    let found_on = fd.and_then(|f| f.record.kernel.as_deref());
    let kernel = kernel_of(req, found_on, &cfg).map_err(PrepareError::Usage)?;
    let mut wants = cfg.kernel_wants();
    wants.mutants = mutant.is_some();
    let cache = cache_root();
    let opts = ImageOptions {
        cache: cache.clone(),
        kernel,
        wants,
        modules: cfg.modules.clone(),
    };
    let choice = req.accel.unwrap_or(cfg.accel);
    let img = build_image(&opts)?;
    if let Some((hash, kernel)) = fd.and_then(campaign_image).filter(|_| found_on.is_none()) {
        if kernel != img.kernel_version {
            eprintln!(
                "warning: the failure was found on kernel {kernel}, this run uses {}: pass the campaign's --kernel to re-run on the same kernel",
                img.kernel_version
            );
        } else if hash != img.hash {
            eprintln!(
                "note: same kernel {kernel}, but the guest image changed since the campaign ({hash} → {}: agent, init script or mutant module)",
                img.hash
            );
        }
    }
    let accel = accel(&img, cache_model, choice, &cache)?;
    let golden = golden(&img, &cfg, accel.accel, &cache, req.debug)?;
    let scratch = tempfile::Builder::new()
        .prefix("powercut-triage-")
        .tempdir()
        .map_err(|source| PrepareError::Io {
            what: "creating a scratch directory",
            source,
        })?;
    let kernel = img.kernel_version.clone();
    let model = model_setup(cache_model, &img, &golden, &cfg)?;
    let start = vm_start(
        req.cold_boot,
        &img,
        &golden,
        accel.accel,
        model.name(),
        req.debug,
    );
    let env = TriageEnv {
        setup: TrialSetup {
            image: img,
            golden,
            accel: accel.accel,
            mutant: mutant.clone(),
            ext4_commit_secs: cfg.ext4_commit_secs,
            timeout: Duration::from_secs(cfg.run_timeout_secs),
            debug: req.debug,
            model,
            start,
            coverage: None,
        },
        check_timeout: Duration::from_secs(cfg.check_timeout_secs),
        work_dir: scratch.path().to_owned(),
    };
    Ok(Prepared {
        env,
        fs: cfg.filesystem,
        cfg,
        mutant,
        kernel,
        _scratch: scratch,
    })
}

/// The image hash and kernel the failure's campaign recorded in its `run-info.json`.
fn campaign_image(fd: &FailureDir) -> Option<(String, String)> {
    let info = fd.run_dir()?.read_run_info().ok()??;
    Some((info.image, info.kernel))
}
