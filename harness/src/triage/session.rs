//! The VM side of triage: run a workload in a fresh workload VM with a crash plan
//! (`campaign::run::run_workload`), and check each crash image in one checker VM that is
//! booted once and reused for every attempt (replaced if it stops answering).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use workloads::oracle::{expectation, CrashPoint, FsRules};
use workloads::{OpOutcome, Workload};

use super::faildir::{parse_crash_label, titles_of, NormalisedPoint, Signature};
use crate::campaign::plan::CrashPlan;
use crate::campaign::run::{run_workload, RunSetup};
use crate::checker::{CheckOutcome, Checker};
use crate::vm::VmError;

/// What a triage session runs with.
#[derive(Debug, Clone)]
pub struct TriageEnv {
    /// Workload VM setup (image, golden pmem, accelerator, mutant, timeouts).
    pub setup: RunSetup,
    /// Deadline of one check.
    pub check_timeout: Duration,
    /// Scratch directory for pmem copies and crash images.
    pub work_dir: PathBuf,
}

/// The check of one crash image.
#[derive(Debug, Clone)]
pub struct PointCheck {
    /// Where the power was cut.
    pub point: CrashPoint,
    /// Its label (`after op 3 (fsync)`).
    pub label: String,
    /// The checker's verdict and findings.
    pub outcome: CheckOutcome,
}

impl PointCheck {
    /// The failure titles of this check (empty when it passed).
    pub fn titles(&self) -> Vec<String> {
        titles_of(&self.outcome, &self.label)
    }

    /// The failure signatures of this check (empty when it passed).
    pub fn signatures(&self) -> Vec<Signature> {
        let mut sigs: Vec<Signature> = self
            .outcome
            .findings
            .iter()
            .filter_map(Signature::of_finding)
            .collect();
        if sigs.is_empty() && self.outcome.verdict.is_kernel_bug() {
            if let Ok((point, kind)) = parse_crash_label(&self.label) {
                sigs.push(Signature {
                    verdict: self.outcome.verdict,
                    file: None,
                    at: NormalisedPoint::of(point, &kind),
                });
            }
        }
        sigs
    }
}

/// One workload run and the checks of its crash images.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The checks, in the order the images were taken.
    pub checks: Vec<PointCheck>,
    /// Outcome of every op in this run.
    pub outcomes: Vec<Option<OpOutcome>>,
    /// Wall time of the run and its checks.
    pub elapsed: Duration,
}

/// A crash plan with exactly one crash point (`delay_us` for an inside-op point).
pub fn single_point_plan(point: CrashPoint, delay_us: u64) -> CrashPlan {
    let mut plan = CrashPlan::default();
    match point {
        CrashPoint::AfterOp(k) => {
            plan.after.insert(k);
        }
        CrashPoint::InsideOp(k) => {
            plan.inside.insert(k);
            plan.inside_delay_us.push(delay_us);
        }
    }
    plan
}

/// A triage session: workload VMs come and go, the checker VM stays.
pub struct Session {
    env: TriageEnv,
    rules: FsRules,
    checker: Option<Checker>,
    attempts: usize,
}

impl Session {
    /// A session; no VM is booted until the first attempt.
    pub fn new(env: TriageEnv, rules: FsRules) -> Session {
        Session {
            env,
            rules,
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
        let run = run_workload(&self.env.setup, workload, plan, &dir, &name)?;
        let mut checks = Vec::new();
        let mut result = Ok(());
        for img in &run.images {
            if result.is_err() {
                break;
            }
            let exp = expectation(workload, &run.outcomes, img.point, &self.rules);
            let label = exp.crash_label();
            match self.checker().and_then(|ck| ck.check(&img.path, &exp)) {
                Ok(outcome) => checks.push(PointCheck {
                    point: img.point,
                    label,
                    outcome,
                }),
                Err(e) => {
                    // A checker that failed once is not trusted again.
                    if let Some(old) = self.checker.take() {
                        drop(old);
                    }
                    result = Err(e);
                }
            }
        }
        for img in &run.images {
            let _ = std::fs::remove_file(&img.path);
        }
        let _ = std::fs::remove_dir_all(&dir);
        result?;
        Ok(Attempt {
            checks,
            outcomes: run.outcomes,
            elapsed: start.elapsed(),
        })
    }

    fn checker(&mut self) -> Result<&mut Checker, VmError> {
        if self.checker.is_none() {
            let setup = &self.env.setup;
            self.checker = Some(Checker::start(
                &setup.image,
                &setup.golden,
                setup.accel,
                &self.env.work_dir.join("checker"),
                "triage-checker",
                setup.debug,
                self.env.check_timeout,
            )?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_point_plans_take_one_image() {
        let after = single_point_plan(CrashPoint::AfterOp(4), 0);
        let inside = single_point_plan(CrashPoint::InsideOp(2), 700);

        assert_eq!(after.images(), 1);
        assert_eq!(after.barriers(), vec![4]);
        assert_eq!(inside.images(), 1);
        assert_eq!(inside.barriers(), vec![2]);
        assert_eq!(inside.inside_delay_us, vec![700]);
    }
}
