//! `powercut bench seeds`: one seed list run twice in the same invocation, the old path
//! against the new: `--compare check` (the default) checks every crash image (`--no-dedupe`)
//! and then each distinct image once; `--compare start` cold-boots the workload VMs and then
//! restores them from the booted state; `--compare coverage` runs without kernel coverage
//! and then with it (the plugin's slowdown; TCG). Prints, per pass, seeds per hour, VM-ready time
//! (QEMU start → the first op can run), the check time per distinct crash state and where
//! the time went phase by phase, their ratios, and whether the verdicts were the same. Each
//! seed is a whole trial: the workload VM with the config's crash plan, and the check of
//! every crash image in one checker VM (booted once, outside the timings) that checks while
//! the next seed runs, as in a campaign with one workload VM and one checker VM. Figures are
//! printed, never asserted.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::oracle::{FsRules, Verdict};
use workloads::{OpOutcome, Workload};

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::checker::dedupe::SeenImages;
use crate::checker::{Checker, CheckerSpec};
use crate::config::{parse_seeds, CampaignConfig, CrashModel};
use crate::prepare::vm_start;
use crate::records::{CrashLabel, PhaseTotals, TrialItem};
use crate::trial::start::{StartMode, VmStart};
use crate::trial::{self, CrashImage, TrialSetup};

/// What the two passes of `bench seeds` compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    /// Every crash image checked (`--no-dedupe`) against each distinct image checked once;
    /// workload VMs restored in both.
    Check,
    /// Workload VMs cold-booted against restored; every image checked in both.
    Start,
    /// Without kernel coverage against with it (TCG); restored, every image checked.
    Coverage,
}

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
    /// Generator profile (`smoke`, `default`, `deep`); default: the config's.
    #[arg(long)]
    pub profile: Option<String>,
    /// The two passes: `check` (no dedupe, then dedupe) or `start` (cold boot, then restore).
    #[arg(long, value_enum, default_value_t = Compare::Check)]
    pub compare: Compare,
    /// Image options (the file system and pmem size; the config's are not used).
    #[command(flatten)]
    pub image: ImageArgs,
}

/// One pass: its name, how workload VMs start, whether images are deduplicated, whether
/// the runs record coverage.
struct Pass {
    name: &'static str,
    start: VmStart,
    dedupe: bool,
    coverage: bool,
}

/// Each seed's checks: crash point, model variant, verdict, in order.
type SeedVerdicts = Vec<(u64, Vec<(CrashLabel, String, Verdict)>)>;

/// What one pass measured.
#[derive(Debug, Default)]
struct Figures {
    ready: Vec<Duration>,
    boot: Vec<Duration>,
    total: Duration,
    restored: usize,
    /// Wall time of the checker thread's checks.
    check_time: Duration,
    phases: PhaseTotals,
    verdicts: SeedVerdicts,
}

impl Figures {
    fn mean(v: &[Duration]) -> f64 {
        v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64
    }

    fn seeds_per_hour(&self) -> f64 {
        self.ready.len() as f64 * 3600.0 / self.total.as_secs_f64().max(1e-9)
    }

    /// Crash states that needed their own read-back.
    fn distinct(&self) -> usize {
        self.phases.checks - self.phases.reused
    }

    /// Run time per seed (start, ops, crash images), s.
    fn run_secs(&self) -> f64 {
        let ms: f64 = self.phases.run_rows().iter().map(|(_, ms)| ms).sum();
        ms / 1000.0 / self.ready.len().max(1) as f64
    }

    /// Check wall time per distinct crash state, s.
    fn per_distinct(&self) -> f64 {
        self.check_time.as_secs_f64() / self.distinct().max(1) as f64
    }
}

/// The coverage setup of `--compare coverage`.
fn coverage_of(
    args: &BenchSeedsArgs,
    img: &crate::image::GuestImage,
    accel: crate::vm::Accel,
) -> anyhow::Result<crate::trial::coverage_run::CoverageSetup> {
    let spec = args.image.kernel.spec()?.unwrap_or_default();
    let cache = crate::cache_dir::cache_root();
    crate::prepare::coverage::coverage_setup(img, &spec, &cache, accel, None, None)
        .context("--compare coverage needs coverage (TCG, the plugin, the kernel's files)")
}

/// Run the benchmark.
pub fn bench_seeds(args: &BenchSeedsArgs, debug: bool) -> anyhow::Result<()> {
    let (cfg, seeds, profile) = load(args)?;
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
    let coverage = match args.compare {
        Compare::Coverage => Some(coverage_of(args, &img, accel.accel)?),
        _ => None,
    };
    let dir = tempfile::Builder::new()
        .prefix("powercut-bench-seeds-")
        .tempdir()?;
    let mut checker = Checker::start(&CheckerSpec {
        image: &img,
        golden: &golden,
        accel: accel.accel,
        dir: &dir.path().join("checker"),
        name: "bench-checker",
        debug,
        check_timeout: Duration::from_secs(cfg.check_timeout_secs),
        state: restore.state(),
    })?;
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
        coverage: None,
    };
    let mut measured = Vec::new();
    for pass in passes(args.compare, restore) {
        let setup = TrialSetup {
            start: pass.start,
            coverage: coverage.clone().filter(|_| pass.coverage),
            ..setup.clone()
        };
        // A fresh cache per pass: the second pass reuses nothing of the first.
        checker.set_dedupe(pass.dedupe.then(SeenImages::shared));
        let bench = Bench {
            setup: &setup,
            cfg: &cfg,
            profile,
            rules: &rules,
            dir: &dir.path().join(pass.name),
        };
        let f = bench.run(&seeds, &mut checker)?;
        eprintln!(
            "{}: {} seeds in {:.1} s",
            pass.name,
            seeds.len(),
            f.total.as_secs_f64()
        );
        measured.push((pass.name, f));
    }
    checker.stop();
    print_table(&measured, &cfg.profile, cfg.crash_model, accel.accel);
    Ok(())
}

/// The config with the flags applied, the seeds and the profile.
fn load(args: &BenchSeedsArgs) -> anyhow::Result<(CampaignConfig, Vec<u64>, Profile)> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| crate::cache_dir::workspace_root().join("ci/smoke.yaml"));
    let mut cfg = CampaignConfig::load(&path)?;
    if let Some(m) = args.crash_model {
        cfg.crash_model = m;
    }
    if let Some(p) = &args.profile {
        cfg.profile = p.clone();
    }
    let seeds = match &args.seeds {
        Some(s) => parse_seeds(s).map_err(|e| anyhow::anyhow!("--seeds: {e}"))?,
        None => cfg.seed_list(),
    };
    let profile: Profile = cfg
        .profile
        .parse()
        .map_err(|e| anyhow::anyhow!("--profile: {e}"))?;
    Ok((cfg, seeds, profile))
}

/// The two passes `compare` asks for; `restore` is how restored workload VMs start.
fn passes(compare: Compare, restore: VmStart) -> [Pass; 2] {
    let pass = |name, start, dedupe, coverage| Pass {
        name,
        start,
        dedupe,
        coverage,
    };
    match compare {
        Compare::Check => [
            pass("no-dedupe", restore.clone(), false, false),
            pass("dedupe", restore, true, false),
        ],
        Compare::Start => [
            pass("cold-boot", VmStart::cold(), false, false),
            pass("restore", restore, false, false),
        ],
        Compare::Coverage => [
            pass("plain", restore.clone(), false, false),
            pass("coverage", restore, false, true),
        ],
    }
}

/// One pass over the seed list.
struct Bench<'a> {
    setup: &'a TrialSetup,
    cfg: &'a CampaignConfig,
    profile: Profile,
    rules: &'a FsRules,
    dir: &'a Path,
}

/// A run's crash images, on their way to the checker.
type Checked = (u64, Arc<Workload>, Vec<Option<OpOutcome>>, Vec<CrashImage>);

/// What the checker thread returns: verdicts per seed, check phases, check wall time.
type CheckerFigures = (SeedVerdicts, PhaseTotals, Duration);

impl Bench<'_> {
    /// Run every seed in a workload VM while the checker checks the previous seeds' crash
    /// images (as a campaign with one workload VM and one checker VM does); the total is
    /// the wall time from the first seed's start to the last check.
    fn run(&self, seeds: &[u64], checker: &mut Checker) -> anyhow::Result<Figures> {
        let mut f = Figures::default();
        let started = Instant::now();
        let (tx, rx) = mpsc::channel::<Checked>();
        let env = trial::CheckEnv {
            rules: self.rules,
            mutant: self.setup.mutant.as_deref(),
            modules: self.setup.image.user_modules.as_slice(),
        };
        let (verdicts, phases, check_time) = std::thread::scope(|s| {
            let checks = s.spawn(move || -> anyhow::Result<CheckerFigures> {
                let mut out = Vec::new();
                let mut phases = PhaseTotals::default();
                let mut busy = Duration::ZERO;
                for (seed, workload, outcomes, images) in rx {
                    let item = TrialItem::Seed(seed);
                    let mut v = Vec::new();
                    for image in &images {
                        let t = Instant::now();
                        let j =
                            trial::check_image(checker, &item, &workload, &outcomes, image, &env)
                                .with_context(|| format!("checking seed {seed}"))?;
                        busy += t.elapsed();
                        phases.add_check(&j.outcome.phases, j.outcome.same_as.is_some());
                        v.push((j.label, image.model.clone(), j.outcome.verdict));
                    }
                    out.push((seed, v));
                }
                Ok((out, phases, busy))
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
        f.check_time = check_time;
        let runs = std::mem::take(&mut f.phases);
        f.phases = phases;
        f.phases.runs = runs.runs;
        f.phases.run_ms = runs.run_ms;
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
            let run_dir = self.dir.join(format!("{seed}"));
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
            f.phases.add_run(&run.phases);
            tx.send((seed, workload, run.outcomes, run.images))
                .map_err(|_| anyhow::anyhow!("the checker thread stopped"))?;
        }
        Ok(())
    }
}

fn print_table(
    measured: &[(&str, Figures)],
    profile: &str,
    model: CrashModel,
    accel: crate::vm::Accel,
) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!(
        "profile {profile}, crash model {}, accelerator {accel}, load average {load} at the end",
        match model {
            CrashModel::Snapshot => "snapshot",
            CrashModel::Cache => "cache",
        }
    );
    println!(
        "{:<10} {:>8} {:>9} {:>8} {:>10} {:>7} {:>9} {:>10} {:>9}",
        "pass",
        "ready s",
        "to SSH s",
        "s/seed",
        "seeds/hour",
        "checks",
        "distinct",
        "s/distinct",
        "restored"
    );
    for (name, f) in measured {
        println!(
            "{:<10} {:>8.2} {:>9.2} {:>8.2} {:>10.0} {:>7} {:>9} {:>10.3} {:>5}/{}",
            name,
            Figures::mean(&f.ready),
            Figures::mean(&f.boot),
            f.total.as_secs_f64() / f.ready.len().max(1) as f64,
            f.seeds_per_hour(),
            f.phases.checks,
            f.distinct(),
            f.per_distinct(),
            f.restored,
            f.ready.len()
        );
    }
    println!("where the time went, seconds per seed (runs) and per check (checks):");
    for (name, f) in measured {
        let seeds = f.ready.len().max(1) as f64;
        let checks = f.phases.checks.max(1) as f64;
        let runs: Vec<String> = f
            .phases
            .run_rows()
            .iter()
            .map(|(n, ms)| format!("{n} {:.2}", ms / 1000.0 / seeds))
            .collect();
        let chk: Vec<String> = f
            .phases
            .check_rows()
            .iter()
            .map(|(n, ms)| format!("{n} {:.3}", ms / 1000.0 / checks))
            .collect();
        println!("  {name:<10} run: {}", runs.join(", "));
        println!("  {:<10} check: {}", "", chk.join(", "));
    }
    if let [(a, old), (b, new)] = measured {
        println!(
            "ratio      {b}/{a}: {:.2}× the seeds per hour, ready {:.1}× faster, check per distinct state {:.2}×, run time per seed {:.3}×",
            new.seeds_per_hour() / old.seeds_per_hour().max(1e-9),
            Figures::mean(&old.ready) / Figures::mean(&new.ready).max(1e-9),
            new.per_distinct() / old.per_distinct().max(1e-9),
            new.run_secs() / old.run_secs().max(1e-9),
        );
        println!(
            "verdicts   {}",
            compare_verdicts(a, &old.verdicts, b, &new.verdicts)
        );
    }
}

/// Two passes' verdicts compared state by state (seed, crash label, crash-state tag): the
/// same when every state both passes checked got the same verdict. A cache-model run may
/// build other states in another run (its trace is not bit-for-bit the same), so states
/// only one pass built are counted, not compared.
fn compare_verdicts(a: &str, old: &SeedVerdicts, b: &str, new: &SeedVerdicts) -> String {
    use std::collections::BTreeMap;
    let keyed = |v: &SeedVerdicts| -> BTreeMap<(u64, String, String), Vec<Verdict>> {
        let mut m: BTreeMap<_, Vec<Verdict>> = BTreeMap::new();
        for (seed, states) in v {
            for (label, tag, verdict) in states {
                m.entry((*seed, label.to_string(), tag.clone()))
                    .or_default()
                    .push(*verdict);
            }
        }
        m
    };
    let (x, y) = (keyed(old), keyed(new));
    let (mut both, mut only, mut differ) = (0, 0, Vec::new());
    for (key, vx) in &x {
        match y.get(key) {
            Some(vy) => {
                both += 1;
                if vx != vy {
                    differ.push(format!(
                        "seed {} {} [{}]: {vx:?} vs {vy:?}",
                        key.0, key.1, key.2
                    ));
                }
            }
            None => only += 1,
        }
    }
    only += y.keys().filter(|k| !x.contains_key(*k)).count();
    let extra = if only > 0 {
        format!(
            "; {only} state(s) built by only one pass (a cache-model trace is not the same bit for bit)"
        )
    } else {
        String::new()
    };
    if differ.is_empty() {
        format!("the same for every crash state both passes checked ({both}){extra}")
    } else {
        let n = differ.len();
        differ.truncate(8);
        format!(
            "DIFFER between {a} and {b} for {n} state(s): {}{extra}",
            differ.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::CrashPoint;

    fn label(k: usize) -> CrashLabel {
        CrashLabel {
            point: CrashPoint::AfterOp(k),
            kind: "fsync".into(),
        }
    }

    #[test]
    fn verdicts_are_compared_state_by_state_not_by_position() {
        // The second pass built the same two states in another order, and one more.
        let old: SeedVerdicts = vec![(
            7,
            vec![
                (label(3), "cache:worst".into(), Verdict::Pass),
                (label(5), "cache:worst".into(), Verdict::DataLoss),
            ],
        )];
        let new: SeedVerdicts = vec![(
            7,
            vec![
                (label(5), "cache:worst".into(), Verdict::DataLoss),
                (label(3), "cache:worst".into(), Verdict::Pass),
                (label(9), "cache:worst".into(), Verdict::Pass),
            ],
        )];

        let said = compare_verdicts("a", &old, "b", &new);

        assert!(
            said.starts_with("the same for every crash state both passes checked (2)"),
            "{said}"
        );
        assert!(said.contains("1 state(s) built by only one pass"), "{said}");
    }

    #[test]
    fn a_state_with_two_verdicts_is_a_difference() {
        let old: SeedVerdicts = vec![(1, vec![(label(3), "snapshot".into(), Verdict::Pass)])];
        let new: SeedVerdicts = vec![(1, vec![(label(3), "snapshot".into(), Verdict::DataLoss)])];

        let said = compare_verdicts("a", &old, "b", &new);

        assert!(
            said.starts_with("DIFFER between a and b for 1 state(s)"),
            "{said}"
        );
    }
}
