//! `powercut repro <failure-dir | --seed N | --workload NAME>`, and the setup `repro` and `minimize` share:
//! which config, mutant, kernel image and golden pmem a failure is re-run with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use workloads::generator::{generate, Profile};

use super::{exit, mutant_arg};
use crate::cache::{cache_root, workspace_root};
use crate::campaign::config::{CampaignConfig, CrashModel};
use crate::image::kernel::KernelSpec;
use crate::image::{self, golden_image, Filesystem, ImageOptions};
use crate::rundir::failure::FailureDir;
use crate::triage::repro::{repro_failure, repro_seed};
use crate::triage::session::{Session, TriageEnv};
use crate::trial::finding::point_parts;
use crate::trial::plan::{inside_delay_us, plan};
use crate::trial::TrialSetup;
use crate::vm::{resolve_accel, AccelChoice};

/// Options of `repro` and `minimize` that choose the environment of the runs.
#[derive(Debug, Clone, clap::Args)]
pub struct TriageOptions {
    /// Mutant to load (m1..m7, or `none` for the stock kernel); default: the one the failure
    /// directory records (`mutant.txt`), else the campaign config's.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Campaign config; default: the failure's campaign (`<run>/config.yaml`), else
    /// ci/smoke.yaml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The kernel; default: the config's, else the newest package in the cache.
    #[command(flatten)]
    pub kernel: super::KernelArgs,
    /// Accelerator; default: the config's.
    #[arg(long, value_enum)]
    pub accel: Option<AccelChoice>,
    /// Boot every workload VM instead of restoring the saved booted one.
    #[arg(long)]
    pub cold_boot: bool,
}

/// `repro` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproArgs {
    /// Failure directory (`<run>/failures/<slug>/`).
    #[arg(required_unless_present_any = ["seed", "workload"], conflicts_with_all = ["seed", "workload"])]
    pub failure_dir: Option<PathBuf>,
    /// Re-run the generated workload of this seed with its planned crash points instead.
    #[arg(long, conflicts_with = "workload")]
    pub seed: Option<u64>,
    /// Re-run a workload with its planned crash points instead: the name of a workload input
    /// of the campaign whose `--config <run>/config.yaml` is given (its copy in the run
    /// directory), or a workload file.
    #[arg(long, value_name = "NAME|FILE")]
    pub workload: Option<String>,
    /// Number of runs.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// With --seed: write repro.json into this directory.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Environment.
    #[command(flatten)]
    pub env: TriageOptions,
}

/// Everything a triage command runs with, and the scratch directory it lives in.
pub(super) struct Prepared {
    pub env: TriageEnv,
    pub cfg: CampaignConfig,
    pub mutant: Option<String>,
    pub kernel: String,
    pub fs: Filesystem,
    _scratch: tempfile::TempDir,
}

/// Load a failure directory; a bad one is a usage error (printed), not an infrastructure one.
pub(super) fn load_failure_dir(dir: &Path) -> Result<FailureDir, i32> {
    FailureDir::load_valid(dir).map_err(|e| {
        let mut msg = format!("error: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        eprintln!("{msg}\n(a failure directory is <run dir>/failures/<slug>/ of a campaign)");
        exit::USAGE
    })
}

/// Resolve config, mutant, image, accelerator and golden pmem for `fd` (or a seed).
pub(super) fn prepare(
    opts: &TriageOptions,
    fd: Option<&FailureDir>,
    debug: bool,
) -> anyhow::Result<Result<Prepared, i32>> {
    let recorded = match fd.map(FailureDir::campaign_config).transpose() {
        Ok(c) => c.flatten(),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Err(exit::USAGE));
        }
    };
    let loaded = match (&opts.config, recorded) {
        (Some(p), _) => CampaignConfig::load(p).map_err(|e| e.to_string()),
        (None, Some(c)) => Ok(c),
        (None, None) => {
            CampaignConfig::load(&workspace_root().join("ci/smoke.yaml")).map_err(|e| e.to_string())
        }
    };
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Err(exit::USAGE));
        }
    };
    // A failure found by the cache model is re-run with it (traced, TCG), whatever the
    // config says; a seed follows the config.
    let cache_model = fd.map_or(cfg.crash_model == CrashModel::Cache, |f| {
        f.record.crash_model.starts_with("cache")
    });
    if cache_model && opts.accel == Some(AccelChoice::Kvm) {
        eprintln!(
            "error: --accel kvm: this failure was found by the cache crash model, whose tracing plugin needs TCG"
        );
        return Ok(Err(exit::USAGE));
    }
    if let Some(f) = fd {
        match f.record.filesystem.as_str() {
            "ext4" => cfg.filesystem = Filesystem::Ext4,
            "xfs" => cfg.filesystem = Filesystem::Xfs,
            _ => {}
        }
    }
    let mutant = match (&opts.mutant, fd) {
        (Some(m), _) => mutant_arg(m),
        (None, Some(f)) => f.record.mutant.clone(),
        (None, None) => cfg.mutant.clone(),
    };
    if let Some(m) = &mutant {
        if let Err(e) = crate::image::mutant::validate_mutant(m) {
            eprintln!("error: --mutant: {e}");
            return Ok(Err(exit::USAGE));
        }
    }
    if let Some(f) = fd {
        let pmem_bytes = cfg.pmem_mib.saturating_mul(1 << 20);
        if let Err(e) = workloads::spec::check_fits(&f.workload, pmem_bytes) {
            eprintln!("error: {}: {e}", f.dir.display());
            return Ok(Err(exit::USAGE));
        }
    }
    // The kernel: the flag's, else the matrix kernel the failure was found on, else the
    // config's, else the newest cached package.
    let found_on = fd.and_then(|f| f.record.kernel.as_deref());
    let kernel = match (opts.kernel.spec(), found_on) {
        (Ok(Some(k)), _) => k,
        (Ok(None), Some(name)) => match KernelSpec::parse(name) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: the failure's kernel `{name}` (failure.json): {e}");
                return Ok(Err(exit::USAGE));
            }
        },
        (Ok(None), None) if !cfg.kernels.is_empty() => {
            eprintln!(
                "error: the config lists a kernel matrix ({}): pass --kernel with the one to re-run on",
                cfg.kernels.join(", ")
            );
            return Ok(Err(exit::USAGE));
        }
        (Ok(None), None) => cfg.kernel.clone().unwrap_or_default(),
        (Err(e), _) => {
            eprintln!("error: {e}");
            return Ok(Err(exit::USAGE));
        }
    };
    let mut wants = cfg.kernel_wants();
    wants.mutants = mutant.is_some();
    let cache = cache_root();
    let (img, _) = image::build_image(&ImageOptions {
        cache: cache.clone(),
        kernel,
        wants,
        modules: cfg.modules.clone(),
    })
    .context("building the guest image")?;
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
    let accel = if cache_model {
        crate::vm::accel::AccelDecision {
            accel: crate::vm::Accel::Tcg,
            reason: "the cache crash model's tracing plugin needs TCG".into(),
        }
    } else {
        resolve_accel(opts.accel.unwrap_or(cfg.accel), &img, &cache)
            .context("choosing the accelerator")?
    };
    eprintln!("accelerator: {} ({})", accel.accel, accel.reason);
    let golden = golden_image(
        &img,
        cfg.filesystem,
        cfg.pmem_mib << 20,
        accel.accel,
        &cache,
        debug,
    )
    .context("building the golden pmem image")?;
    let scratch = tempfile::Builder::new()
        .prefix("powercut-triage-")
        .tempdir()
        .context("creating a scratch directory")?;
    let kernel = img.kernel_version.clone();
    let model = super::campaign_cmd::model_setup(cache_model, &img, &golden, &cfg)?;
    let start = super::image_cmd::vm_start(
        opts.cold_boot,
        &img,
        &golden,
        accel.accel,
        model.name(),
        debug,
    );
    let env = TriageEnv {
        setup: TrialSetup {
            image: img,
            golden,
            accel: accel.accel,
            mutant: mutant.clone(),
            ext4_commit_secs: cfg.ext4_commit_secs,
            timeout: Duration::from_secs(cfg.run_timeout_secs),
            debug,
            model,
            start,
        },
        check_timeout: Duration::from_secs(cfg.check_timeout_secs),
        work_dir: scratch.path().to_owned(),
    };
    Ok(Ok(Prepared {
        env,
        fs: cfg.filesystem,
        cfg,
        mutant,
        kernel,
        _scratch: scratch,
    }))
}

/// The image hash and kernel the failure's campaign recorded in its `run-info.json`.
fn campaign_image(fd: &FailureDir) -> Option<(String, String)> {
    let info = fd.run_dir()?.read_run_info().ok()??;
    Some((info.image, info.kernel))
}

/// The workload of `repro --workload`: a workload input of the campaign whose `config.yaml`
/// is `config` (its copy in the run directory), else a workload file; validated and checked
/// against the pmem size.
fn workload_arg(
    name: &str,
    config: Option<&Path>,
    cfg: &CampaignConfig,
) -> Result<workloads::Workload, String> {
    let w = if Path::new(name).is_file() {
        workloads::spec::load_workload(Path::new(name)).map_err(|e| e.to_string())?
    } else {
        let Some(config) = config else {
            return Err(format!(
                "--workload {name}: no such file, and no --config <run>/config.yaml to find a workload input of that name in"
            ));
        };
        crate::rundir::items::run_of_config(config)
            .read_workload_copy(name)
            .map_err(|e| format!("--workload {name}: {e}"))?
    };
    workloads::spec::check_fits(&w, cfg.pmem_mib.saturating_mul(1 << 20))
        .map_err(|e| e.to_string())?;
    Ok(w)
}

/// `powercut repro`: exit 1 when the failure came back at least once (the bug is real),
/// 0 when it never did (flaky), 69 when no run completed.
pub fn repro(args: &ReproArgs, debug: bool) -> anyhow::Result<i32> {
    if args.runs == 0 {
        eprintln!("error: --runs must be at least 1");
        return Ok(exit::USAGE);
    }
    let fd = match &args.failure_dir {
        Some(d) => match load_failure_dir(d) {
            Ok(f) => Some(f),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let p = match prepare(&args.env, fd.as_ref(), debug)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mutant_name = p.mutant.clone().unwrap_or_else(|| "none".into());
    let mut say = |l: &str| eprintln!("{l}");
    let (report, out_dir) = match (&fd, args.seed) {
        (Some(fd), _) => {
            eprintln!(
                "repro: {}\n  workload {} ({} ops), crash {}, mutant {mutant_name}, {} runs",
                fd.record.title,
                fd.workload.name,
                fd.workload.ops.len(),
                fd.record.crash,
                args.runs
            );
            let (k, inside) = point_parts(fd.record.crash.point);
            let delay = if inside {
                inside_delay_us(&fd.workload, &p.cfg.crash_points, fd.record.seed, k)
            } else {
                0
            };
            let mut session = Session::new(p.env.clone());
            let r = repro_failure(&mut session, fd, args.runs, delay, &mut say);
            session.stop();
            (r, Some(fd.dir.clone()))
        }
        (None, seed) => {
            let (workload, seed) = match (seed, &args.workload) {
                (Some(seed), _) => match p.cfg.profile.parse::<Profile>() {
                    Ok(pr) => (generate(seed, pr), seed),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(exit::USAGE);
                    }
                },
                (None, Some(name)) => {
                    match workload_arg(name, args.env.config.as_deref(), &p.cfg) {
                        Ok(w) => {
                            let s = w.seed;
                            (w, s)
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            return Ok(exit::USAGE);
                        }
                    }
                }
                (None, None) => {
                    eprintln!("error: give a failure directory, --seed N or --workload NAME");
                    return Ok(exit::USAGE);
                }
            };
            let plan = plan(&workload, &p.cfg.crash_points, seed);
            eprintln!(
                "repro: {} ({} ops, {} crash points), mutant {mutant_name}, {} runs",
                args.workload.as_ref().map_or_else(
                    || format!("seed {seed}"),
                    |_| format!("workload {}", workload.name)
                ),
                workload.ops.len(),
                plan.images(),
                args.runs
            );
            let mut session = Session::new(p.env.clone());
            let r = repro_seed(
                &mut session,
                &workload,
                &plan,
                p.mutant.clone(),
                args.runs,
                &mut say,
            );
            session.stop();
            (r, args.output.clone())
        }
    };
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        report
            .write(&dir)
            .with_context(|| format!("writing repro.json into {}", dir.display()))?;
        eprintln!("wrote {}", dir.join("repro.json").display());
    }
    println!("{}", report.summary());
    Ok(if report.reproduced > 0 {
        exit::FAILURE
    } else if report.infra == report.runs {
        exit::INFRA
    } else {
        exit::PASS
    })
}
