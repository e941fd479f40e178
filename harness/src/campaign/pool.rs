//! The campaign's VM threads: the workload and checker workers it starts with and, under
//! `workers: auto` / `checkers: auto`, the ones it adds once the first item has been run
//! and checked ([`super::balance`]). Until that decision the pool keeps what it needs to
//! start more (a sender of check jobs, the shared state); it lets go of both once it has
//! decided or every workload worker has ended, so the checkers and the coordinator still
//! see their channels close.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::balance::{split, Limits, Measured};
use super::workers::{checker_worker, workload_worker, CheckJob, Shared, WorkerMsg};
use crate::journal::events::Event;
use crate::records::TrialItem;

/// What starting another worker takes.
struct Kit {
    shared: Shared,
    jobs: SyncSender<CheckJob>,
    job_rx: Arc<Mutex<Receiver<CheckJob>>>,
}

/// The run and check time of one item so far.
#[derive(Default)]
struct ItemTimes {
    /// When its run started (as the coordinator saw it).
    started: Option<Instant>,
    run: Option<Duration>,
    check_us: u64,
}

/// The worker threads of one campaign.
pub struct Pool {
    threads: Vec<JoinHandle<()>>,
    workers: usize,
    checkers: usize,
    workers_alive: usize,
    /// `Some` while `auto` may still add workers.
    kit: Option<Kit>,
    limits: Limits,
    times: BTreeMap<TrialItem, ItemTimes>,
}

impl Pool {
    /// Start `workers` workload workers and `checkers` checker workers; with `auto`, keep
    /// the means to add more within `limits`.
    pub fn start(
        shared: Shared,
        jobs: SyncSender<CheckJob>,
        job_rx: Arc<Mutex<Receiver<CheckJob>>>,
        (workers, checkers): (usize, usize),
        auto: Option<Limits>,
    ) -> Pool {
        let mut pool = Pool {
            threads: Vec::new(),
            workers: 0,
            checkers: 0,
            workers_alive: 0,
            kit: Some(Kit {
                shared,
                jobs,
                job_rx,
            }),
            limits: auto.unwrap_or(Limits {
                cores: 1,
                max_vms: 2,
                fixed_workers: None,
                fixed_checkers: None,
            }),
            times: BTreeMap::new(),
        };
        for _ in 0..workers {
            pool.add_worker();
        }
        for _ in 0..checkers {
            pool.add_checker();
        }
        if auto.is_none() {
            pool.kit = None;
        }
        pool
    }

    fn add_worker(&mut self) {
        let Some(kit) = &self.kit else { return };
        let (s, jobs, w) = (kit.shared.clone(), kit.jobs.clone(), self.workers);
        self.threads.push(std::thread::spawn(move || {
            workload_worker(&s, &jobs, w);
            drop(jobs);
            s.tell(WorkerMsg::WorkloadWorkerEnded);
        }));
        self.workers += 1;
        self.workers_alive += 1;
    }

    fn add_checker(&mut self) {
        let Some(kit) = &self.kit else { return };
        let (s, rx, c) = (kit.shared.clone(), Arc::clone(&kit.job_rx), self.checkers);
        self.threads
            .push(std::thread::spawn(move || checker_worker(&s, &rx, c)));
        self.checkers += 1;
    }

    /// A workload worker ended. When the last one has, no worker will be added: let go of
    /// the kit so that the checkers' channel closes (and say so, if `auto` had not decided).
    pub fn worker_ended(&mut self) -> Option<String> {
        self.workers_alive = self.workers_alive.saturating_sub(1);
        if self.workers_alive > 0 {
            return None;
        }
        self.kit.take().map(|_| {
            format!(
                "auto: kept {} workload VM(s), {} checker VM(s): every item was run before the first one was checked",
                self.workers, self.checkers
            )
        })
    }

    /// The campaign is stopping (interrupt, budget, fatal error): add nothing more.
    pub fn stop_growing(&mut self) {
        self.kit = None;
    }

    /// Take a recorded event into account; returns what to tell the user when it decided
    /// the balance.
    pub fn observe(&mut self, e: &Event) -> Option<String> {
        self.kit.as_ref()?;
        match e {
            Event::SeedStarted { item } => {
                self.times.entry(item.clone()).or_default().started = Some(Instant::now());
                None
            }
            Event::RunDone { item, .. } => {
                let t = self.times.entry(item.clone()).or_default();
                t.run = t.started.map(|s| s.elapsed());
                None
            }
            Event::Checked(c) => {
                let t = self.times.entry(c.item.clone()).or_default();
                t.check_us = t.check_us.saturating_add(c.millis.saturating_mul(1000));
                None
            }
            Event::SeedDone { item } => {
                let t = self.times.remove(item)?;
                Some(self.decide(Measured {
                    run: t.run?,
                    check: Duration::from_micros(t.check_us),
                }))
            }
            _ => None,
        }
    }

    /// Start what the balance of `m` asks for beyond what runs, then add nothing more.
    fn decide(&mut self, m: Measured) -> String {
        let (want_w, want_c) = split(m, self.limits);
        let (had_w, had_c) = (self.workers, self.checkers);
        while self.workers < want_w {
            self.add_worker();
        }
        while self.checkers < want_c {
            self.add_checker();
        }
        self.kit = None;
        format!(
            "auto: {} workload VM(s), {} checker VM(s) (was {had_w} + {had_c}; the first item's run took {:.1} s, its checks {:.1} s, on {} cores)",
            self.workers,
            self.checkers,
            m.run.as_secs_f64(),
            m.check.as_secs_f64(),
            self.limits.cores
        )
    }

    /// The threads, to join.
    pub fn into_threads(self) -> Vec<JoinHandle<()>> {
        self.threads
    }
}
