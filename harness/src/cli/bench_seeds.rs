//! `powercut bench seeds`: one seed list run cold-booted, then restored from the booted
//! state, in the same invocation; prints VM-ready time (QEMU start → the first op can run)
//! and seeds per hour of each, and their ratio. Each seed is a whole trial: the workload VM
//! with the config's crash plan, and the check of every crash image in one checker VM
//! (booted once, outside the timings) that checks while the next seed runs, as in a
//! campaign with one workload VM and one checker VM. Figures are printed, never asserted.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::oracle::{FsRules, Verdict};
use workloads::{OpOutcome, Workload};

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::checker::Checker;
use crate::config::{parse_seeds, CampaignConfig, CrashModel};
use crate::prepare::vm_start;
use crate::trial::start::{StartMode, VmStart};
use crate::trial::{self, CrashImage, TrialSetup};

/// `bench seeds` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchSeedsArgs {
    /// Campaign config giving the profile, crash points, timeouts and crash model
    /// (default: ci/smoke.yaml of this checkout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seeds ("A..B", "1,2,7"); default: the config's.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Crash model; default: the config's.
    #[arg(long, value_enum)]
    pub crash_model: Option<CrashModel>,
    /// Image options (the file system and pmem size; the config's are not used).
    #[command(flatten)]
    pub image: ImageArgs,
}

/// What one mode measured.
#[derive(Debug, Default)]
struct Figures {
    ready: Vec<Duration>,
    boot: Vec<Duration>,
    total: Duration,
    restored: usize,
    verdicts: Vec<(u64, Vec<Verdict>)>,
}

impl Figures {
    fn mean(v: &[Duration]) -> f64 {
        v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64
    }

    fn seeds_per_hour(&self) -> f64 {
        self.ready.len() as f64 * 3600.0 / self.total.as_secs_f64().max(1e-9)
    }
}

/// Run the benchmark.
pub fn bench_seeds(args: &BenchSeedsArgs, debug: bool) -> anyhow::Result<()> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| crate::cache_dir::workspace_root().join("ci/smoke.yaml"));
    let mut cfg = CampaignConfig::load(&path)?;
    if let Some(m) = args.crash_model {
        cfg.crash_model = m;
    }
    let seeds = match &args.seeds {
        Some(s) => parse_seeds(s).map_err(|e| anyhow::anyhow!("--seeds: {e}"))?,
        None => cfg.seed_list(),
    };
    let profile: Profile = cfg.profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cache_model = cfg.crash_model == CrashModel::Cache;
    let mut image_args = args.image.clone();
    if cache_model {
        image_args.accel = crate::vm::AccelChoice::Tcg;
    }
    let (img, accel, goldens) = prepare(&image_args, debug)?;
    let golden = goldens
        .into_iter()
        .next()
        .context("no file system selected")?;
    let model = crate::prepare::model_setup(cache_model, &img, &golden, &cfg)?;
    let restore = vm_start(false, &img, &golden, accel.accel, model.name(), debug);
    let dir = tempfile::Builder::new()
        .prefix("powercut-bench-seeds-")
        .tempdir()?;
    let mut checker = Checker::start(
        &img,
        &golden,
        accel.accel,
        &dir.path().join("checker"),
        "bench-checker",
        debug,
        Duration::from_secs(cfg.check_timeout_secs),
    )?;
    let rules = FsRules::for_fs(golden.fs.name());
    let setup = TrialSetup {
        image: img,
        golden,
        accel: accel.accel,
        mutant: cfg.mutant.clone(),
        ext4_commit_secs: cfg.ext4_commit_secs,
        timeout: Duration::from_secs(cfg.run_timeout_secs),
        debug,
        model,
        start: VmStart::cold(),
    };
    let mut measured = Vec::new();
    for start in [VmStart::cold(), restore] {
        let mode = start.mode();
        let setup = TrialSetup {
            start,
            ..setup.clone()
        };
        let bench = Bench {
            setup: &setup,
            cfg: &cfg,
            profile,
            rules: &rules,
            dir: dir.path(),
        };
        let f = bench.run(&seeds, &mut checker)?;
        eprintln!(
            "{mode}: {} seeds in {:.1} s",
            seeds.len(),
            f.total.as_secs_f64()
        );
        measured.push((mode, f));
    }
    checker.stop();
    print_table(&measured, &cfg.profile, accel.accel);
    Ok(())
}

/// One mode's pass over the seed list.
struct Bench<'a> {
    setup: &'a TrialSetup,
    cfg: &'a CampaignConfig,
    profile: Profile,
    rules: &'a FsRules,
    dir: &'a Path,
}

/// A run's crash images, on their way to the checker.
type Checked = (u64, Arc<Workload>, Vec<Option<OpOutcome>>, Vec<CrashImage>);

impl Bench<'_> {
    /// Run every seed in a workload VM while the checker checks the previous seeds' crash
    /// images (as a campaign with one workload VM and one checker VM does); the total is
    /// the wall time from the first seed's start to the last check.
    fn run(&self, seeds: &[u64], checker: &mut Checker) -> anyhow::Result<Figures> {
        let mut f = Figures::default();
        let started = Instant::now();
        let (tx, rx) = mpsc::channel::<Checked>();
        let mutant = self.setup.mutant.as_deref();
        let modules = self.setup.image.user_modules.as_slice();
        let rules = self.rules;
        let verdicts = std::thread::scope(|s| {
            let checks = s.spawn(move || -> anyhow::Result<Vec<(u64, Vec<Verdict>)>> {
                let mut out = Vec::new();
                for (seed, workload, outcomes, images) in rx {
                    let mut v = Vec::new();
                    for image in &images {
                        let j = trial::check_image(
                            checker, &workload, &outcomes, image, rules, mutant, modules,
                        )
                        .with_context(|| format!("checking seed {seed}"))?;
                        v.push(j.outcome.verdict);
                    }
                    out.push((seed, v));
                }
                Ok(out)
            });
            let ran = self.run_all(seeds, &tx, &mut f);
            drop(tx);
            let checked = checks
                .join()
                .map_err(|_| anyhow::anyhow!("the checker thread panicked"))?;
            ran.and(checked)
        })?;
        f.total = started.elapsed();
        f.verdicts = verdicts;
        Ok(f)
    }

    fn run_all(
        &self,
        seeds: &[u64],
        tx: &mpsc::Sender<Checked>,
        f: &mut Figures,
    ) -> anyhow::Result<()> {
        let mode = self.setup.start.mode();
        for &seed in seeds {
            let workload = Arc::new(generate(seed, self.profile));
            let plan = trial::plan::plan(&workload, &self.cfg.crash_points, seed);
            let run_dir = self.dir.join(format!("{mode}-{seed}"));
            let run = trial::run(
                self.setup,
                &workload,
                &plan,
                &run_dir,
                &format!("bench-{seed}"),
            )
            .with_context(|| format!("seed {seed} ({mode})"))?;
            f.ready.push(run.ready);
            f.boot.push(run.boot);
            f.restored += usize::from(run.started == StartMode::Restore);
            tx.send((seed, workload, run.outcomes, run.images))
                .map_err(|_| anyhow::anyhow!("the checker thread stopped"))?;
        }
        Ok(())
    }
}

fn print_table(measured: &[(StartMode, Figures)], profile: &str, accel: crate::vm::Accel) {
    println!("profile {profile}, accelerator {accel}");
    println!(
        "{:<10} {:>9} {:>10} {:>10} {:>11} {:>9}",
        "start", "ready s", "to SSH s", "s/seed", "seeds/hour", "restored"
    );
    for (mode, f) in measured {
        println!(
            "{:<10} {:>9.2} {:>10.2} {:>10.2} {:>11.0} {:>5}/{}",
            mode.to_string(),
            Figures::mean(&f.ready),
            Figures::mean(&f.boot),
            f.total.as_secs_f64() / f.ready.len().max(1) as f64,
            f.seeds_per_hour(),
            f.restored,
            f.ready.len()
        );
    }
    if let [(_, cold), (_, warm)] = measured {
        println!(
            "ratio      ready {:.1}× faster, {:.2}× the seeds per hour",
            Figures::mean(&cold.ready) / Figures::mean(&warm.ready).max(1e-9),
            warm.seeds_per_hour() / cold.seeds_per_hour().max(1e-9)
        );
        let same = cold.verdicts == warm.verdicts;
        println!(
            "verdicts   {}",
            if same {
                "the same for every seed and crash image"
            } else {
                "DIFFER between cold boot and restore"
            }
        );
    }
}
