//! Getting a kernel ready to test, shared by the campaign, `repro`, `minimize` and the
//! benchmarks: the guest image, the accelerator, the golden pmem, the crash model's setup and
//! how workload VMs start ([`kernel`], [`model_setup`], [`vm_start`]); and for the triage
//! commands, everything a failure directory or a seed is re-run with ([`triage`]).

pub mod coverage;
pub mod triage;

use std::path::Path;

use crate::config::CampaignConfig;
use crate::image::KernelSpec;
use crate::image::{self, golden_image, GoldenImage, GuestImage, ImageError, ImageOptions};
use crate::records::CrashModel;
use crate::trial::cache_env::{CacheEnv, CacheEnvError};
use crate::trial::start::VmStart;
use crate::trial::ModelSetup;
use crate::vm::accel::AccelDecision;
use crate::vm::{resolve_accel, Accel, AccelChoice, VmError};

/// A step of preparing a kernel that failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Bad input (config, flags, failure directory); the message names it.
    #[error("{0}")]
    Usage(String),
    /// Building the guest image or the golden pmem image (`what` says which).
    #[error("{what}")]
    Image {
        /// The step.
        what: &'static str,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// Choosing the accelerator (the KVM probe boot).
    #[error("choosing the accelerator")]
    Accel(#[source] VmError),
    /// The cache crash model's plugin or NVDIMM probe.
    #[error("preparing the cache crash model")]
    CacheModel(#[source] CacheEnvError),
    /// A host I/O step (`what` says which).
    #[error("{what}")]
    Io {
        /// The step.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl PrepareError {
    /// Is this the user's mistake (exit 2) rather than the machine's (69)? A kernel that
    /// cannot be used as given, or a config option it lacks, is bad input.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PrepareError::Usage(_) => true,
            PrepareError::Image { source, .. } => source.is_bad_input(),
            PrepareError::Accel(_) | PrepareError::CacheModel(_) | PrepareError::Io { .. } => false,
        }
    }
}

/// One kernel, ready to run: its image, accelerator, golden pmem, crash model and start.
pub struct KernelSetup {
    /// The guest image.
    pub image: GuestImage,
    /// The accelerator.
    pub accel: Accel,
    /// The golden pmem.
    pub golden: GoldenImage,
    /// The crash model's setup.
    pub model: ModelSetup,
    /// How workload VMs start.
    pub start: VmStart,
    /// Kernel coverage of the runs (`coverage: true` under TCG), or `None`.
    pub coverage: Option<crate::trial::coverage_run::CoverageSetup>,
}

/// Build (or find) the guest image.
pub fn build_image(opts: &ImageOptions) -> Result<GuestImage, PrepareError> {
    let (image, _) = image::build_image(opts).map_err(|source| PrepareError::Image {
        what: "building the guest image",
        source,
    })?;
    Ok(image)
}

/// Choose the accelerator for `image` (said on stderr): the cache model always runs
/// under TCG.
pub fn accel(
    image: &GuestImage,
    cache_model: bool,
    choice: AccelChoice,
    cache: &Path,
) -> Result<AccelDecision, PrepareError> {
    let accel = if cache_model {
        AccelDecision {
            accel: Accel::Tcg,
            reason: "the cache crash model's tracing plugin needs TCG".into(),
        }
    } else {
        resolve_accel(choice, image, cache).map_err(PrepareError::Accel)?
    };
    eprintln!("accelerator: {} ({})", accel.accel, accel.reason);
    Ok(accel)
}

/// The golden pmem image of `cfg`'s file system and size.
pub fn golden(
    image: &GuestImage,
    cfg: &CampaignConfig,
    accel: Accel,
    cache: &Path,
    debug: bool,
) -> Result<GoldenImage, PrepareError> {
    golden_image(
        image,
        cfg.filesystem,
        cfg.pmem_mib << 20,
        accel,
        cache,
        debug,
    )
    .map_err(|source| PrepareError::Image {
        what: "building the golden pmem image",
        source,
    })
}

/// Resolve and prepare one kernel spec: the one call every kernel of a campaign (the one
/// `kernel`, or each of `kernels:`) goes through.
pub fn kernel(
    spec: KernelSpec,
    cfg: &CampaignConfig,
    cache: &Path,
    cold_boot: bool,
    debug: bool,
) -> Result<KernelSetup, PrepareError> {
    let cache_model = cfg.crash_model == CrashModel::Cache;
    let patch = coverage::patch(&spec, cfg)?;
    let tree = coverage::source_tree(&spec, cfg);
    let opts = ImageOptions {
        cache: cache.to_owned(),
        kernel: spec.clone(),
        wants: cfg.kernel_wants(),
        modules: cfg.modules.clone(),
    };
    let image = build_image(&opts)?;
    let accel = accel(&image, cache_model, cfg.accel, cache)?;
    let golden = golden(&image, cfg, accel.accel, cache, debug)?;
    let model = model_setup(cache_model, &image, &golden, cfg)?;
    let start = vm_start(cold_boot, &image, &golden, accel.accel, model.name(), debug);
    let wants_diff = patch.is_some();
    let coverage = cfg
        .coverage
        .then(|| {
            coverage::coverage_setup(&image, &spec, cache, accel.accel, tree.as_deref(), patch)
        })
        .flatten();
    if wants_diff && coverage.is_none() {
        return Err(PrepareError::Usage(
            "--coverage-diff needs the campaign's coverage, which is off (the line above says why)"
                .into(),
        ));
    }
    Ok(KernelSetup {
        image,
        accel: accel.accel,
        golden,
        model,
        start,
        coverage,
    })
}

/// The crash model's setup: for the cache model, the tracing plugin and the NVDIMM probe
/// (said once on stderr); for the snapshot model nothing to prepare.
pub fn model_setup(
    cache_model: bool,
    image: &GuestImage,
    golden: &GoldenImage,
    cfg: &CampaignConfig,
) -> Result<ModelSetup, PrepareError> {
    if !cache_model {
        return Ok(ModelSetup::Snapshot);
    }
    let env = CacheEnv::prepare(image, golden).map_err(PrepareError::CacheModel)?;
    eprintln!(
        "cache model: plugin {}, NVDIMM at {:#x} (+{:#x}), QEMU {}",
        env.plugin.display(),
        env.nvdimm.base,
        env.nvdimm.size,
        env.qemu_version
    );
    Ok(ModelSetup::Cache {
        env,
        cfg: cfg.cache.clone(),
    })
}

/// How workload VMs start (restore of the booted state, or cold boot), said on stderr.
pub fn vm_start(
    cold_boot: bool,
    img: &GuestImage,
    golden: &GoldenImage,
    accel: Accel,
    model: &str,
    debug: bool,
) -> VmStart {
    let start = crate::trial::start::prepare(cold_boot, img, golden, accel, model, debug);
    match (start.state(), start.fallback()) {
        (Some(s), _) => eprintln!("start: restore (booted state {})", s.key),
        (None, Some(why)) => eprintln!("start: cold-boot ({why})"),
        (None, None) => eprintln!("start: cold-boot (--cold-boot)"),
    }
    start
}
