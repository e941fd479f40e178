//! `powercut repro <failure-dir | --seed N | --workload NAME>`: re-run a failure or a seed
//! with what [`crate::prepare::triage`] prepares, and say whether the failure came back.

use std::path::{Path, PathBuf};

use workloads::generator::{generate, Profile};

use super::{exit, mutant_arg};
use crate::config::CampaignConfig;
use crate::error::Error;
use crate::prepare::triage::{load_failure_dir, prepare, Prepared, TriageRequest};
use crate::rundir::failure::FailureDir;
use crate::triage::repro::{repro_failure, repro_seed, ReproReport};
use crate::triage::session::Session;
use crate::trial::plan::plan;
use crate::vm::AccelChoice;

/// Options of `repro` and `minimize` that choose the environment of the runs.
#[derive(Debug, Clone, clap::Args)]
pub struct TriageOptions {
    /// Mutant to load (m1..m9, or `none` for the stock kernel); default: the one the failure
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

impl TriageOptions {
    /// The request these flags make.
    pub(super) fn request(&self, debug: bool) -> Result<TriageRequest, Error> {
        Ok(TriageRequest {
            mutant: self.mutant.as_deref().map(mutant_arg),
            config: self.config.clone(),
            kernel: self.kernel.spec()?,
            accel: self.accel,
            cold_boot: self.cold_boot,
            debug,
        })
    }
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
pub fn repro(args: &ReproArgs, debug: bool) -> Result<i32, Error> {
    if args.runs == 0 {
        return Err(Error::Usage("--runs must be at least 1".into()));
    }
    let req = args.env.request(debug)?;
    let fd = args
        .failure_dir
        .as_deref()
        .map(load_failure_dir)
        .transpose()?;
    let p = prepare(&req, fd.as_ref())?;
    let (report, out_dir) = match &fd {
        Some(fd) => (repro_dir(args, &p, fd), Some(fd.dir.clone())),
        None => (repro_item(args, &p)?, args.output.clone()),
    };
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::Error::new(e).context(format!("creating {}", dir.display())))?;
        report.write(&dir).map_err(|e| {
            anyhow::Error::new(e).context(format!("writing repro.json into {}", dir.display()))
        })?;
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

/// Re-run a failure directory's workload and crash point.
fn repro_dir(args: &ReproArgs, p: &Prepared, fd: &FailureDir) -> ReproReport {
    eprintln!(
        "repro: {}\n  workload {} ({} ops), crash {}, mutant {}, {} runs",
        fd.record.title,
        fd.workload.name,
        fd.workload.ops.len(),
        fd.record.crash,
        p.mutant.as_deref().unwrap_or("none"),
        args.runs
    );
    let mut session = Session::new(p.env.clone());
    let r = repro_failure(&mut session, fd, args.runs, p.inside_delay(fd), &mut |l| {
        eprintln!("{l}")
    });
    session.stop();
    r
}

/// Re-run a seed's generated workload, or a workload file, with its planned crash points.
fn repro_item(args: &ReproArgs, p: &Prepared) -> Result<ReproReport, Error> {
    let (workload, seed) = match (args.seed, &args.workload) {
        (Some(seed), _) => {
            let profile =
                (p.cfg.profile.parse::<Profile>()).map_err(|e| Error::Usage(e.to_string()))?;
            (generate(seed, profile), seed)
        }
        (None, Some(name)) => {
            let w = workload_arg(name, args.env.config.as_deref(), &p.cfg).map_err(Error::Usage)?;
            let s = w.seed;
            (w, s)
        }
        (None, None) => {
            return Err(Error::Usage(
                "give a failure directory, --seed N or --workload NAME".into(),
            ))
        }
    };
    let plan = plan(&workload, &p.cfg.crash_points, seed);
    eprintln!(
        "repro: {} ({} ops, {} crash points), mutant {}, {} runs",
        args.workload.as_ref().map_or_else(
            || format!("seed {seed}"),
            |_| format!("workload {}", workload.name)
        ),
        workload.ops.len(),
        plan.images(),
        p.mutant.as_deref().unwrap_or("none"),
        args.runs
    );
    let mut session = Session::new(p.env.clone());
    let r = repro_seed(
        &mut session,
        &workload,
        &plan,
        p.mutant.clone(),
        args.runs,
        &mut |l| eprintln!("{l}"),
    );
    session.stop();
    Ok(r)
}
