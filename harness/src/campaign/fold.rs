//! The one fold over a campaign's events: per seed, its last attempt (run, checks, done);
//! the failure directories written; whether the campaign stopped early. The coordinator
//! keeps it up to date as it records events (progress, seed completion), `--resume` builds
//! it from the journal (finished seeds), and the reports and the summary read their totals
//! from it. A `seed_started` voids the checks of the seed's earlier, interrupted attempt.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use super::events::{CheckRecord, Event};

/// How a seed's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// It ran; this many crash images are to be checked.
    Done {
        /// Crash images.
        images: usize,
        /// The oracle/agent disagreement on the live file system, if any.
        live_mismatch: Option<String>,
    },
    /// It failed for infrastructure reasons.
    Failed {
        /// The verdict.
        verdict: Verdict,
        /// One line.
        problem: String,
    },
}

/// One seed's last attempt.
#[derive(Debug, Clone, Default)]
pub struct SeedState {
    /// How its run ended (`None`: still running, or killed before it ended).
    pub run: Option<RunEnd>,
    /// Its checks.
    pub checks: Vec<CheckRecord>,
    /// Every check is recorded (`seed_done`).
    pub done: bool,
}

impl SeedState {
    /// Checks still to come before the seed is done (`None` while the run goes on).
    pub fn checks_missing(&self) -> Option<usize> {
        match &self.run {
            Some(RunEnd::Done { images, .. }) => Some(images.saturating_sub(self.checks.len())),
            Some(RunEnd::Failed { .. }) => Some(0),
            None => None,
        }
    }

    /// Its infrastructure problems, one line each (failed run, disagreement, failed checks).
    pub fn problems(&self, seed: u64) -> Vec<String> {
        let mut out = Vec::new();
        match &self.run {
            Some(RunEnd::Failed { verdict, problem }) => {
                out.push(format!("seed {seed}: {verdict}: {problem}"));
            }
            Some(RunEnd::Done {
                live_mismatch: Some(m),
                ..
            }) => out.push(format!(
                "seed {seed}: the live file system differs from the oracle's no-crash state ({m}): an oracle/agent disagreement, not counted as a kernel bug"
            )),
            _ => {}
        }
        for c in &self.checks {
            if let Some(p) = &c.problem {
                out.push(format!("seed {seed} {}: {}: {p}", c.at, c.verdict));
            }
        }
        out
    }
}

/// The state of a campaign after its events.
#[derive(Debug, Clone, Default)]
pub struct CampaignState {
    seeds: BTreeMap<u64, SeedState>,
    failure_dirs: BTreeMap<String, String>,
    /// Why the campaign last stopped early, if it did (cleared when it starts again).
    pub stopped: Option<String>,
    /// Times it was started (1 + resumes).
    pub starts: usize,
}

impl CampaignState {
    /// The state after `events`.
    pub fn of(events: &[Event]) -> CampaignState {
        let mut s = CampaignState::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Fold in one event.
    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Journal { .. } => {}
            Event::Started { .. } => {
                self.starts += 1;
                self.stopped = None;
            }
            Event::SeedStarted { seed } => {
                self.seeds.insert(*seed, SeedState::default());
            }
            Event::RunFailed {
                seed,
                verdict,
                problem,
            } => {
                self.seeds.entry(*seed).or_default().run = Some(RunEnd::Failed {
                    verdict: *verdict,
                    problem: problem.clone(),
                });
            }
            Event::RunDone {
                seed,
                images,
                live_mismatch,
                ..
            } => {
                self.seeds.entry(*seed).or_default().run = Some(RunEnd::Done {
                    images: *images,
                    live_mismatch: live_mismatch.clone(),
                });
            }
            Event::Checked(r) => self.seeds.entry(r.seed).or_default().checks.push(r.clone()),
            Event::FailureSaved { title, dir, .. } => {
                self.failure_dirs
                    .entry(title.clone())
                    .or_insert_with(|| dir.clone());
            }
            Event::SeedDone { seed } => self.seeds.entry(*seed).or_default().done = true,
            Event::Stopped { reason } => self.stopped = Some(reason.clone()),
        }
    }

    /// Seeds whose last attempt is complete (`--resume` skips them).
    pub fn finished_seeds(&self) -> BTreeSet<u64> {
        self.seeds
            .iter()
            .filter(|(_, s)| s.done)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every seed seen, with its last attempt.
    pub fn seeds(&self) -> impl Iterator<Item = (u64, &SeedState)> {
        self.seeds.iter().map(|(k, s)| (*k, s))
    }

    /// One seed's last attempt.
    pub fn seed(&self, seed: u64) -> Option<&SeedState> {
        self.seeds.get(&seed)
    }

    /// The failure directory (`failures/<slug>`) of a failure title, if it was written.
    pub fn failure_dir(&self, title: &str) -> Option<&str> {
        self.failure_dirs.get(title).map(String::as_str)
    }

    /// Checks of finished seeds (their last attempts), in seed order.
    pub fn finished_checks(&self) -> impl Iterator<Item = &CheckRecord> {
        self.seeds
            .values()
            .filter(|s| s.done)
            .flat_map(|s| s.checks.iter())
    }

    /// Totals of the finished seeds; a failure whose title matches one of `suppressions`
    /// counts as a known bug, not a failure.
    pub fn totals(&self, suppressions: &[regex::Regex]) -> Totals {
        let mut t = Totals::default();
        for (seed, s) in self.seeds.iter().filter(|(_, s)| s.done) {
            t.seeds += 1;
            let problems = s.problems(*seed);
            if matches!(s.run, Some(RunEnd::Failed { .. }))
                || matches!(
                    s.run,
                    Some(RunEnd::Done {
                        live_mismatch: Some(_),
                        ..
                    })
                )
            {
                t.infra += 1;
            }
            t.infra_problems.extend(problems);
            for c in &s.checks {
                t.checks += 1;
                let title = c.title();
                match c.verdict {
                    Verdict::Pass => t.passed += 1,
                    v if v.is_kernel_bug() => {
                        let title = title.unwrap_or(v.name()).to_owned();
                        if suppressions.iter().any(|r| r.is_match(&title)) {
                            t.suppressed.insert(title);
                        } else {
                            t.failures += 1;
                            t.distinct_failures.insert(title);
                        }
                    }
                    _ => t.infra += 1,
                }
            }
        }
        t
    }
}

/// Totals of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Seeds finished.
    pub seeds: usize,
    /// Crash images checked.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Kernel-bug verdicts (not suppressed).
    pub failures: usize,
    /// Infrastructure problems: failed runs, oracle/agent disagreements, failed checks.
    pub infra: usize,
    /// Distinct failure titles.
    pub distinct_failures: BTreeSet<String>,
    /// Infrastructure problems, one line each.
    pub infra_problems: Vec<String>,
    /// Failures matching a suppression (known bugs), by title.
    pub suppressed: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::finding::{CrashLabel, Failure, Signature};
    use workloads::oracle::CrashPoint;

    fn check(seed: u64, verdict: Verdict) -> Event {
        let at = CrashLabel {
            point: CrashPoint::AfterOp(1),
            kind: "fsync".into(),
        };
        let failure = verdict.is_kernel_bug().then(|| Failure {
            verdict,
            title: format!("{verdict}: f0 {at}"),
            signature: Signature {
                verdict,
                file: Some("f0".into()),
                inside: false,
                kind: "fsync".into(),
            },
        });
        Event::Checked(CheckRecord {
            seed,
            at,
            model: "snapshot".into(),
            verdict,
            failure,
            problem: verdict.is_infrastructure().then(|| "checker died".into()),
            millis: 1,
        })
    }

    fn ran(seed: u64, images: usize) -> Event {
        Event::RunDone {
            seed,
            images,
            boot_ms: 1,
            op_micros: 1,
            live_mismatch: None,
        }
    }

    #[test]
    fn an_interrupted_attempt_is_not_counted_twice() {
        let events = vec![
            Event::SeedStarted { seed: 1 },
            ran(1, 2),
            check(1, Verdict::Pass),
            // killed here; resumed:
            Event::SeedStarted { seed: 1 },
            ran(1, 2),
            check(1, Verdict::Pass),
            check(1, Verdict::DataLoss),
            Event::SeedDone { seed: 1 },
            Event::SeedStarted { seed: 2 },
            check(2, Verdict::Pass),
        ];

        let s = CampaignState::of(&events);
        let t = s.totals(&[]);

        assert_eq!((t.seeds, t.checks, t.passed, t.failures), (1, 2, 1, 1));
        assert_eq!(s.finished_seeds().into_iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.seed(2).and_then(SeedState::checks_missing), None);
    }

    #[test]
    fn infrastructure_problems_are_counted_and_named() {
        let events = vec![
            Event::SeedStarted { seed: 1 },
            Event::RunFailed {
                seed: 1,
                verdict: Verdict::BootFailed,
                problem: "QEMU exited".into(),
            },
            Event::SeedDone { seed: 1 },
            Event::SeedStarted { seed: 2 },
            ran(2, 2),
            check(2, Verdict::Timeout),
            check(2, Verdict::Pass),
            Event::SeedDone { seed: 2 },
        ];

        let t = CampaignState::of(&events).totals(&[]);

        assert_eq!((t.seeds, t.checks, t.infra, t.failures), (2, 2, 2, 0));
        assert_eq!(t.infra_problems.len(), 2);
        assert!(t.infra_problems[0].contains("boot-failed: QEMU exited"));
        assert!(t.infra_problems[1].contains("checker died"));
    }

    #[test]
    fn suppressed_failures_do_not_count_as_failures() {
        let events = vec![
            Event::SeedStarted { seed: 1 },
            ran(1, 1),
            check(1, Verdict::DataLoss),
            Event::SeedDone { seed: 1 },
        ];
        let re = regex::Regex::new("^data-loss: f0").expect("regex");

        let t = CampaignState::of(&events).totals(&[re]);

        assert_eq!((t.failures, t.suppressed.len()), (0, 1));
    }

    #[test]
    fn seeds_know_how_many_checks_are_missing() {
        let mut s = CampaignState::default();
        s.apply(&Event::SeedStarted { seed: 4 });
        s.apply(&ran(4, 2));
        s.apply(&check(4, Verdict::Pass));

        assert_eq!(s.seed(4).and_then(SeedState::checks_missing), Some(1));
    }
}
