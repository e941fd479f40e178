//! The VM side of triage: run a workload through the trial pipeline ([`crate::trial`]) in a
//! fresh workload VM, and check each crash image in one checker VM that is booted once and
//! reused for every attempt (replaced if it stops answering).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use workloads::{OpOutcome, Workload};

use crate::checker::{Checker, CheckerSpec};
use crate::records::TrialItem;
use crate::trial::plan::CrashPlan;
use crate::trial::{self, Judged, TrialSetup};
use crate::vm::VmError;

/// What a triage session runs with.
#[derive(Debug, Clone)]
pub struct TriageEnv {
    /// Workload VM setup (image, golden pmem, accelerator, mutant, timeouts, crash model).
    pub setup: TrialSetup,
    /// Deadline of one check.
    pub check_timeout: Duration,
    /// Scratch directory for pmem copies and crash images.
    pub work_dir: PathBuf,
}

/// One workload run and the checks of its crash images.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The checks, in the order the images were taken.
    pub checks: Vec<Judged>,
    /// Outcome of every op in this run.
    pub outcomes: Vec<Option<OpOutcome>>,
    /// Wall time of the run and its checks.
    pub elapsed: Duration,
}

impl Attempt {
    /// Every failure title its checks showed.
    pub fn titles(&self) -> Vec<String> {
        self.checks
            .iter()
            .flat_map(|j| j.failures.iter())
            .map(|f| f.title.clone())
            .collect()
    }
}

/// A triage session: workload VMs come and go, the checker VM stays.
pub struct Session {
    env: TriageEnv,
    checker: Option<Checker>,
    attempts: usize,
}

impl Session {
    /// A session; no VM is booted until the first attempt.
    pub fn new(env: TriageEnv) -> Session {
        Session {
            env,
            checker: None,
            attempts: 0,
        }
    }

    /// Run `workload` once with `plan` and check every crash image it took.
    pub fn attempt(&mut self, workload: &Workload, plan: &CrashPlan) -> Result<Attempt, VmError> {
        let start = Instant::now();
        self.attempts += 1;
        let dir = self.env.work_dir.join(format!("attempt-{}", self.attempts));
        let name = format!("triage-{}", self.attempts);
        let result = self.run_and_check(workload, plan, &dir, &name);
        // Scratch only: a directory that is already gone changes nothing.
        std::fs::remove_dir_all(&dir).ok();
        let (checks, outcomes) = result?;
        Ok(Attempt {
            checks,
            outcomes,
            elapsed: start.elapsed(),
        })
    }

    fn run_and_check(
        &mut self,
        workload: &Workload,
        plan: &CrashPlan,
        dir: &std::path::Path,
        name: &str,
    ) -> Result<(Vec<Judged>, Vec<Option<OpOutcome>>), VmError> {
        let run = trial::run(&self.env.setup, workload, plan, dir, name)?;
        let rules = self.env.setup.rules();
        let mutant = self.env.setup.mutant.clone();
        let modules = self.env.setup.image.user_modules.clone();
        let env = trial::CheckEnv {
            rules: &rules,
            mutant: mutant.as_deref(),
            modules: &modules,
        };
        let item = TrialItem::Workload(workload.name.clone());
        let mut checks = Vec::new();
        for image in &run.images {
            let checked = self
                .checker()
                .and_then(|ck| trial::check_image(ck, &item, workload, &run.outcomes, image, &env));
            match checked {
                Ok(j) => checks.push(j),
                Err(e) => {
                    // A checker that failed once is not trusted again.
                    self.checker = None;
                    return Err(e);
                }
            }
        }
        Ok((checks, run.outcomes))
    }

    fn checker(&mut self) -> Result<&mut Checker, VmError> {
        if self.checker.is_none() {
            let setup = &self.env.setup;
            self.checker = Some(Checker::start(&CheckerSpec {
                image: &setup.image,
                golden: &setup.golden,
                accel: setup.accel,
                dir: &self.env.work_dir.join("checker"),
                name: "triage-checker",
                debug: setup.debug,
                check_timeout: self.env.check_timeout,
                state: setup.start.state(),
            })?);
        }
        self.checker
            .as_mut()
            .ok_or_else(|| VmError::Guest("checker VM vanished".into()))
    }

    /// Shut the checker VM down.
    pub fn stop(mut self) {
        if let Some(ck) = self.checker.take() {
            ck.stop();
        }
    }
}
