//! The coordinator: one tokio `select!` over the workers' messages, the time budget's
//! deadline and SIGINT/SIGTERM. It alone turns messages into events, appends them to the
//! journal, folds them, writes failure directories and hands each event to the caller's
//! [`EventSink`] (the progress display). Any error
//! it cannot record (journal, failure directory, a full disk) stops the campaign at once:
//! workers draw no more seeds, every VM in flight is killed, every crash image is deleted,
//! and the campaign ends with [`CampaignError::Fatal`] naming the cause.

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::balance::Limits;
use super::pool::Pool;
use super::workers::{CheckJob, Shared, Stop, WorkerMsg};
use super::{CampaignEnv, CampaignError, CampaignOutcome};
use crate::checker::dedupe::SeenImages;
use crate::config::shard;
use crate::config::CampaignConfig;
use crate::journal::events::{CheckRecord, Event};
use crate::journal::fold::{is_suppressed, CampaignState};
use crate::journal::sink::EventSink;
use crate::journal::JournalWriter;
use crate::records::finding::CrashLabel;
use crate::records::TrialItem;
use crate::rundir::failure::{self, FailureRecord, Instance, NewFailure, FAILURE_SCHEMA};
use crate::rundir::RunDir;
use crate::trial::TrialSetup;
use workloads::Workload;

/// After an abort (second Ctrl-C, or an error that cannot be recorded), how long the
/// workers get to notice that their VMs were killed before the process exits anyway.
pub const ABORT_GRACE: Duration = Duration::from_secs(20);

/// Run the campaign of `cfg` in `env`.
pub fn run(
    cfg: &CampaignConfig,
    env: &CampaignEnv,
    sink: &mut dyn EventSink,
) -> Result<CampaignOutcome, CampaignError> {
    let run = RunDir::new(&env.dir);
    let (mut journal, events) = JournalWriter::open_for(
        &run.journal(),
        env.kernel.as_ref().map(|k| k.name.as_str()),
        cfg.shard,
    )?;
    let mut state = CampaignState::of(&events);
    let swept = run.remove_crash_images();
    if swept > 0 {
        tracing::info!(swept, "removed crash images left by an earlier, killed run");
    }
    rewrite_instances(&run, &state)?;
    let free = run.free_mib()?;
    if free < cfg.min_free_mib {
        return Err(CampaignError::Fatal(format!(
            "only {free} MiB free in {} (min_free_mib is {}); free some space or lower min_free_mib",
            env.dir.display(),
            cfg.min_free_mib
        )));
    }
    super::boot_console::keep(&env.dir, env);
    let suppressions = cfg
        .suppression_regexes()
        .map_err(|e| CampaignError::Fatal(format!("suppressions: {e}")))?;
    let budget = cfg
        .budget()
        .map_err(|e| CampaignError::Fatal(format!("time_budget: {e}")))?;
    let (workers, checkers) = cfg.parallelism();
    let resumed = !events.is_empty();
    let started = Event::Started {
        resumed,
        workers,
        checkers,
    };
    journal.append(&started)?;
    state.apply(&started);
    let names = env.input_names();
    let share = shard::share(
        &names,
        &cfg.seed_list(),
        cfg.shard,
        env.kernel.as_ref().map_or(0, |k| k.index),
    );
    let mut listed: Vec<TrialItem> = share
        .workloads
        .iter()
        .cloned()
        .map(TrialItem::Workload)
        .collect();
    listed.extend(share.seeds.iter().copied().map(TrialItem::Seed));
    sink.begin(&state, &listed);
    let seeds = Arc::new(Mutex::new(super::guided::item_source(
        cfg,
        env,
        share,
        &state.finished_items(),
        budget,
    )));
    let source = Arc::clone(&seeds);
    let inputs: Arc<BTreeMap<String, Arc<Workload>>> = env
        .inputs
        .iter()
        .map(|(n, w)| (n.clone(), Arc::new(w.clone())))
        .collect::<BTreeMap<_, _>>()
        .into();
    let setup = Arc::new(TrialSetup {
        image: env.image.clone(),
        golden: env.golden.clone(),
        accel: env.accel,
        mutant: cfg.mutant.clone(),
        ext4_commit_secs: cfg.ext4_commit_secs,
        timeout: Duration::from_secs(cfg.run_timeout_secs),
        debug: env.debug,
        model: env.model.clone(),
        start: env.start.clone(),
        coverage: env.coverage.clone(),
    });
    let stop = Arc::new(Stop::default());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // Bounded: the runs wait for the checks instead of piling crash images up on disk.
    let (job_tx, job_rx) =
        mpsc::sync_channel::<CheckJob>(checkers.max(1) * super::workers::QUEUED_IMAGES_PER_CHECKER);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let shared = Shared {
        cfg: Arc::new(cfg.clone()),
        env: Arc::new(env.clone()),
        setup,
        run: Arc::new(run.clone()),
        seeds,
        inputs,
        stop: Arc::clone(&stop),
        events: tx,
        seen: env.dedupe.then(SeenImages::shared),
        unsupported: Arc::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CampaignError::Fatal(format!("starting the coordinator: {e}")))?;
    let mut coord = Coordinator {
        cfg,
        env,
        run: &run,
        journal,
        state,
        sink,
        suppressions,
        stop: &stop,
        kept_images: 0,
        fatal: None,
        interrupts: 0,
        abort_deadline: None,
        abandoned: false,
        pool: None,
    };
    let deadline = budget.and_then(|b| Instant::now().checked_add(b));
    let auto = cfg.auto_balance().then(|| Limits {
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        max_vms: crate::config::machine_memory_vms()
            .min(crate::config::limits::MAX_VMS)
            .max(workers + checkers),
        fixed_workers: cfg.workers.exactly(),
        fixed_checkers: cfg.checkers.exactly(),
    });
    coord.pool = Some(Pool::start(
        shared,
        job_tx,
        job_rx,
        (workers, checkers),
        auto,
    ));
    runtime.block_on(coord.coordinate(rx, deadline));
    super::guided::finish(&source, coord.sink);
    let threads = coord
        .pool
        .take()
        .map(Pool::into_threads)
        .unwrap_or_default();
    if !coord.abandoned {
        // Every worker has ended (the channel closed): join them, passing on a panic.
        for t in threads {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
    coord.finish()
}

/// The coordinator's state.
struct Coordinator<'a, 's> {
    cfg: &'a CampaignConfig,
    env: &'a CampaignEnv,
    run: &'a RunDir,
    journal: JournalWriter,
    state: CampaignState,
    sink: &'s mut dyn EventSink,
    suppressions: Vec<regex::Regex>,
    stop: &'a Stop,
    kept_images: usize,
    fatal: Option<String>,
    interrupts: usize,
    abort_deadline: Option<tokio::time::Instant>,
    /// The workers did not end within [`ABORT_GRACE`] of an abort: they are left behind.
    abandoned: bool,
    /// The worker threads (`None` before they start and after the last has ended).
    pool: Option<Pool>,
}

impl Coordinator<'_, '_> {
    /// Take messages until every worker has ended.
    async fn coordinate(
        &mut self,
        mut rx: UnboundedReceiver<WorkerMsg>,
        deadline: Option<Instant>,
    ) {
        let (mut sigint, mut sigterm) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                self.fail(format!("installing the SIGINT/SIGTERM handlers: {e}"));
                return self.drain(&mut rx).await;
            }
        };
        let budget_end = tokio::time::Instant::from_std(deadline.unwrap_or_else(far_future));
        let mut budget_spent = deadline.is_none();
        loop {
            let abort_at = self.abort_deadline;
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => return,
                },
                _ = sigint.recv() => self.interrupt(),
                _ = sigterm.recv() => self.interrupt(),
                () = tokio::time::sleep_until(budget_end), if !budget_spent => {
                    budget_spent = true;
                    self.drain_workers();
                    self.sink.note("time budget spent: finishing the work in flight");
                }
                () = tokio::time::sleep_until(abort_at.unwrap_or(budget_end)), if abort_at.is_some() => {
                    self.abandoned = true;
                    return;
                }
            }
        }
    }

    /// After a failure to install handlers: just take messages until the workers end.
    async fn drain(&mut self, rx: &mut UnboundedReceiver<WorkerMsg>) {
        while let Some(m) = rx.recv().await {
            self.handle(m);
        }
    }

    fn interrupt(&mut self) {
        self.interrupts += 1;
        if self.interrupts == 1 && !self.stop.aborted() {
            self.drain_workers();
            self.sink.note(
                "interrupted: finishing the runs and checks in flight (Ctrl-C again to kill them)",
            );
        } else {
            self.sink.note("interrupted again: killing every VM");
            self.abort();
        }
    }

    /// Let the workers finish what they are doing and draw nothing new; start no VM more.
    fn drain_workers(&mut self) {
        self.stop.drain();
        if let Some(p) = &mut self.pool {
            p.stop_growing();
        }
    }

    /// Kill every VM and stop the workers.
    fn abort(&mut self) {
        if let Some(p) = &mut self.pool {
            p.stop_growing();
        }
        if self.abort_deadline.is_none() {
            self.abort_deadline = Some(tokio::time::Instant::now() + ABORT_GRACE);
        }
        self.stop.abort();
        crate::host::process::kill_all();
    }

    /// An error that cannot be recorded: stop everything, keep the first cause.
    fn fail(&mut self, cause: String) {
        if self.fatal.is_some() {
            return;
        }
        self.sink.note(&format!("FATAL {cause}"));
        self.abort();
        // Best effort: the journal may be what failed.
        let stopped = Event::Stopped {
            reason: cause.clone(),
        };
        if self.journal.append(&stopped).is_ok() {
            self.state.apply(&stopped);
        }
        self.fatal = Some(cause);
    }

    fn handle(&mut self, msg: WorkerMsg) {
        if self.fatal.is_some() {
            // Dropping the message deletes any crash image it holds.
            return;
        }
        if let Err(cause) = self.record_msg(msg) {
            self.fail(cause);
        }
    }

    fn record_msg(&mut self, msg: WorkerMsg) -> Result<(), String> {
        match msg {
            WorkerMsg::Record(e) => {
                let e = *e;
                let item = match &e {
                    Event::RunFailed { item, .. } | Event::RunDone { item, .. } => {
                        Some(item.clone())
                    }
                    _ => None,
                };
                self.record(e)?;
                item.map_or(Ok(()), |s| self.seed_maybe_done(&s))
            }
            WorkerMsg::Checked { job, result } => self.checked(&job, *result),
            WorkerMsg::WorkloadWorkerEnded => {
                if let Some(note) = self.pool.as_mut().and_then(Pool::worker_ended) {
                    tracing::info!("{note}");
                    self.sink.note(&note);
                }
                Ok(())
            }
            WorkerMsg::Fatal { cause } => Err(cause),
        }
    }

    fn checked(
        &mut self,
        job: &CheckJob,
        result: Result<crate::trial::Judged, (workloads::oracle::Verdict, String)>,
    ) -> Result<(), String> {
        let item = job.item.clone();
        let record = match &result {
            Ok(j) => CheckRecord {
                item: item.clone(),
                at: j.label.clone(),
                model: job.image.model.clone(),
                verdict: j.outcome.verdict,
                failure: j.failure.clone(),
                problem: None,
                millis: j.outcome.millis,
                phases: Some(Box::new(j.outcome.phases)),
                same_as: j.outcome.same_as.clone().map(Box::new),
            },
            Err((verdict, line)) => CheckRecord {
                item: item.clone(),
                at: CrashLabel::in_workload(job.image.point, &job.workload),
                model: job.image.model.clone(),
                verdict: *verdict,
                failure: None,
                problem: Some(line.clone()),
                millis: 0,
                phases: None,
                same_as: None,
            },
        };
        let saved = match &result {
            Ok(judged) if !is_suppressed(&record, &self.suppressions) => {
                self.save_failure(job, judged)?
            }
            _ => None,
        };
        let instance = Instance::of(&record);
        self.record(Event::Checked(record))?;
        match saved {
            Some(e) => self.record(e)?,
            None => {
                // A later instance of a bucket whose directory exists: list it there.
                let dir = instance
                    .as_ref()
                    .and_then(|i| self.state.failure_dir(&i.bucket))
                    .map(str::to_owned);
                if let (Some(i), Some(dir)) = (&instance, dir) {
                    failure::append_instance(self.run, &dir, i).map_err(|e| {
                        format!("listing an instance of `{}` in {dir}: {e}", i.bucket)
                    })?;
                }
            }
        }
        self.seed_maybe_done(&item)
    }

    /// Write the failure directory of a new, unsuppressed kernel-bug bucket (with its first
    /// instance); returns its `failure_saved` event.
    fn save_failure(
        &mut self,
        job: &CheckJob,
        judged: &crate::trial::Judged,
    ) -> Result<Option<Event>, String> {
        let Some(f) = &judged.failure else {
            return Ok(None);
        };
        let bucket = f.bucket_id();
        if !f.verdict.is_kernel_bug() || self.state.failure_dir(&bucket).is_some() {
            return Ok(None);
        }
        let keep = self.kept_images < self.cfg.keep_failure_images;
        self.kept_images += usize::from(keep);
        let record = FailureRecord {
            schema: FAILURE_SCHEMA,
            title: f.title.clone(),
            verdict: f.verdict,
            signature: f.signature.clone(),
            bucket: f.bucket.as_deref().cloned(),
            crash: judged.label.clone(),
            crash_model: job.image.model.clone(),
            seed: job.seed,
            workload: job.item.workload().map(str::to_owned),
            filesystem: self.cfg.filesystem.name().to_owned(),
            mutant: self.cfg.mutant.clone(),
            modules: self.env.image.user_modules.clone(),
            reproduce: self.env.reproduce(&job.item),
            cache_cut: job.image.cache_cut,
            kernel: self.env.kernel.as_ref().map(|k| k.name.clone()),
        };
        let first = Instance {
            item: job.item.clone(),
            at: judged.label.clone(),
            model: job.image.model.clone(),
            verdict: f.verdict,
            title: f.title.clone(),
            bucket: bucket.clone(),
        };
        let lost = job.image.lost_lines();
        let lost_report = job.image.lost_report();
        let dir = failure::write(
            self.run,
            &NewFailure {
                record: &record,
                workload: &job.workload,
                expectation: &judged.expectation,
                outcome: &judged.outcome,
                console: &job.console,
                image: keep.then_some(job.image.path.as_path()),
                lost_lines: lost.as_deref(),
                first: &first,
                lost_report: lost_report.as_deref(),
            },
        )
        .map_err(|e| format!("writing the failure directory of `{bucket}`: {e}"))?;
        Ok(Some(Event::FailureSaved {
            item: job.item.clone(),
            title: f.title.clone(),
            dir,
            bucket: Some(bucket),
        }))
    }

    /// Record `seed_done` once every check of the item's run is recorded.
    fn seed_maybe_done(&mut self, item: &TrialItem) -> Result<(), String> {
        let done = self
            .state
            .seed(item)
            .is_some_and(|s| !s.done && s.checks_missing() == Some(0));
        if done {
            self.record(Event::SeedDone { item: item.clone() })?;
        }
        Ok(())
    }

    /// Append `e` to the journal, fold it, show it.
    fn record(&mut self, e: Event) -> Result<(), String> {
        self.journal.append(&e).map_err(|err| err.to_string())?;
        self.state.apply(&e);
        self.sink.event(&e, &self.state, &self.suppressions);
        if let Some(note) = self.pool.as_mut().and_then(|p| p.observe(&e)) {
            tracing::info!("{note}");
            self.sink.note(&note);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<CampaignOutcome, CampaignError> {
        if self.abandoned {
            // Workers still stuck after the grace period: kill what they may have started
            // since, and report the stop; the process exits with it, taking them along.
            crate::host::process::kill_all();
        }
        self.sink.end();
        self.run.remove_crash_images();
        if let Some(cause) = self.fatal {
            return Err(CampaignError::Fatal(cause));
        }
        if self.abandoned {
            return Err(CampaignError::Abandoned);
        }
        let interrupted = self.interrupts > 0;
        if interrupted {
            let stopped = Event::Stopped {
                reason: "interrupted".into(),
            };
            self.journal
                .append(&stopped)
                .map_err(|e| CampaignError::Fatal(e.to_string()))?;
            self.state.apply(&stopped);
            eprintln!(
                "interrupted: finished the work in flight; continue with --resume --output {}",
                self.env.dir.display()
            );
        }
        Ok(CampaignOutcome {
            totals: self.state.totals(&self.suppressions),
            interrupted,
        })
    }
}

/// Rewrite every journaled bucket's `instances.jsonl` from the journal's fold, so a list
/// whose last append was cut by a crash, or that names checks of an attempt the journal
/// voided, matches the journal again before the campaign goes on.
fn rewrite_instances(run: &RunDir, state: &CampaignState) -> Result<(), CampaignError> {
    for (bucket, dir) in state.failure_dirs() {
        let list: Vec<Instance> = state.instances(bucket).filter_map(Instance::of).collect();
        failure::write_instances(run, dir, &list).map_err(|e| {
            CampaignError::Fatal(format!("rewriting the instances of `{bucket}`: {e}"))
        })?;
    }
    Ok(())
}

/// A deadline that never comes (the `select!` branch is disabled anyway).
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365))
        .unwrap_or(now)
}
