//! `powercut workload gen|check` and `powercut run --seed N`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::Workload;

use super::exit;
use super::image_cmd::prepare;
use super::ImageArgs;
use crate::error::Error;
use crate::trial::plan::CrashPlan;
use crate::trial::{self, ModelSetup, TrialSetup};

/// `workload gen`: print the generated workload's YAML.
pub fn workload_gen(seed: u64, profile: &str) -> Result<i32, Error> {
    let p: Profile = profile
        .parse()
        .map_err(|e: workloads::generator::UnknownProfile| Error::Usage(e.to_string()))?;
    let yaml = serde_yaml::to_string(&generate(seed, p)).map_err(anyhow::Error::new)?;
    print!("{yaml}");
    Ok(exit::PASS)
}

/// `workload check FILE`: validate a workload file.
pub fn workload_check(path: &std::path::Path) -> Result<i32, Error> {
    let w = workloads::spec::load_workload(path).map_err(|e| Error::Usage(e.to_string()))?;
    println!("{}: ok ({} ops)", path.display(), w.ops.len());
    Ok(exit::PASS)
}

/// `workload mix`: print the generator's op mix and the crash points after each op kind;
/// exit 2 on a bad profile, seed list or config.
pub fn workload_mix(
    profile: &str,
    seeds: &str,
    config: Option<&std::path::Path>,
) -> Result<i32, Error> {
    let p: Profile = profile
        .parse()
        .map_err(|e: workloads::generator::UnknownProfile| {
            Error::Usage(format!("--profile: {e}"))
        })?;
    let list =
        super::workload_mix::seeds_arg(seeds).map_err(|e| Error::Usage(format!("--seeds: {e}")))?;
    let cfg = match config.map(crate::config::CampaignConfig::load) {
        None => crate::records::CrashPointConfig::default(),
        Some(Ok(c)) => c.crash_points,
        Some(Err(e)) => return Err(Error::Usage(e.to_string())),
    };
    let m = super::workload_mix::mix(p, &list, &cfg);
    print!("{}", super::workload_mix::render(&m, p, seeds, &cfg, 5));
    Ok(exit::PASS)
}

/// `run` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Seed of the generated workload.
    #[arg(long, conflicts_with = "workload")]
    pub seed: Option<u64>,
    /// A workload YAML file instead of a generated one.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Generator profile.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Mutant to load.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Boot the VM instead of restoring the saved booted one.
    #[arg(long)]
    pub cold_boot: bool,
    /// Image options.
    #[command(flatten)]
    pub image: ImageArgs,
}

/// `run`: boot a VM, run the workload through the agent, compare the live file system with
/// the oracle's no-crash state.
/// The workload and mutant of `run`, checked.
fn run_inputs(args: &RunArgs) -> Result<(Workload, Option<String>), Error> {
    let usage = |e: &dyn std::fmt::Display| Error::Usage(e.to_string());
    let workload: Workload = match (&args.workload, args.seed) {
        (Some(p), _) => workloads::spec::load_workload(p).map_err(|e| usage(&e))?,
        (None, Some(seed)) => generate(
            seed,
            args.profile.parse::<Profile>().map_err(|e| usage(&e))?,
        ),
        (None, None) => return Err(usage(&"give --seed N or --workload FILE")),
    };
    let mutant = args.mutant.as_deref().and_then(super::mutant_arg);
    if let Some(m) = &mutant {
        crate::image::mutant::validate_mutant(m).map_err(|e| usage(&format!("--mutant: {e}")))?;
    }
    let pmem_bytes = args.image.pmem_mib.saturating_mul(1 << 20);
    workloads::spec::check_fits(&workload, pmem_bytes).map_err(|e| usage(&e))?;
    Ok((workload, mutant))
}

/// `run`: boot a VM, run the workload through the agent, compare the live file system with
/// the oracle's no-crash state.
pub fn run_one(args: &RunArgs, debug: bool) -> Result<i32, Error> {
    let (workload, mutant) = run_inputs(args)?;
    let (img, accel, goldens) = prepare(&args.image, debug)?;
    let golden = goldens
        .into_iter()
        .next()
        .context("no file system selected")?;
    let model = ModelSetup::Snapshot;
    let start = crate::prepare::vm_start(
        args.cold_boot,
        &img,
        &golden,
        accel.accel,
        model.name(),
        debug,
    );
    let setup = TrialSetup {
        image: img,
        golden,
        accel: accel.accel,
        mutant,
        ext4_commit_secs: 600,
        timeout: Duration::from_secs(300),
        debug,
        model,
        start,
        coverage: None,
    };
    let dir = tempfile::Builder::new()
        .prefix("powercut-run-")
        .tempdir()
        .map_err(anyhow::Error::new)?;
    let res = trial::run(&setup, &workload, &CrashPlan::default(), dir.path(), "run")
        .with_context(|| format!("running workload {}", workload.name))?;
    Ok(print_run(&workload, &res, accel.accel))
}

/// What `run` saw: ops, errors, and the live state against the oracle (exit 1 when they
/// differ).
fn print_run(workload: &Workload, res: &trial::RunResult, accel: crate::vm::Accel) -> i32 {
    let mismatches = trial::live_mismatches(workload, res);
    let failed_ops = res
        .outcomes
        .iter()
        .flatten()
        .filter(|o| !o.succeeded())
        .count();
    let ops = workload.ops.len();
    let per_sec = ops as f64 / (res.op_micros.max(1) as f64 / 1e6);
    println!(
        "{}: {ops} ops ({failed_ops} failed with errno), {:.0} ops/s in the guest, {} {:.1} s, accelerator {}",
        workload.name,
        per_sec,
        res.started,
        res.boot.as_secs_f64(),
        accel
    );
    for (k, (op, o)) in workload.ops.iter().zip(&res.outcomes).enumerate() {
        if let Some(errno) = o.and_then(|o| o.errno) {
            println!(
                "op {k} ({}) failed: {}",
                op.label(),
                std::io::Error::from_raw_os_error(errno)
            );
        }
    }
    if mismatches.is_empty() {
        println!(
            "live file system matches the oracle's no-crash state ({} files)",
            res.live.values().filter(|o| o.exists).count()
        );
        exit::PASS
    } else {
        for m in &mismatches {
            println!("MISMATCH {m}");
        }
        exit::FAILURE
    }
}
