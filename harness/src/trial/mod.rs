//! One trial, the pipeline every command drives: a workload and its crash plan → a run in a
//! fresh workload VM under a crash model ([`run`]) → crash images → the oracle's expectation
//! for each → a check in a checker VM ([`check_image`]) → the [`crate::records::Failure`] that
//! names it. The campaign's workers, `repro`, `minimize`, `run` and the benchmarks all go
//! through these functions; none of them repeats a step.
//!
//! - [`plan`]: where to cut the power (pure, seeded).
//! - [`snapshot`]: the snapshot crash model (QMP stop, copy of the pmem file, cont).
//! - [`cache_run`], [`cache_env`]: the cache crash model (TCG plugin trace → crash states).
//! - [`start`]: how a workload VM comes up (restored from the booted state, or cold-booted).
//! - [`coverage_run`]: kernel coverage of a run (the plugin's blocks → `coverage.json`).
//!
//! The records a trial produces (crash labels, failures, buckets, check outcomes) live in
//! [`crate::records`]; block copies of pmem files in [`crate::host::blocks`].

pub mod cache_env;
pub mod cache_lost;
pub mod cache_run;
pub mod coverage_run;
pub mod plan;
pub mod snapshot;
pub mod start;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use workloads::oracle::Verdict;
use workloads::oracle::{
    expectation, live_meta, live_state, CrashPoint, Expectation, FsRules, Observed,
};
use workloads::{OpOutcome, Workload};

use crate::checker::Checker;
use crate::image::user_modules::ModuleRecord;
use crate::image::{GoldenImage, GuestImage};
use crate::records::bucket::BucketContext;
use crate::records::finding::{deciding_failure, failures_of, CrashLabel, Failure};
use crate::records::phases::micros;
use crate::records::CacheModelConfig;
use crate::records::{CheckOutcome, RunPhases, StateRef, TrialItem};
use crate::vm::{Accel, VmError};
use cache_env::CacheEnv;
use plan::CrashPlan;

/// File-name extension of crash images (a sweep of a run directory removes every one left
/// behind by a killed harness).
pub use crate::records::CRASH_IMAGE_EXT;

/// Which crash model a trial runs under, with what it needs.
#[derive(Debug, Clone)]
pub enum ModelSetup {
    /// QMP stop + copy of the pmem file at planned points.
    Snapshot,
    /// TCG plugin trace; crash states built from it.
    Cache {
        /// Plugin, NVDIMM range, QEMU version.
        env: CacheEnv,
        /// Cuts, subsets and the bound on states per run.
        cfg: CacheModelConfig,
    },
}

impl ModelSetup {
    /// `snapshot` or `cache`.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSetup::Snapshot => "snapshot",
            ModelSetup::Cache { .. } => "cache",
        }
    }
}

/// What a workload VM is set up with.
#[derive(Debug, Clone)]
pub struct TrialSetup {
    /// Guest image.
    pub image: GuestImage,
    /// Golden pmem to start from.
    pub golden: GoldenImage,
    /// Accelerator.
    pub accel: Accel,
    /// Mutant to load (`m1`..`m9`), validated by the caller.
    pub mutant: Option<String>,
    /// ext4 `commit=` seconds.
    pub ext4_commit_secs: u32,
    /// Deadline of the ops of one run (boot not included).
    pub timeout: Duration,
    /// `--debug`.
    pub debug: bool,
    /// Crash model.
    pub model: ModelSetup,
    /// How workload VMs start (restore or cold boot).
    pub start: start::VmStart,
    /// Kernel coverage of every run (TCG only), or `None`.
    pub coverage: Option<coverage_run::CoverageSetup>,
}

impl TrialSetup {
    /// The oracle's per-file-system rules for this setup.
    pub fn rules(&self) -> FsRules {
        FsRules::for_fs(self.golden.fs.name())
    }
}

/// One crash image taken during a run. The file (and its lost-lines report, for the cache
/// model) is deleted when this value is dropped, on every path: checked, failed, or
/// abandoned by a campaign that stopped.
#[derive(Debug)]
pub struct CrashImage {
    /// Where the power was cut.
    pub point: CrashPoint,
    /// The image file.
    pub path: PathBuf,
    /// Crash model and variant that made it (`snapshot`, `cache:worst`, …).
    pub model: String,
    /// How long the guest was paused to take it, ms.
    pub pause_ms: u64,
    /// Cache model: which cut and crash state it is (what `repro` rebuilds).
    pub cache_cut: Option<crate::cache_model::CacheCut>,
}

impl CrashImage {
    /// The lost-lines report beside the image (cache model), if there is one.
    pub fn lost_lines(&self) -> Option<PathBuf> {
        let p = cache_run::lost_lines_path(&self.path);
        p.exists().then_some(p)
    }

    /// The typed lost-lines report beside the image (cache model), if there is one.
    pub fn lost_report(&self) -> Option<PathBuf> {
        let p = cache_lost::json_path(&self.path);
        p.exists().then_some(p)
    }
}

impl Drop for CrashImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(cache_run::lost_lines_path(&self.path));
        let _ = std::fs::remove_file(cache_lost::json_path(&self.path));
    }
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// Outcome of every op (`None` if it never ran).
    pub outcomes: Vec<Option<OpOutcome>>,
    /// Crash images, in the order taken.
    pub images: Vec<CrashImage>,
    /// What the live file system held after the last op.
    pub live: BTreeMap<String, Observed>,
    /// Op wall time in the guest, µs.
    pub op_micros: u64,
    /// QEMU start to SSH login (a boot or a restore).
    pub boot: Duration,
    /// QEMU start to the moment the first op could run (mounted, modules loaded, agent
    /// answering).
    pub ready: Duration,
    /// How the workload VM came up.
    pub started: start::StartMode,
    /// Guest console log.
    pub console: PathBuf,
    /// Where the run's time went.
    pub phases: RunPhases,
    /// The run's kernel coverage (also written as its `coverage.json`), when recorded.
    pub coverage: Option<crate::coverage::SeedCoverage>,
}

/// What the agent reported during a run.
#[derive(Debug)]
pub struct Driven {
    /// Outcome of every op (`None` if it never ran).
    pub outcomes: Vec<Option<OpOutcome>>,
    /// What the live file system held after the last op.
    pub live: BTreeMap<String, Observed>,
    /// Op wall time in the guest, µs.
    pub op_micros: u64,
    /// QEMU start to the moment the first op could run.
    pub ready: Duration,
    /// Host side, from sending the workload to the agent's end.
    pub ops: Duration,
}

/// How a run's workload VM came up.
#[derive(Debug, Clone)]
pub struct VmFigures {
    /// QEMU start to SSH login.
    pub boot: Duration,
    /// Restored or cold-booted.
    pub started: start::StartMode,
    /// Guest console log.
    pub console: PathBuf,
}

impl VmFigures {
    /// The figures of `vm`, which came up as `started`.
    pub fn of(vm: &crate::vm::Vm, started: start::StartMode) -> Self {
        VmFigures {
            boot: vm.boot_time(),
            started,
            console: vm.console_path().to_owned(),
        }
    }
}

impl RunResult {
    /// A run's result from what the agent reported, the crash images and the VM's figures.
    /// The phases' `images_us` counts the snapshot pauses; the cache model adds its state
    /// build.
    pub fn of(driven: Driven, images: Vec<CrashImage>, vm: VmFigures) -> Self {
        let paused_ms = images
            .iter()
            .map(|i| i.pause_ms)
            .fold(0u64, u64::saturating_add);
        let phases = RunPhases {
            start_us: micros(driven.ready),
            ops_us: micros(driven.ops),
            images_us: paused_ms.saturating_mul(1000),
        };
        RunResult {
            phases,
            outcomes: driven.outcomes,
            images,
            live: driven.live,
            op_micros: driven.op_micros,
            boot: vm.boot,
            ready: driven.ready,
            started: vm.started,
            console: vm.console,
            coverage: None,
        }
    }
}

/// Run `workload` in a fresh workload VM named `name` whose files live in `dir`, cutting
/// the power per `plan` (snapshot model) or per the trace (cache model: every planned cut,
/// or only the states `plan.cache` selects).
pub fn run(
    setup: &TrialSetup,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    name: &str,
) -> Result<RunResult, VmError> {
    match &setup.model {
        ModelSetup::Snapshot => snapshot::run_workload(setup, workload, plan, dir, name),
        ModelSetup::Cache { env, cfg } => {
            cache_run::run_workload(setup, env, cfg, workload, plan, dir, name)
        }
    }
}

/// Where the live file system after a run differs from the oracle's no-crash state, one
/// line per file (empty when it matches). A difference is an oracle/agent disagreement,
/// never a kernel bug.
pub fn live_mismatches(workload: &Workload, run: &RunResult) -> Vec<String> {
    let expected = live_state(workload, &run.outcomes);
    let meta = live_meta(workload, &run.outcomes);
    let nodes = workloads::oracle::live_nodes(workload, &run.outcomes);
    let mut out = Vec::new();
    for (name, obs) in &run.live {
        if let (Some(state), Some(found)) = (meta.get(name), &obs.meta) {
            for m in state.mismatches(workload.seed, found) {
                out.push(format!(
                    "{name}: {} {}, expected {}",
                    m.field,
                    m.found,
                    m.allowed.join(" | ")
                ));
            }
        }
    }
    for (name, obs) in &run.live {
        if obs.exists && obs.kind != workloads::NodeKind::File {
            let found = (obs.kind, obs.target.clone());
            match nodes.get(name) {
                Some(n) if *n == found => {}
                Some((kind, _)) => out.push(format!(
                    "{name}: a {} ({:?}), expected a {kind:?}",
                    obs.kind.name(),
                    obs.target
                )),
                None => out.push(format!("{name}: a {}, expected absent", obs.kind.name())),
            }
            continue;
        }
        if !obs.exists
            && nodes
                .get(name)
                .is_some_and(|n| n.0 != workloads::NodeKind::File)
        {
            out.push(format!("{name}: missing, expected to exist"));
            continue;
        }
        match (expected.get(name), obs.exists) {
            (Some(d), true) if *d == obs.data => {}
            (None, false) => {}
            (Some(d), true) => out.push(format!(
                "{name}: {} bytes, expected {} (first difference at byte {})",
                obs.data.len(),
                d.len(),
                d.iter()
                    .zip(&obs.data)
                    .position(|(a, b)| a != b)
                    .unwrap_or(d.len().min(obs.data.len()))
            )),
            (Some(_), false) => out.push(format!("{name}: missing, expected to exist")),
            (None, true) => out.push(format!("{name}: exists, expected absent")),
        }
    }
    for name in expected.keys().filter(|n| !run.live.contains_key(*n)) {
        out.push(format!("{name}: not read back, expected to exist"));
    }
    out
}

/// The check of one crash image and what it found.
#[derive(Debug, Clone)]
pub struct Judged {
    /// What the oracle expected.
    pub expectation: Expectation,
    /// Where the power was cut.
    pub label: CrashLabel,
    /// The checker's verdict, findings and fsck output.
    pub outcome: CheckOutcome,
    /// The failure that decided the verdict (`None`: passed).
    pub failure: Option<Failure>,
    /// Every failure the check shows (one per finding), with its bucket.
    pub failures: Vec<Failure>,
}

/// What every check of a campaign (or a `repro`, a benchmark) shares: the oracle's
/// file-system rules, the mutant and the user's modules of the workload VMs.
#[derive(Debug, Clone, Copy)]
pub struct CheckEnv<'a> {
    /// The oracle's per-file-system rules.
    pub rules: &'a FsRules,
    /// The mutant loaded in the workload VMs.
    pub mutant: Option<&'a str>,
    /// The user's modules loaded in the workload VMs.
    pub modules: &'a [ModuleRecord],
}

/// Check one crash image of `item`'s run of `workload` (with op `outcomes`) in `checker`.
pub fn check_image(
    checker: &mut Checker,
    item: &TrialItem,
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
    image: &CrashImage,
    env: &CheckEnv<'_>,
) -> Result<Judged, VmError> {
    let t = Instant::now();
    let exp = expectation(workload, outcomes, image.point, env.rules);
    let expect_us = micros(t.elapsed());
    let origin = StateRef {
        item: item.clone(),
        at: CrashLabel::of(&exp),
        model: image.model.clone(),
    };
    let mut outcome = checker.check(&image.path, &exp, &origin)?;
    let labels: Vec<String> = env
        .modules
        .iter()
        .map(|m| crate::records::bucket::module_label(&m.name, &m.sha256))
        .collect();
    let ctx = BucketContext {
        workload,
        model: &image.model,
        filesystem: &env.rules.name,
        mutant: env.mutant,
        modules: &labels,
    };
    let t = Instant::now();
    let mut failure = deciding_failure(&outcome, &exp, &ctx);
    let mut failures = failures_of(&outcome, &exp, &ctx);
    outcome.phases.oracle_us = outcome
        .phases
        .oracle_us
        .saturating_add(expect_us)
        .saturating_add(micros(t.elapsed()));
    // A failure under the user's modules says so in its title too.
    if !labels.is_empty() {
        let suffix = format!(" [module {}]", labels.join(" "));
        for f in failure.iter_mut().chain(failures.iter_mut()) {
            f.title.push_str(&suffix);
        }
    }
    Ok(Judged {
        label: origin.at,
        failure,
        failures,
        expectation: exp,
        outcome,
    })
}

/// Classify an infrastructure error as a verdict.
pub fn infra_verdict(e: &VmError) -> Verdict {
    match e {
        VmError::GuestPanic { .. } => Verdict::GuestPanic,
        VmError::BootTimeout { .. }
        | VmError::GuestFatal { .. }
        | VmError::QemuDied { .. }
        | VmError::QemuMissing { .. }
        | VmError::Spawn(_)
        | VmError::ModuleLoad { .. } => Verdict::BootFailed,
        VmError::Guest(m) if m.contains("timeout") => Verdict::Timeout,
        _ => Verdict::AgentLost,
    }
}

/// The first line of an error, for one-line problem reports.
pub fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").to_owned()
}
