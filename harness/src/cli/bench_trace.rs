//! `powercut bench trace`: what the cache crash model costs. One workload run without the
//! tracing plugin and one with it (same seed, TCG both), their wall-time ratio; trace bytes
//! per op; crash states built per run and per minute; crash states checked per minute by
//! one checker VM. Figures are printed, never asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::Workload;

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::checker::{Checker, CheckerSpec};
use crate::image::{GoldenImage, GuestImage};
use crate::records::CacheModelConfig;
use crate::trial::cache_env::CacheEnv;
use crate::trial::plan::CrashPlan;
use crate::trial::{self, ModelSetup, RunResult, TrialSetup};
use crate::vm::{Accel, AccelChoice};

/// Options of `bench trace`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchTraceArgs {
    /// Workload seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generator profile.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Most crash states to build (and check).
    #[arg(long, default_value_t = 24)]
    pub max_states: usize,
    /// Image options (the accelerator is always TCG here).
    #[command(flatten)]
    pub image: ImageArgs,
}

/// Run the benchmark.
pub fn bench_trace(args: &BenchTraceArgs, debug: bool) -> anyhow::Result<()> {
    let mut image_args = args.image.clone();
    image_args.accel = AccelChoice::Tcg;
    let (img, _, goldens) = prepare(&image_args, debug)?;
    let golden = goldens
        .into_iter()
        .next()
        .context("no file system selected")?;
    let profile: Profile = args.profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let workload = generate(args.seed, profile);
    let cache = CacheEnv::prepare(&img, &golden).context("preparing the cache model")?;
    let dir = tempfile::Builder::new()
        .prefix("powercut-bench-trace-")
        .tempdir()?;
    let (plain_setup, traced_setup) = setups(&img, &golden, cache, args.max_states, debug);
    let none = CrashPlan::default();

    let t = Instant::now();
    let plain = trial::run(
        &plain_setup,
        &workload,
        &none,
        &dir.path().join("plain"),
        "bench-plain",
    )?;
    let plain_secs = t.elapsed().as_secs_f64();

    let traced_dir = dir.path().join("traced");
    let t = Instant::now();
    let traced = trial::run(&traced_setup, &workload, &none, &traced_dir, "bench-traced")?;
    let traced_secs = t.elapsed().as_secs_f64();
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(traced_dir.join("cache-run.json")).context("reading cache-run.json")?,
    )?;
    let (passed, check_secs) = check_all(&traced_setup, &workload, &traced, dir.path(), debug)?;
    let f = Figures {
        plain: &plain,
        plain_secs,
        traced: &traced,
        traced_secs,
        summary: &summary,
        passed,
        check_secs,
    };
    print_figures(args, &workload, &f);
    Ok(())
}

/// The two setups compared: without the plugin and with it (both TCG, cold boots).
fn setups(
    img: &GuestImage,
    golden: &GoldenImage,
    cache: CacheEnv,
    max_states: usize,
    debug: bool,
) -> (TrialSetup, TrialSetup) {
    let plain_setup = TrialSetup {
        image: img.clone(),
        golden: golden.clone(),
        accel: Accel::Tcg,
        mutant: None,
        ext4_commit_secs: 600,
        timeout: Duration::from_secs(600),
        debug,
        model: ModelSetup::Snapshot,
        // The plugin's cost is measured on cold boots (as before restores existed).
        start: crate::trial::start::VmStart::cold(),
        coverage: None,
    };
    let traced_setup = TrialSetup {
        model: ModelSetup::Cache {
            env: cache,
            cfg: CacheModelConfig {
                max_states_per_run: max_states,
                ..CacheModelConfig::default()
            },
        },
        ..plain_setup.clone()
    };
    (plain_setup, traced_setup)
}

/// Check every crash state of the traced run in one checker VM: (passed, seconds).
fn check_all(
    setup: &TrialSetup,
    workload: &Workload,
    traced: &RunResult,
    dir: &Path,
    debug: bool,
) -> anyhow::Result<(usize, f64)> {
    let rules = setup.rules();
    let mut checker = Checker::start(&CheckerSpec {
        image: &setup.image,
        golden: &setup.golden,
        accel: Accel::Tcg,
        dir,
        name: "bench-checker",
        debug,
        check_timeout: crate::vm::COMMUNICATION_TIMEOUT,
        state: setup.start.state(),
    })?;
    let t = Instant::now();
    let mut passed = 0;
    for image in &traced.images {
        let env = trial::CheckEnv {
            rules: &rules,
            mutant: None,
            modules: &[],
        };
        let item = crate::records::TrialItem::Seed(workload.seed);
        let judged =
            trial::check_image(&mut checker, &item, workload, &traced.outcomes, image, &env)?;
        if judged.failure.is_none() {
            passed += 1;
        }
    }
    let check_secs = t.elapsed().as_secs_f64();
    checker.stop();
    Ok((passed, check_secs))
}

/// What the benchmark measured.
struct Figures<'a> {
    plain: &'a RunResult,
    plain_secs: f64,
    traced: &'a RunResult,
    traced_secs: f64,
    summary: &'a serde_json::Value,
    passed: usize,
    check_secs: f64,
}

/// Print the figures.
fn print_figures(args: &BenchTraceArgs, workload: &Workload, f: &Figures<'_>) {
    let Figures {
        plain,
        plain_secs,
        traced,
        traced_secs,
        summary,
        passed,
        check_secs,
    } = *f;
    let ops = workload.ops.len().max(1) as f64;
    let n = |k: &str| summary[k].as_f64().unwrap_or(0.0);
    let states = traced.images.len() as f64;
    println!(
        "workload                    seed {} ({}), {} ops",
        args.seed,
        args.profile,
        workload.ops.len()
    );
    println!(
        "run without plugin          {plain_secs:.1} s (boot {:.1} s, ops {:.2} s)",
        plain.boot.as_secs_f64(),
        plain.op_micros as f64 / 1e6
    );
    println!("run with plugin             {traced_secs:.1} s (boot {:.1} s, ops {:.2} s; includes building states)", traced.boot.as_secs_f64(), traced.op_micros as f64 / 1e6);
    println!(
        "slowdown (whole run)        {:.2}x",
        traced_secs / plain_secs
    );
    println!(
        "slowdown (boot)             {:.2}x",
        traced.boot.as_secs_f64() / plain.boot.as_secs_f64().max(1e-3)
    );
    println!(
        "slowdown (ops)              {:.2}x",
        traced.op_micros as f64 / (plain.op_micros as f64).max(1.0)
    );
    println!(
        "trace                       {:.0} bytes ({:.0} bytes per op; {} pmem stores, {} lines)",
        n("trace_bytes"),
        n("trace_bytes") / ops,
        summary["plugin"]["stores"],
        summary["lines_touched"]
    );
    println!(
        "crash states per run        {} ({} cuts, {} duplicates, {} over the bound)",
        traced.images.len(),
        summary["cuts"],
        summary["duplicates"],
        summary["over_bound"]
    );
    println!(
        "states built per minute     {:.0}",
        states * 60.0 / n("build_secs").max(1e-3)
    );
    println!(
        "states checked per minute   {:.1} ({passed} of {} passed)",
        states * 60.0 / check_secs.max(1e-3),
        traced.images.len()
    );
}
