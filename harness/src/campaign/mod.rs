//! The campaign: seeds → workload runs with crash points → checks → verdicts, failure
//! directories, the results journal, the summary and `report.json`.

pub mod budget;
pub mod cache_env;
pub mod cache_run;
pub mod config;
pub mod failure;
pub mod journal;
pub mod plan;
pub mod run;
pub mod signals;
pub mod snapshot;
pub mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use crate::image::{GoldenImage, GuestImage};
use crate::vm::{Accel, VmError};
use budget::SeedSource;
use config::CampaignConfig;
use journal::{Journal, JournalEntry};
use run::RunSetup;
use workers::{CampaignEvent, CheckJob};

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
    /// The failure matched a suppression (a known bug): reported, not failing the run.
    #[serde(default)]
    pub suppressed: bool,
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
    /// Failures matching a suppression (known bugs), by title.
    pub suppressed: BTreeSet<String>,
}

impl Totals {
    /// Count one check record.
    pub fn add(&mut self, r: &CheckRecord) {
        self.checks += 1;
        match r.verdict {
            Verdict::Pass => self.passed += 1,
            v if v.is_kernel_bug() && r.suppressed => {
                if let Some(t) = &r.title {
                    self.suppressed.insert(t.clone());
                }
            }
            v if v.is_kernel_bug() => {
                self.failures += 1;
                if let Some(t) = &r.title {
                    self.distinct_failures.insert(t.clone());
                }
            }
            _ => self.infra += 1,
        }
    }
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
    /// The cache crash model's plugin and NVDIMM range (`crash_model: cache` only).
    pub cache: Option<cache_env::CacheEnv>,
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
    let suppressions = cfg
        .suppression_regexes()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let budget = cfg.budget().map_err(|e| anyhow::anyhow!("{e}"))?;
    let setup = RunSetup {
        image: env.image.clone(),
        golden: env.golden.clone(),
        accel: env.accel,
        mutant: cfg.mutant.clone(),
        ext4_commit_secs: cfg.ext4_commit_secs,
        timeout: Duration::from_secs(cfg.run_timeout_secs),
        debug: env.debug,
    };
    let listed = cfg.seed_list();
    let seeds = Mutex::new(SeedSource::new(
        listed.clone(),
        journal.finished_seeds(),
        budget,
    ));
    let bars = crate::ui::Progress::new(env.progress, listed.len() as u64);
    for _ in journal
        .finished_seeds()
        .iter()
        .filter(|s| listed.contains(s))
    {
        bars.seed_done();
    }
    let mut totals = journal.totals(&suppressions);
    let failures_dir = env.dir.join("failures");
    let (workers, checkers) = cfg.parallelism();
    let (job_tx, job_rx) = mpsc::channel::<CheckJob>();
    let job_rx = Mutex::new(job_rx);
    let (ev_tx, ev_rx) = mpsc::channel::<CampaignEvent>();
    let mut kept_images = 0usize;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for w in 0..workers {
            let (jobs, events, seeds, setup) = (job_tx.clone(), ev_tx.clone(), &seeds, &setup);
            scope
                .spawn(move || workers::workload_worker(cfg, env, setup, seeds, &jobs, &events, w));
        }
        for c in 0..checkers {
            let (events, job_rx) = (ev_tx.clone(), &job_rx);
            scope.spawn(move || workers::checker_worker(cfg, env, job_rx, &events, c));
        }
        drop(job_tx);
        drop(ev_tx);
        // seed → (checks expected once its run is done, checks done)
        // seed → (checks expected once its run is done, checks done, infrastructure note)
        let mut pending: BTreeMap<u64, (Option<usize>, usize, Option<String>)> = BTreeMap::new();
        for ev in ev_rx {
            let finished_seed = match ev {
                CampaignEvent::SeedStarted { seed } => {
                    journal.append(&JournalEntry::SeedStarted { seed })?;
                    pending.insert(seed, (None, 0, None));
                    bars.message(&format!("seed {seed}: running"));
                    None
                }
                CampaignEvent::RunFailed {
                    seed,
                    verdict,
                    line,
                } => {
                    bars.println(&format!("INFRA {line}"));
                    tracing::warn!(%verdict, "{line}");
                    journal.append(&JournalEntry::SeedDone {
                        seed,
                        infra: Some(line.clone()),
                    })?;
                    totals.infra += 1;
                    totals.infra_problems.push(line);
                    totals.seeds += 1;
                    pending.remove(&seed);
                    bars.seed_done();
                    None
                }
                CampaignEvent::RunDone {
                    seed,
                    images,
                    live_ok,
                } => {
                    bars.add_checks(images as u64);
                    let entry = pending.entry(seed).or_insert((None, 0, None));
                    entry.0 = Some(images);
                    if !live_ok {
                        let line = format!("seed {seed}: the live file system differs from the oracle's no-crash state (oracle/agent disagreement, not counted as a kernel bug)");
                        bars.println(&format!("INFRA {line}"));
                        totals.infra += 1;
                        totals.infra_problems.push(line.clone());
                        entry.2 = Some(line);
                    }
                    (entry.1 >= images).then_some(seed)
                }
                CampaignEvent::CheckDone { job, outcome } => {
                    let label = job.exp.crash_label();
                    let record = match outcome {
                        Ok(outcome) => {
                            let title = (outcome.verdict != Verdict::Pass).then(|| {
                                // Title from the finding that decided the verdict.
                                outcome
                                    .findings
                                    .iter()
                                    .find(|f| f.verdict == outcome.verdict)
                                    .map_or_else(
                                        || format!("{}: {label}", outcome.verdict),
                                        |f| f.title(),
                                    )
                            });
                            let suppressed = title
                                .as_ref()
                                .is_some_and(|t| suppressions.iter().any(|r| r.is_match(t)));
                            if let Some(t) = &title {
                                if outcome.verdict.is_kernel_bug()
                                    && !suppressed
                                    && !failures_dir.join(failure::slug(t)).exists()
                                {
                                    let repro = format!(
                                        "{} --seeds {}..={}",
                                        env.repro_base, job.seed, job.seed
                                    );
                                    let keep = kept_images < cfg.keep_failure_images;
                                    kept_images += usize::from(keep);
                                    let d = failure::write_failure_dir(
                                        &failures_dir,
                                        t,
                                        &job.workload,
                                        &job.exp,
                                        &outcome,
                                        keep.then_some(job.image.path.as_path()),
                                        std::slice::from_ref(&job.console),
                                        &repro,
                                    )?;
                                    failure::write_mutant(&d, cfg.mutant.as_deref())?;
                                    cache_run::copy_lost_lines(&job.image.path, &d);
                                    bars.println(&format!("FAIL {t}\n     {}", d.display()));
                                }
                            }
                            CheckRecord {
                                seed: job.seed,
                                point: label,
                                verdict: outcome.verdict,
                                title,
                                millis: outcome.millis,
                                suppressed,
                            }
                        }
                        Err((verdict, line)) => {
                            bars.println(&format!("INFRA {line}"));
                            totals.infra_problems.push(line);
                            CheckRecord {
                                seed: job.seed,
                                point: label,
                                verdict,
                                title: None,
                                millis: 0,
                                suppressed: false,
                            }
                        }
                    };
                    totals.add(&record);
                    journal.append(&JournalEntry::Check(record.clone()))?;
                    let _ = std::fs::remove_file(&job.image.path);
                    bars.check_done(record.verdict);
                    let entry = pending.entry(job.seed).or_insert((None, 0, None));
                    entry.1 += 1;
                    entry.0.is_some_and(|n| entry.1 >= n).then_some(job.seed)
                }
            };
            if let Some(seed) = finished_seed {
                let infra = pending.remove(&seed).and_then(|p| p.2);
                journal.append(&JournalEntry::SeedDone { seed, infra })?;
                totals.seeds += 1;
                bars.seed_done();
            }
        }
        Ok(())
    })?;
    bars.finish();
    if signals::stop_requested() {
        eprintln!(
            "interrupted: finished in-flight work; continue with --resume --output {}",
            env.dir.display()
        );
    }
    Ok(totals)
}
