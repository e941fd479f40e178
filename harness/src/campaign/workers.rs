//! The campaign's threads: workload workers (boot a VM per seed, run the workload, take crash
//! images, compute expectations) and checker workers (each owns one checker VM and checks
//! crash images). Both report to the coordinator as [`CampaignEvent`]s over a channel.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workloads::generator::{generate, Profile};
use workloads::oracle::{expectation, live_state, Expectation, FsRules, Verdict};
use workloads::Workload;

use super::budget::SeedSource;
use super::config::{CampaignConfig, CrashModel};
use super::run::{CrashImage, RunResult, RunSetup};
use super::{infra_verdict, plan, run, signals, CampaignEnv};
use crate::checker::{CheckOutcome, Checker};
use crate::vm::VmError;

/// One crash image to check.
pub struct CheckJob {
    /// Seed.
    pub seed: u64,
    /// Its workload.
    pub workload: Arc<Workload>,
    /// The image.
    pub image: CrashImage,
    /// What the oracle expects in it.
    pub exp: Expectation,
    /// Console log of the workload VM.
    pub console: PathBuf,
}

/// What the threads tell the coordinator.
pub enum CampaignEvent {
    /// A worker took a seed.
    SeedStarted {
        /// Seed.
        seed: u64,
    },
    /// The seed's run failed for infrastructure reasons (no checks follow).
    RunFailed {
        /// Seed.
        seed: u64,
        /// Verdict (boot-failed, …).
        verdict: Verdict,
        /// One line.
        line: String,
    },
    /// The seed's run finished; `images` checks follow.
    RunDone {
        /// Seed.
        seed: u64,
        /// Crash images sent to the checkers.
        images: usize,
        /// Did the live file system match the oracle's no-crash state?
        live_ok: bool,
    },
    /// A crash image was checked (or its checker failed).
    CheckDone {
        /// The job.
        job: Box<CheckJob>,
        /// Outcome, or the infrastructure verdict and line.
        outcome: Result<CheckOutcome, (Verdict, String)>,
    },
}

/// Run one seed's workload under the configured crash model. (Crash-model dispatch point.)
pub fn execute_run(
    (cfg, env): (&CampaignConfig, &CampaignEnv),
    setup: &RunSetup,
    workload: &Workload,
    plan: &plan::CrashPlan,
    dir: &std::path::Path,
    name: &str,
) -> Result<RunResult, VmError> {
    match cfg.crash_model {
        CrashModel::Snapshot => run::run_workload(setup, workload, plan, dir, name),
        CrashModel::Cache => super::cache_run::run_workload(
            setup,
            env.cache.as_ref(),
            &cfg.cache,
            workload,
            dir,
            name,
        ),
    }
}

/// A workload worker: takes seeds until none are left or a stop is requested.
pub fn workload_worker(
    cfg: &CampaignConfig,
    env: &CampaignEnv,
    setup: &RunSetup,
    seeds: &Mutex<SeedSource>,
    jobs: &Sender<CheckJob>,
    events: &Sender<CampaignEvent>,
    worker: usize,
) {
    let Ok(profile) = cfg.profile.parse::<Profile>() else {
        return;
    };
    let rules = FsRules::for_fs(cfg.filesystem.name());
    loop {
        if signals::stop_requested() {
            break;
        }
        let Some(seed) = seeds.lock().ok().and_then(|mut s| s.next_seed()) else {
            break;
        };
        let span = tracing::info_span!("seed", seed, worker);
        let _e = span.enter();
        let _ = events.send(CampaignEvent::SeedStarted { seed });
        let workload = Arc::new(generate(seed, profile));
        let plan = plan::plan(&workload, &cfg.crash_points, seed);
        let seed_dir = env.dir.join("seeds").join(seed.to_string());
        let written = std::fs::create_dir_all(&seed_dir).and_then(|()| {
            std::fs::write(
                seed_dir.join("workload.yaml"),
                serde_yaml::to_string(&*workload).unwrap_or_default(),
            )
        });
        if let Err(e) = written {
            let _ = events.send(CampaignEvent::RunFailed {
                seed,
                verdict: Verdict::BootFailed,
                line: format!("seed {seed}: writing {}: {e}", seed_dir.display()),
            });
            continue;
        }
        let name = format!("work-{seed}");
        let run = match execute_run((cfg, env), setup, &workload, &plan, &seed_dir, &name) {
            Ok(r) => r,
            Err(e) => {
                let verdict = infra_verdict(&e);
                let first = e.to_string().lines().next().unwrap_or("").to_owned();
                let _ = std::fs::write(seed_dir.join("error.txt"), e.to_string());
                let _ = events.send(CampaignEvent::RunFailed {
                    seed,
                    verdict,
                    line: format!("seed {seed}: {verdict}: {first}"),
                });
                continue;
            }
        };
        let live = live_state(&workload, &run.outcomes);
        let live_ok = live.len() == run.live.values().filter(|o| o.exists).count()
            && live
                .iter()
                .all(|(n, d)| run.live.get(n).is_some_and(|o| o.exists && &o.data == d));
        let images = run.images.len();
        for image in run.images {
            let exp = expectation(&workload, &run.outcomes, image.point, &rules);
            let _ = jobs.send(CheckJob {
                seed,
                workload: workload.clone(),
                image,
                exp,
                console: run.console.clone(),
            });
        }
        let _ = events.send(CampaignEvent::RunDone {
            seed,
            images,
            live_ok,
        });
    }
}

/// A checker worker: owns one checker VM (booted on first use, replaced when it stops
/// answering) and checks jobs until the job channel closes.
pub fn checker_worker(
    cfg: &CampaignConfig,
    env: &CampaignEnv,
    jobs: &Mutex<Receiver<CheckJob>>,
    events: &Sender<CampaignEvent>,
    index: usize,
) {
    let mut checker: Option<Checker> = None;
    let name = format!("checker-{index}");
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        if checker.is_none() {
            match Checker::start(
                &env.image,
                &env.golden,
                env.accel,
                &env.dir.join("checkers"),
                &name,
                env.debug,
                Duration::from_secs(cfg.check_timeout_secs),
            ) {
                Ok(c) => checker = Some(c),
                Err(e) => {
                    let v = infra_verdict(&e);
                    let line = format!(
                        "{name} failed to boot: {}",
                        e.to_string().lines().next().unwrap_or("")
                    );
                    let _ = events.send(CampaignEvent::CheckDone {
                        job: Box::new(job),
                        outcome: Err((v, line)),
                    });
                    continue;
                }
            }
        }
        let Some(ck) = checker.as_mut() else { continue };
        let outcome = match ck.check(&job.image.path, &job.exp) {
            Ok(o) => Ok(o),
            Err(e) => {
                // The checker VM stopped answering or failed: replace it for the next job.
                checker = None;
                let v = infra_verdict(&e);
                Err((
                    v,
                    format!(
                        "{name}: {v}: {}",
                        e.to_string().lines().next().unwrap_or("")
                    ),
                ))
            }
        };
        let _ = events.send(CampaignEvent::CheckDone {
            job: Box::new(job),
            outcome,
        });
    }
    if let Some(ck) = checker {
        ck.stop();
    }
}
