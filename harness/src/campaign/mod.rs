//! The campaign: seeds → workload runs with crash points → checks → verdicts, failure
//! directories, the results journal, the summary and `report.json`.

pub mod config;
pub mod failure;
pub mod journal;
pub mod plan;
pub mod run;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use workloads::generator::{generate, Profile};
use workloads::oracle::{expectation, live_state, FsRules, Verdict};

use crate::checker::Checker;
use crate::image::{GoldenImage, GuestImage};
use crate::vm::{Accel, VmError};
use config::CampaignConfig;
use journal::{Journal, JournalEntry};
use run::RunSetup;

/// Result of one crash-image check, as journaled and reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Seed.
    pub seed: u64,
    /// Crash point label ("after op 7 (fsync)").
    pub point: String,
    /// Verdict name.
    pub verdict: Verdict,
    /// Failure title (for failures).
    pub title: Option<String>,
    /// Check time, ms.
    pub millis: u64,
}

/// Totals of a campaign.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Seeds run.
    pub seeds: usize,
    /// Crash images checked.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Kernel-bug verdicts.
    pub failures: usize,
    /// Infrastructure verdicts.
    pub infra: usize,
    /// Distinct failure titles.
    pub distinct_failures: BTreeSet<String>,
    /// Infrastructure problems (one line each).
    pub infra_problems: Vec<String>,
}

/// Everything the campaign needs that is not in its config.
pub struct CampaignEnv {
    /// Guest image.
    pub image: GuestImage,
    /// Golden pmem.
    pub golden: GoldenImage,
    /// Accelerator.
    pub accel: Accel,
    /// Run directory.
    pub dir: PathBuf,
    /// `--debug`.
    pub debug: bool,
    /// Show progress bars (stderr is a TTY).
    pub progress: bool,
    /// The command line to re-run one seed.
    pub repro_base: String,
}

/// Classify an infrastructure error.
pub fn infra_verdict(e: &VmError) -> Verdict {
    match e {
        VmError::GuestPanic { .. } => Verdict::GuestPanic,
        VmError::BootTimeout { .. }
        | VmError::QemuDied { .. }
        | VmError::QemuMissing { .. }
        | VmError::Spawn(_) => Verdict::BootFailed,
        VmError::Guest(m) if m.contains("timeout") => Verdict::Timeout,
        _ => Verdict::AgentLost,
    }
}

/// Run the campaign; returns the totals (the caller maps them to an exit code).
pub fn run_campaign(cfg: &CampaignConfig, env: &CampaignEnv) -> anyhow::Result<Totals> {
    use anyhow::Context;
    std::fs::create_dir_all(&env.dir)
        .with_context(|| format!("creating run directory {}", env.dir.display()))?;
    std::fs::write(env.dir.join("config.yaml"), serde_yaml::to_string(cfg)?)
        .with_context(|| format!("writing {}", env.dir.join("config.yaml").display()))?;
    let mut journal = Journal::open(&env.dir.join("journal.jsonl"))
        .with_context(|| format!("opening the journal in {}", env.dir.display()))?;
    let done_seeds = journal.finished_seeds();
    let profile: Profile = cfg.profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = FsRules::for_fs(cfg.filesystem.name());
    let setup = RunSetup {
        image: env.image.clone(),
        golden: env.golden.clone(),
        accel: env.accel,
        mutant: cfg.mutant.clone(),
        ext4_commit_secs: cfg.ext4_commit_secs,
        timeout: Duration::from_secs(cfg.run_timeout_secs),
        debug: env.debug,
    };
    let seeds = cfg.seed_list();
    let bars = crate::ui::Progress::new(env.progress, seeds.len() as u64);
    let mut totals = journal.totals();
    let mut checker: Option<Checker> = None;
    let failures_dir = env.dir.join("failures");
    for seed in seeds {
        if done_seeds.contains(&seed) {
            bars.seed_done();
            continue;
        }
        let span = tracing::info_span!("seed", seed);
        let _e = span.enter();
        let workload = generate(seed, profile);
        let plan = plan::plan(&workload, &cfg.crash_points, seed);
        let seed_dir = env.dir.join("seeds").join(seed.to_string());
        std::fs::create_dir_all(&seed_dir)?;
        std::fs::write(
            seed_dir.join("workload.yaml"),
            serde_yaml::to_string(&workload)?,
        )?;
        bars.message(&format!("seed {seed}: running {} ops", workload.ops.len()));
        let started = Instant::now();
        let run =
            match run::run_workload(&setup, &workload, &plan, &seed_dir, &format!("work-{seed}")) {
                Ok(r) => r,
                Err(e) => {
                    let v = infra_verdict(&e);
                    let line = format!(
                        "seed {seed}: {v}: {}",
                        e.to_string().lines().next().unwrap_or("")
                    );
                    eprintln!("{line}");
                    journal.append(&JournalEntry::SeedDone {
                        seed,
                        infra: Some(line.clone()),
                    })?;
                    totals.infra += 1;
                    totals.infra_problems.push(line);
                    totals.seeds += 1;
                    bars.seed_done();
                    continue;
                }
            };
        let live = live_state(&workload, &run.outcomes);
        let live_ok = live.len() == run.live.values().filter(|o| o.exists).count()
            && live
                .iter()
                .all(|(n, d)| run.live.get(n).is_some_and(|o| o.exists && &o.data == d));
        if !live_ok {
            let line = format!("seed {seed}: the live file system differs from the oracle's no-crash state (oracle/agent disagreement, not counted as a kernel bug)");
            eprintln!("{line}");
            totals.infra += 1;
            totals.infra_problems.push(line);
        }
        bars.add_checks(run.images.len() as u64);
        for img in &run.images {
            let exp = expectation(&workload, &run.outcomes, img.point, &rules);
            let label = exp.crash_label();
            if checker.is_none() {
                bars.message("booting checker VM");
                checker = Some(
                    Checker::start(
                        &env.image,
                        &env.golden,
                        env.accel,
                        &env.dir.join("checkers"),
                        "checker-0",
                        env.debug,
                    )
                    .context("starting the checker VM")?,
                );
            }
            let Some(ck) = checker.as_mut() else { continue };
            bars.message(&format!("seed {seed}: checking {label}"));
            let record = match ck.check(&img.path, &exp) {
                Ok(outcome) => {
                    let title = (outcome.verdict != Verdict::Pass).then(|| {
                        outcome
                            .findings
                            .first()
                            .map_or_else(|| format!("{}: {label}", outcome.verdict), |f| f.title())
                    });
                    if let Some(t) = &title {
                        if outcome.verdict.is_kernel_bug()
                            && totals.distinct_failures.insert(t.clone())
                        {
                            let repro = format!("{} --seeds {seed}..={seed}", env.repro_base);
                            let consoles = [run.console.clone()];
                            let d = failure::write_failure_dir(
                                &failures_dir,
                                t,
                                &workload,
                                &exp,
                                &outcome,
                                &img.path,
                                &consoles,
                                &repro,
                            )?;
                            bars.println(&format!("FAIL {t}\n     {}", d.display()));
                        }
                    }
                    CheckRecord {
                        seed,
                        point: label,
                        verdict: outcome.verdict,
                        title,
                        millis: outcome.millis,
                    }
                }
                Err(e) => {
                    // The checker VM stopped answering: replace it.
                    if let Some(old) = checker.take() {
                        drop(old);
                    }
                    let v = infra_verdict(&e);
                    let line = format!(
                        "seed {seed} {label}: checker {v}: {}",
                        e.to_string().lines().next().unwrap_or("")
                    );
                    totals.infra_problems.push(line);
                    CheckRecord {
                        seed,
                        point: label,
                        verdict: v,
                        title: None,
                        millis: 0,
                    }
                }
            };
            match record.verdict {
                Verdict::Pass => totals.passed += 1,
                v if v.is_kernel_bug() => totals.failures += 1,
                _ => totals.infra += 1,
            }
            totals.checks += 1;
            journal.append(&JournalEntry::Check(record.clone()))?;
            if record.verdict == Verdict::Pass || !record.verdict.is_kernel_bug() {
                let _ = std::fs::remove_file(&img.path);
            }
            bars.check_done(record.verdict);
        }
        // Crash images of failures are kept in their failure dirs; drop the rest.
        for img in &run.images {
            let _ = std::fs::remove_file(&img.path);
        }
        tracing::info!(secs = started.elapsed().as_secs_f64(), "seed done");
        journal.append(&JournalEntry::SeedDone { seed, infra: None })?;
        totals.seeds += 1;
        bars.seed_done();
    }
    if let Some(ck) = checker.take() {
        ck.stop();
    }
    bars.finish();
    Ok(totals)
}

/// Write `report.json` (schema version 1) into the run directory.
pub fn write_report(
    dir: &Path,
    cfg: &CampaignConfig,
    env: &CampaignEnv,
    totals: &Totals,
    records: &[CheckRecord],
) -> std::io::Result<()> {
    let by_verdict: BTreeMap<String, usize> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.verdict.to_string()).or_insert(0) += 1;
        m
    });
    let report = serde_json::json!({
        "schema": 1,
        "powercut": env!("CARGO_PKG_VERSION"),
        "rng": workloads::generator::RNG,
        "kernel": env.image.kernel_version,
        "image": env.image.hash,
        "accelerator": env.accel.to_string(),
        "crash_model": cfg.crash_model,
        "filesystem": cfg.filesystem,
        "mutant": cfg.mutant,
        "totals": totals,
        "by_verdict": by_verdict,
        "checks": records,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
}
