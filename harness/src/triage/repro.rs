//! `repro`: re-run a failure (its exact workload and crash point) or a seed (its generated
//! workload and planned crash points) several times and count how often it comes back;
//! `repro.json` records the counts and marks a failure that never came back as flaky.

use std::path::Path;

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;
use workloads::Workload;

use super::session::{Attempt, Session};
use super::TriageError;
use crate::rundir::failure::FailureDir;
use crate::trial::infra_verdict;
use crate::trial::plan::{single_point_plan, CrashPlan};

/// `repro.json` schema version.
pub const REPRO_SCHEMA: u32 = 1;

/// One run of a repro.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// 1-based run number.
    pub run: usize,
    /// Did the failure come back?
    pub reproduced: bool,
    /// Worst verdict of the run's checks (or the infrastructure verdict).
    pub verdict: Verdict,
    /// Failure titles the checks produced.
    pub titles: Vec<String>,
    /// The infrastructure error, when the run said nothing about the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra: Option<String>,
    /// Wall time, seconds.
    pub secs: f64,
}

/// The result of a repro, as written to `repro.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReproReport {
    /// Schema version ([`REPRO_SCHEMA`]).
    pub schema: u32,
    /// The failure title looked for (`None` for `--seed`: any kernel-bug verdict counts).
    pub title: Option<String>,
    /// Workload seed.
    pub seed: u64,
    /// Crash point (`None` for `--seed`: the planned points).
    pub crash_point: Option<String>,
    /// Mutant loaded (`None`: stock kernel).
    pub mutant: Option<String>,
    /// Runs made.
    pub runs: usize,
    /// Runs in which the failure came back.
    pub reproduced: usize,
    /// Runs lost to infrastructure errors.
    pub infra: usize,
    /// Never reproduced (and not for lack of completed runs).
    pub flaky: bool,
    /// Each run.
    pub attempts: Vec<RunRecord>,
}

impl ReproReport {
    /// `reproduced 3 of 5` / `not reproduced (flaky): 0 of 5`.
    pub fn summary(&self) -> String {
        let infra = if self.infra > 0 {
            format!(" ({} runs lost to infrastructure errors)", self.infra)
        } else {
            String::new()
        };
        if self.reproduced > 0 {
            format!("reproduced {} of {}{infra}", self.reproduced, self.runs)
        } else if self.infra == self.runs {
            format!("no run completed: 0 of {}{infra}", self.runs)
        } else {
            format!("not reproduced (flaky): 0 of {}{infra}", self.runs)
        }
    }

    /// Write `repro.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), TriageError> {
        let path = dir.join("repro.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| TriageError::io(&path, std::io::Error::other(e)))?;
        super::write_file(&path, &text)
    }
}

/// What a repro looks for in each run.
enum Target<'a> {
    /// This exact failure title.
    Title(&'a str),
    /// Any kernel-bug verdict.
    AnyFailure,
}

fn record(
    run: usize,
    target: &Target<'_>,
    result: Result<Attempt, crate::vm::VmError>,
) -> RunRecord {
    match result {
        Ok(a) => {
            let titles = a.titles();
            let verdict = a
                .checks
                .iter()
                .map(|c| c.outcome.verdict)
                .filter(Verdict::is_kernel_bug)
                .min()
                .unwrap_or(Verdict::Pass);
            let reproduced = match target {
                Target::Title(t) => titles.iter().any(|x| x == t),
                Target::AnyFailure => verdict.is_kernel_bug(),
            };
            RunRecord {
                run,
                reproduced,
                verdict,
                titles,
                infra: None,
                secs: a.elapsed.as_secs_f64(),
            }
        }
        Err(e) => RunRecord {
            run,
            reproduced: false,
            verdict: infra_verdict(&e),
            titles: Vec::new(),
            infra: Some(e.to_string().lines().next().unwrap_or("").to_owned()),
            secs: 0.0,
        },
    }
}

fn report(
    title: Option<String>,
    seed: u64,
    crash_point: Option<String>,
    mutant: Option<String>,
    attempts: Vec<RunRecord>,
) -> ReproReport {
    let reproduced = attempts.iter().filter(|r| r.reproduced).count();
    let infra = attempts.iter().filter(|r| r.infra.is_some()).count();
    ReproReport {
        schema: REPRO_SCHEMA,
        title,
        seed,
        crash_point,
        mutant,
        runs: attempts.len(),
        reproduced,
        infra,
        flaky: reproduced == 0 && infra < attempts.len(),
        attempts,
    }
}

fn progress_line(r: &RunRecord, n: usize) -> String {
    match (&r.infra, r.reproduced) {
        (Some(e), _) => format!("run {}/{n}: {}: {e}", r.run, r.verdict),
        (None, true) => format!("run {}/{n}: reproduced ({:.1} s)", r.run, r.secs),
        (None, false) => format!(
            "run {}/{n}: not reproduced, verdict {}{} ({:.1} s)",
            r.run,
            r.verdict,
            r.titles
                .first()
                .map_or_else(String::new, |t| format!(", e.g. {t}")),
            r.secs
        ),
    }
}

/// Re-run the failure of `fd` `runs` times (same workload, same crash point; for an
/// inside-op point, `delay_us` after the op starts). A cache-model failure is re-run traced
/// and its crash state rebuilt from the new trace: the same cut in the same op context
/// (op return, or the n-th fence), the same variant (worst, best, or the subset drawn with
/// the recorded seed).
pub fn repro_failure(
    session: &mut Session,
    fd: &FailureDir,
    runs: usize,
    delay_us: u64,
    progress: &mut dyn FnMut(&str),
) -> ReproReport {
    let mut plan = single_point_plan(fd.record.crash.point, delay_us);
    plan.cache = fd.record.cache_selector(fd.record.crash.point, true);
    let target = Target::Title(&fd.record.title);
    let mut attempts = Vec::new();
    for run in 1..=runs {
        let r = record(run, &target, session.attempt(&fd.workload, &plan));
        progress(&progress_line(&r, runs));
        attempts.push(r);
    }
    report(
        Some(fd.record.title.clone()),
        fd.record.seed,
        Some(fd.record.crash.to_string()),
        fd.record.mutant.clone(),
        attempts,
    )
}

/// Re-run a generated workload with its planned crash points `runs` times; a run counts as
/// reproduced when any check gives a kernel-bug verdict.
pub fn repro_seed(
    session: &mut Session,
    workload: &Workload,
    plan: &CrashPlan,
    mutant: Option<String>,
    runs: usize,
    progress: &mut dyn FnMut(&str),
) -> ReproReport {
    let mut attempts = Vec::new();
    for run in 1..=runs {
        let r = record(run, &Target::AnyFailure, session.attempt(workload, plan));
        progress(&progress_line(&r, runs));
        attempts.push(r);
    }
    report(None, workload.seed, None, mutant, attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(run: usize, reproduced: bool, infra: bool) -> RunRecord {
        RunRecord {
            run,
            reproduced,
            verdict: if infra {
                Verdict::BootFailed
            } else {
                Verdict::Pass
            },
            titles: Vec::new(),
            infra: infra.then(|| "boot".to_owned()),
            secs: 1.0,
        }
    }

    #[test]
    fn counts_and_flakiness() {
        let some = report(
            None,
            1,
            None,
            None,
            vec![rec(1, true, false), rec(2, false, false)],
        );
        let none = report(
            None,
            1,
            None,
            None,
            vec![rec(1, false, false), rec(2, false, true)],
        );
        let infra = report(None, 1, None, None, vec![rec(1, false, true)]);

        assert_eq!((some.reproduced, some.flaky), (1, false));
        assert_eq!(some.summary(), "reproduced 1 of 2");
        assert_eq!((none.reproduced, none.infra, none.flaky), (0, 1, true));
        assert!(none.summary().starts_with("not reproduced (flaky): 0 of 2"));
        assert!(!infra.flaky);
        assert!(infra.summary().starts_with("no run completed"));
    }
}
