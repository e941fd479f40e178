//! The campaign's worker threads. Workload workers draw items (a workload file or a seed),
//! run each item's trial (workload VM, crash images) and queue the images; checker workers each own one checker VM
//! and check images. Both report to the coordinator as [`WorkerMsg`]s and stop as soon as
//! the [`Stop`] says so: a stopped campaign draws no seed and boots no VM, and every crash
//! image still queued is dropped (which deletes it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use workloads::generator::{generate, Profile};
use workloads::oracle::{FsRules, Verdict};
use workloads::{OpOutcome, Workload};

use super::source::ItemSource;
use super::CampaignEnv;
use crate::checker::dedupe::SharedSeen;
use crate::checker::{Checker, CheckerSpec};
use crate::config::CampaignConfig;
use crate::coverage::SeedCoverage;
use crate::journal::events::Event;
use crate::records::TrialItem;
use crate::rundir::RunDir;
use crate::trial::{self, first_line, infra_verdict, CrashImage, Judged, TrialSetup};

/// Crash images queued per checker before a workload worker waits for the checks: the runs
/// stay about one seed ahead of the checks (a seed of the cache model makes up to 24 states),
/// so the images on disk stay bounded and a spent time budget leaves little to drain.
pub const QUEUED_IMAGES_PER_CHECKER: usize = 32;

/// How often a workload worker waiting on a full queue looks whether the campaign aborted.
const QUEUE_POLL: Duration = Duration::from_millis(50);

/// Whether workers may go on.
#[derive(Debug, Default)]
pub struct Stop(AtomicU8);

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const ABORTED: u8 = 2;

impl Stop {
    /// Draw no more seeds; work in flight finishes (first Ctrl-C, end of the time budget).
    pub fn drain(&self) {
        // Only upgrades: an abort is never turned back into a drain.
        let _ = self
            .0
            .compare_exchange(RUNNING, DRAINING, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Stop everything now: nothing more can be recorded.
    pub fn abort(&self) {
        self.0.store(ABORTED, Ordering::SeqCst);
    }

    /// May a worker draw another seed?
    pub fn may_draw(&self) -> bool {
        self.0.load(Ordering::SeqCst) == RUNNING
    }

    /// Was the campaign aborted?
    pub fn aborted(&self) -> bool {
        self.0.load(Ordering::SeqCst) == ABORTED
    }
}

/// One crash image to check, with what its check needs. Dropping it deletes the image.
pub struct CheckJob {
    /// The seed or workload.
    pub item: TrialItem,
    /// The seed of its crash plan (the seed, or the workload's `seed`).
    pub seed: u64,
    /// Its workload.
    pub workload: Arc<Workload>,
    /// The outcome of every op of the run.
    pub outcomes: Arc<Vec<Option<OpOutcome>>>,
    /// The image.
    pub image: CrashImage,
    /// The workload VM's console log.
    pub console: PathBuf,
}

/// What the workers tell the coordinator.
pub enum WorkerMsg {
    /// An event to record as it is (`seed_started`, `run_failed`, `run_done`).
    Record(Box<Event>),
    /// A crash image was checked, or its check failed (verdict and one line).
    Checked {
        /// The job (its image is deleted when the coordinator drops it).
        job: Box<CheckJob>,
        /// The check, or the infrastructure verdict and problem.
        result: Box<Result<Judged, (Verdict, String)>>,
    },
    /// A workload worker ended (no more items, a stop, or a fatal error it told).
    WorkloadWorkerEnded,
    /// Something that stops the campaign: the disk is full, a seed directory cannot be
    /// written.
    Fatal {
        /// What happened.
        cause: String,
    },
}

/// What every worker shares (each holds its own sender, so the coordinator sees the
/// channel close when the last worker ends). Owned, so that a worker stuck in a VM call
/// after an abort cannot keep the coordinator from returning.
#[derive(Clone)]
pub struct Shared {
    /// The config.
    pub cfg: Arc<CampaignConfig>,
    /// The environment.
    pub env: Arc<CampaignEnv>,
    /// The workload VM setup.
    pub setup: Arc<TrialSetup>,
    /// The run directory.
    pub run: Arc<RunDir>,
    /// Where items come from.
    pub seeds: Arc<Mutex<ItemSource>>,
    /// The workload inputs, by name (validated before any VM booted).
    pub inputs: Arc<BTreeMap<String, Arc<Workload>>>,
    /// Whether to go on.
    pub stop: Arc<Stop>,
    /// To the coordinator.
    pub events: UnboundedSender<WorkerMsg>,
    /// Read-backs of the crash images checked so far, shared by the checkers; `None` with
    /// `--no-dedupe` (every image is checked).
    pub seen: Option<SharedSeen>,
    /// (op label, errno) of the generated ops the kernel or file system refused as
    /// unsupported so far: each is said once per campaign.
    pub unsupported: Arc<Mutex<std::collections::BTreeSet<(String, i32)>>>,
}

impl Shared {
    /// Tell the coordinator; `false` if it is gone (then the worker stops).
    pub fn tell(&self, msg: WorkerMsg) -> bool {
        self.events.send(msg).is_ok()
    }

    /// The next item (with its workload when the source made it), unless the campaign
    /// stops or the disk is too full to record it.
    fn next_item(&self) -> Option<super::source::Drawn> {
        if !self.stop.may_draw() {
            return None;
        }
        let min = self.cfg.min_free_mib;
        match self.run.free_mib() {
            Ok(free) if free < min => {
                self.tell(WorkerMsg::Fatal {
                    cause: format!(
                        "only {free} MiB free in {} (min_free_mib is {min}): stopping before the disk fills",
                        self.run.root().display()
                    ),
                });
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.tell(WorkerMsg::Fatal {
                    cause: format!("checking free space: {e}"),
                });
                return None;
            }
        }
        match self.seeds.lock().ok()?.next_item() {
            Ok(d) => d,
            Err(cause) => {
                self.tell(WorkerMsg::Fatal { cause });
                None
            }
        }
    }

    /// Is `item` a workload a guided campaign derived (in this run, or an earlier one)?
    fn is_derived(&self, item: &TrialItem) -> bool {
        let derived_before =
            |n: &str| (self.env.guided.as_ref()).is_some_and(|g| g.derived.iter().any(|d| d == n));
        item.workload()
            .is_some_and(|n| !self.inputs.contains_key(n) || derived_before(n))
    }

    /// Feed a finished run's coverage to a guided campaign's corpus; `false` (the cause
    /// told) when the corpus cannot be written.
    fn observe(&self, item: &TrialItem, workload: &Workload, cov: &SeedCoverage) -> bool {
        let Some(map) = self.setup.coverage.as_ref().and_then(|c| c.built_map()) else {
            return true;
        };
        let Ok(mut source) = self.seeds.lock() else {
            return true;
        };
        let Some(g) = source.guided() else {
            return true;
        };
        match g.observe(item, workload, cov, &map) {
            Ok(()) => true,
            Err(e) => {
                drop(source);
                self.tell(WorkerMsg::Fatal {
                    cause: format!("guided corpus: {e}"),
                });
                false
            }
        }
    }
}

/// A workload worker: takes items until none are left or the campaign stops.
pub fn workload_worker(shared: &Shared, jobs: &SyncSender<CheckJob>, worker: usize) {
    let Ok(profile) = shared.cfg.profile.parse::<Profile>() else {
        shared.tell(WorkerMsg::Fatal {
            cause: format!("unknown profile `{}`", shared.cfg.profile),
        });
        return;
    };
    while let Some((item, made)) = shared.next_item() {
        let span = tracing::info_span!("item", %item, worker);
        let _e = span.enter();
        let workload = match (&item, made) {
            (_, Some(w)) => w,
            (TrialItem::Seed(seed), None) => Arc::new(generate(*seed, profile)),
            (TrialItem::Workload(name), None) => match shared.inputs.get(name) {
                Some(w) => w.clone(),
                None => {
                    shared.tell(WorkerMsg::Fatal {
                        cause: format!("{item}: not among the campaign's workload inputs"),
                    });
                    return;
                }
            },
        };
        if !shared.tell(WorkerMsg::Record(Box::new(Event::SeedStarted {
            item: item.clone(),
        }))) || !run_item(shared, jobs, &item, workload)
        {
            return;
        }
    }
}

/// The seed of an item's crash plan: the seed itself, or the workload's `seed`.
pub fn plan_seed(item: &TrialItem, workload: &Workload) -> u64 {
    item.seed().unwrap_or(workload.seed)
}

/// Run one item; `false` when the worker must stop.
fn run_item(
    shared: &Shared,
    jobs: &SyncSender<CheckJob>,
    item: &TrialItem,
    workload: Arc<Workload>,
) -> bool {
    let seed = plan_seed(item, &workload);
    let plan = trial::plan::plan(&workload, &shared.cfg.crash_points, seed);
    let seed_dir = match shared.run.write_workload(item, &workload) {
        Ok(d) => d,
        Err(e) => {
            shared.tell(WorkerMsg::Fatal {
                cause: format!("{item}: {e}"),
            });
            return false;
        }
    };
    let result = trial::run(
        &shared.setup,
        &workload,
        &plan,
        &seed_dir,
        &shared.env.work_vm_name(item),
    );
    if shared.stop.aborted() {
        return false;
    }
    let run = match result {
        Ok(r) => r,
        Err(e) if e.is_disk_full() => {
            shared.tell(WorkerMsg::Fatal {
                cause: format!("{item}: {e}"),
            });
            return false;
        }
        Err(e) => {
            let error_txt = seed_dir.join("error.txt");
            if let Err(w) = std::fs::write(&error_txt, e.to_string()) {
                shared.tell(WorkerMsg::Fatal {
                    cause: format!("writing {}: {w}", error_txt.display()),
                });
                return false;
            }
            return shared.tell(WorkerMsg::Record(Box::new(Event::RunFailed {
                item: item.clone(),
                verdict: infra_verdict(&e),
                problem: first_line(&e),
            })));
        }
    };
    if let Some(cov) = &run.coverage {
        if !shared.observe(item, &workload, cov) {
            return false;
        }
    }
    if item.workload().is_some() && !shared.is_derived(item) {
        warn_failed_ops(item, &workload, &run.outcomes);
    } else {
        warn_unsupported_once(&shared.unsupported, item, &workload, &run.outcomes);
    }
    let live_mismatch = trial::live_mismatches(&workload, &run).into_iter().next();
    let images = run.images.len();
    let outcomes = Arc::new(run.outcomes);
    let told = shared.tell(WorkerMsg::Record(Box::new(Event::RunDone {
        item: item.clone(),
        images,
        boot_ms: u64::try_from(run.boot.as_millis()).unwrap_or(u64::MAX),
        op_micros: run.op_micros,
        live_mismatch,
        phases: Some(run.phases),
    })));
    for image in run.images {
        let job = CheckJob {
            item: item.clone(),
            seed,
            workload: workload.clone(),
            outcomes: outcomes.clone(),
            image,
            console: run.console.clone(),
        };
        // A closed queue or an abort means the campaign stopped; the job (and its image) is
        // dropped.
        if !queue(jobs, job, &shared.stop) {
            return false;
        }
    }
    told
}

/// Put `job` on the bounded queue, waiting while it is full; `false` (the job dropped) when
/// the queue closed or the campaign aborted while waiting.
fn queue<T>(jobs: &SyncSender<T>, mut job: T, stop: &Stop) -> bool {
    loop {
        match jobs.try_send(job) {
            Ok(()) => return true,
            Err(TrySendError::Full(j)) if !stop.aborted() => {
                job = j;
                std::thread::sleep(QUEUE_POLL);
            }
            Err(_) => return false,
        }
    }
}

/// A checker worker: owns one checker VM (booted on first use, replaced when it fails) and
/// checks jobs until the queue closes. After an abort, queued jobs are dropped unchecked.
pub fn checker_worker(shared: &Shared, jobs: &Mutex<Receiver<CheckJob>>, index: usize) {
    let mut checker: Option<Checker> = None;
    let name = format!("checker-{index}");
    let rules = FsRules::for_fs(shared.cfg.filesystem.name());
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        if shared.stop.aborted() {
            continue;
        }
        let result = match check(shared, &mut checker, &name, &job, &rules) {
            Ok(r) => r,
            Err(cause) => {
                shared.tell(WorkerMsg::Fatal { cause });
                break;
            }
        };
        if shared.stop.aborted() {
            continue;
        }
        if !shared.tell(WorkerMsg::Checked {
            job: Box::new(job),
            result: Box::new(result),
        }) {
            break;
        }
    }
    if let Some(ck) = checker {
        ck.stop();
    }
}

/// The check's result, or `Err` with the cause when the campaign must stop (disk full).
fn check(
    shared: &Shared,
    checker: &mut Option<Checker>,
    name: &str,
    job: &CheckJob,
    rules: &FsRules,
) -> Result<Result<Judged, (Verdict, String)>, String> {
    if checker.is_none() {
        let env = &shared.env;
        let started = Checker::start(&CheckerSpec {
            image: &env.image,
            golden: &env.golden,
            accel: env.accel,
            dir: &shared.run.checkers(),
            name,
            debug: env.debug,
            check_timeout: Duration::from_secs(shared.cfg.check_timeout_secs),
            state: env.start.state(),
        });
        match started {
            Ok(mut c) => {
                c.set_dedupe(shared.seen.clone());
                *checker = Some(c)
            }
            Err(e) if e.is_disk_full() => return Err(format!("{name}: {e}")),
            Err(e) => {
                return Ok(Err((
                    infra_verdict(&e),
                    format!("{name} failed to boot: {}", first_line(&e)),
                )))
            }
        }
    }
    let Some(ck) = checker.as_mut() else {
        return Ok(Err((Verdict::AgentLost, format!("{name} vanished"))));
    };
    let env = trial::CheckEnv {
        rules,
        mutant: shared.cfg.mutant.as_deref(),
        modules: &shared.setup.image.user_modules,
    };
    match trial::check_image(
        ck,
        &job.item,
        &job.workload,
        &job.outcomes,
        &job.image,
        &env,
    ) {
        Ok(judged) => Ok(Ok(judged)),
        Err(e) if e.is_disk_full() => Err(format!("{name}: {e}")),
        Err(e) => {
            // A checker VM that failed once is not trusted again: replace it next time.
            *checker = None;
            let v = infra_verdict(&e);
            Ok(Err((v, format!("{name}: {v}: {}", first_line(&e)))))
        }
    }
}

/// Say which ops of a workload file failed in the guest. A spec expects every op to
/// succeed; one the file system does not support (e.g. `fallocate` collapse or insert range
/// returning EOPNOTSUPP) is taken by the oracle as having changed nothing, so its checks pass
/// without testing what the spec meant to.
fn warn_failed_ops(item: &TrialItem, workload: &Workload, outcomes: &[Option<OpOutcome>]) {
    for (k, (op, outcome)) in workload.ops.iter().zip(outcomes).enumerate() {
        let Some(errno) = outcome.and_then(|o| o.errno) else {
            continue;
        };
        tracing::warn!(
            "{item}: op {k} ({}) failed: {}; the oracle takes it as having changed nothing",
            op.label(),
            std::io::Error::from_raw_os_error(errno)
        );
    }
}

/// Errnos that say an op is not supported here (no such system call, operation or
/// feature, or one turned off: `kernel.io_uring_disabled`).
const UNSUPPORTED: [i32; 3] = [libc::ENOSYS, libc::EOPNOTSUPP, libc::EPERM];

/// Say once per campaign, per op kind and errno, that a generated op was refused as
/// unsupported: the oracle takes it as having changed nothing, so what it would have tested
/// is not tested on this kernel or file system.
fn warn_unsupported_once(
    seen: &Mutex<std::collections::BTreeSet<(String, i32)>>,
    item: &TrialItem,
    workload: &Workload,
    outcomes: &[Option<OpOutcome>],
) {
    let labels = workload.labels();
    for (k, outcome) in outcomes.iter().enumerate() {
        let Some(errno) = outcome
            .and_then(|o| o.errno)
            .filter(|e| UNSUPPORTED.contains(e))
        else {
            continue;
        };
        let label = labels.get(k).cloned().unwrap_or_default();
        let first = seen
            .lock()
            .map(|mut s| s.insert((label.clone(), errno)))
            .unwrap_or(false);
        if first {
            tracing::warn!(
                "{item}: op {k} ({label}) failed: {}; the oracle takes it as having changed \
                 nothing, so {label} is not tested here (said once per campaign)",
                std::io::Error::from_raw_os_error(errno)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    #[test]
    fn a_full_queue_waits_for_the_checks() {
        let (tx, rx) = sync_channel::<u32>(1);
        let stop = Stop::default();
        assert!(queue(&tx, 1, &stop));

        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            (rx.recv().unwrap(), rx.recv().unwrap())
        });
        let queued = queue(&tx, 2, &stop);

        assert!(queued);
        assert_eq!(taker.join().unwrap(), (1, 2));
    }

    #[test]
    fn an_abort_frees_a_worker_waiting_on_a_full_queue() {
        let (tx, _rx) = sync_channel::<u32>(1);
        let stop = Arc::new(Stop::default());
        assert!(queue(&tx, 1, &stop));

        let aborter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.abort();
            })
        };
        let queued = queue(&tx, 2, &stop);
        aborter.join().unwrap();

        assert!(!queued);
    }

    #[test]
    fn a_closed_queue_drops_the_job() {
        let (tx, rx) = sync_channel::<u32>(1);
        drop(rx);

        assert!(!queue(&tx, 1, &Stop::default()));
    }

    #[test]
    fn a_drained_campaign_still_queues_the_images_in_flight() {
        let (tx, rx) = sync_channel::<u32>(1);
        let stop = Stop::default();
        stop.drain();

        assert!(queue(&tx, 7, &stop));
        assert_eq!(rx.recv().unwrap(), 7);
    }
}
