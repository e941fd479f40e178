//! The one fold over a campaign's events: per item (seed or workload), its last attempt
//! (run, checks, done); the failure directory of each bucket; whether the campaign stopped
//! early. The coordinator keeps it up to date as it records events (progress, item
//! completion), `--resume` builds it from the journal (finished items), and the reports and
//! the summary read their totals from it. A `seed_started` voids the checks of the item's
//! earlier, interrupted attempt.
//!
//! Failures are counted twice: every failing check is an *instance*, and instances whose
//! failures share a bucket ([`crate::records::bucket::Bucket`]) are one *distinct failure*.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use super::events::{CheckRecord, Event};
use crate::records::{PhaseTotals, RunPhases, TrialItem};

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
    /// Where its run's time went (absent in journals written before phases).
    pub run_phases: Option<RunPhases>,
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
    pub fn problems(&self, seed: &TrialItem) -> Vec<String> {
        let mut out = Vec::new();
        match &self.run {
            Some(RunEnd::Failed { verdict, problem }) => {
                out.push(format!("{seed}: {verdict}: {problem}"));
            }
            Some(RunEnd::Done {
                live_mismatch: Some(m),
                ..
            }) => out.push(format!(
                "{seed}: the live file system differs from the oracle's no-crash state ({m}): an oracle/agent disagreement, not counted as a kernel bug"
            )),
            _ => {}
        }
        for c in &self.checks {
            if let Some(p) = &c.problem {
                out.push(format!("{seed} {}: {}: {p}", c.at, c.verdict));
            }
        }
        out
    }
}

/// The state of a campaign after its events.
#[derive(Debug, Clone, Default)]
pub struct CampaignState {
    seeds: BTreeMap<TrialItem, SeedState>,
    failure_dirs: BTreeMap<String, String>,
    /// More directories of a bucket (a merge of shards that each found it): bucket id →
    /// directories after the first.
    other_dirs: BTreeMap<String, Vec<String>>,
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
            Event::SeedStarted { item } => {
                self.seeds.insert(item.clone(), SeedState::default());
            }
            Event::RunFailed {
                item,
                verdict,
                problem,
            } => {
                self.seeds.entry(item.clone()).or_default().run = Some(RunEnd::Failed {
                    verdict: *verdict,
                    problem: problem.clone(),
                });
            }
            Event::RunDone {
                item,
                images,
                live_mismatch,
                phases,
                ..
            } => {
                let s = self.seeds.entry(item.clone()).or_default();
                s.run = Some(RunEnd::Done {
                    images: *images,
                    live_mismatch: live_mismatch.clone(),
                });
                s.run_phases = *phases;
            }
            Event::Checked(r) => self
                .seeds
                .entry(r.item.clone())
                .or_default()
                .checks
                .push(r.clone()),
            Event::FailureSaved {
                title, dir, bucket, ..
            } => {
                let key = bucket.clone().unwrap_or_else(|| title.clone());
                match self.failure_dirs.get(&key) {
                    None => {
                        self.failure_dirs.insert(key, dir.clone());
                    }
                    Some(first) if first != dir => {
                        let more = self.other_dirs.entry(key).or_default();
                        if !more.contains(dir) {
                            more.push(dir.clone());
                        }
                    }
                    Some(_) => {}
                }
            }
            Event::SeedDone { item } => self.seeds.entry(item.clone()).or_default().done = true,
            Event::Stopped { reason } => self.stopped = Some(reason.clone()),
        }
    }

    /// Items whose last attempt is complete (`--resume` skips them).
    pub fn finished_items(&self) -> BTreeSet<TrialItem> {
        self.seeds
            .iter()
            .filter(|(_, s)| s.done)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every item seen (seeds first, by number; then workloads, by name), with its last
    /// attempt.
    pub fn seeds(&self) -> impl Iterator<Item = (&TrialItem, &SeedState)> {
        self.seeds.iter()
    }

    /// One item's last attempt.
    pub fn seed(&self, item: &TrialItem) -> Option<&SeedState> {
        self.seeds.get(item)
    }

    /// The failure directory (`failures/<slug>`) of a bucket id (or, in journals written
    /// before buckets, of a failure title), if it was written.
    pub fn failure_dir(&self, bucket: &str) -> Option<&str> {
        self.failure_dirs.get(bucket).map(String::as_str)
    }

    /// The bucket's directories after its first ([`Self::failure_dir`]): in a merge of
    /// shards, those of the other shards that found it.
    pub fn other_failure_dirs(&self, bucket: &str) -> &[String] {
        self.other_dirs.get(bucket).map_or(&[], Vec::as_slice)
    }

    /// Every failure directory written: bucket id → `failures/<slug>`.
    pub fn failure_dirs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.failure_dirs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The failing checks of every item's last attempt (finished or not) whose failure is in
    /// bucket `bucket`, in item order: the instances a bucket's directory lists.
    pub fn instances<'a>(&'a self, bucket: &'a str) -> impl Iterator<Item = &'a CheckRecord> {
        self.seeds
            .values()
            .flat_map(|s| s.checks.iter())
            .filter(move |c| c.bucket_id().as_deref() == Some(bucket))
    }

    /// The sums of the run and check phases of the finished items (what bounded the
    /// campaign); runs and checks recorded without phases are not counted.
    pub fn phase_totals(&self) -> PhaseTotals {
        let mut t = PhaseTotals::default();
        for s in self.seeds.values().filter(|s| s.done) {
            if let Some(p) = &s.run_phases {
                t.add_run(p);
            }
            for c in &s.checks {
                if let Some(p) = &c.phases {
                    t.add_check(p, c.same_as.is_some());
                }
            }
        }
        t
    }

    /// Checks of finished seeds (their last attempts), in seed order.
    pub fn finished_checks(&self) -> impl Iterator<Item = &CheckRecord> {
        self.seeds
            .values()
            .filter(|s| s.done)
            .flat_map(|s| s.checks.iter())
    }

    /// Totals of the finished items; a failure whose title or bucket id matches one of
    /// `suppressions` counts as a known bug, not a failure.
    pub fn totals(&self, suppressions: &[regex::Regex]) -> Totals {
        let mut t = Totals::default();
        for (seed, s) in self.seeds.iter().filter(|(_, s)| s.done) {
            t.seeds += 1;
            if seed.workload().is_some() {
                t.workloads += 1;
            }
            let problems = s.problems(seed);
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
                match c.verdict {
                    Verdict::Pass => t.passed += 1,
                    v if v.is_kernel_bug() => {
                        let bucket = c.bucket_id().unwrap_or_else(|| v.name().to_owned());
                        if is_suppressed(c, suppressions) {
                            t.suppressed.insert(bucket);
                        } else {
                            t.failures += 1;
                            *t.bucket_instances.entry(bucket.clone()).or_insert(0) += 1;
                            t.distinct_failures.insert(bucket);
                        }
                    }
                    _ => t.infra += 1,
                }
            }
        }
        t
    }
}

/// Does a suppression match the check's failure title or its bucket id? (Only kernel-bug
/// verdicts are ever suppressed.)
pub fn is_suppressed(c: &CheckRecord, suppressions: &[regex::Regex]) -> bool {
    let Some(f) = c.failure.as_ref().filter(|_| c.verdict.is_kernel_bug()) else {
        return false;
    };
    let bucket = f.bucket_id();
    suppressions
        .iter()
        .any(|r| r.is_match(&f.title) || r.is_match(&bucket))
}

/// Totals of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Items finished (seeds and workloads).
    pub seeds: usize,
    /// Of those, workload files.
    #[serde(default)]
    pub workloads: usize,
    /// Crash images checked.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Kernel-bug verdicts (not suppressed): failure instances.
    pub failures: usize,
    /// Infrastructure problems: failed runs, oracle/agent disagreements, failed checks.
    pub infra: usize,
    /// Distinct failures: the bucket ids of the failure instances.
    pub distinct_failures: BTreeSet<String>,
    /// Failure instances per bucket id.
    #[serde(default)]
    pub bucket_instances: BTreeMap<String, usize>,
    /// Infrastructure problems, one line each.
    pub infra_problems: Vec<String>,
    /// Failures matching a suppression (known bugs), by bucket id.
    pub suppressed: BTreeSet<String>,
}

impl Totals {
    /// Add another fold's totals (another kernel of a matrix); problem lines are prefixed
    /// with `[label]` (not when `label` is empty).
    pub fn add(&mut self, o: &Totals, label: &str) {
        self.seeds += o.seeds;
        self.workloads += o.workloads;
        self.checks += o.checks;
        self.passed += o.passed;
        self.failures += o.failures;
        self.infra += o.infra;
        self.distinct_failures
            .extend(o.distinct_failures.iter().cloned());
        for (b, n) in &o.bucket_instances {
            *self.bucket_instances.entry(b.clone()).or_insert(0) += n;
        }
        self.infra_problems
            .extend(o.infra_problems.iter().map(|p| match label {
                "" => p.clone(),
                l => format!("[{l}] {p}"),
            }));
        self.suppressed.extend(o.suppressed.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::bucket::{Bucket, Lost};
    use crate::records::finding::{CrashLabel, Failure, Signature};
    use workloads::oracle::CrashPoint;

    const S1: TrialItem = TrialItem::Seed(1);
    const S2: TrialItem = TrialItem::Seed(2);

    fn check(seed: u64, verdict: Verdict) -> Event {
        checked(seed, verdict, 1, None)
    }

    /// A check of `seed` after op `op`, its failure in a bucket of `mutant`.
    fn checked(seed: u64, verdict: Verdict, op: usize, mutant: Option<&str>) -> Event {
        let at = CrashLabel {
            point: CrashPoint::AfterOp(op),
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
            bucket: Some(Box::new(Bucket {
                verdict,
                promise: Some("fsync".into()),
                lost: Lost::MmapData,
                after: Vec::new(),
                via: Vec::new(),
                crash_model: "snapshot".into(),
                filesystem: "ext4".into(),
                mutant: mutant.map(str::to_owned),
                modules: Vec::new(),
            })),
        });
        Event::Checked(CheckRecord {
            item: TrialItem::Seed(seed),
            at,
            model: "snapshot".into(),
            verdict,
            failure,
            problem: verdict.is_infrastructure().then(|| "checker died".into()),
            millis: 1,
            phases: None,
            same_as: None,
        })
    }

    fn ran(seed: u64, images: usize) -> Event {
        Event::RunDone {
            item: TrialItem::Seed(seed),
            images,
            boot_ms: 1,
            op_micros: 1,
            live_mismatch: None,
            phases: None,
        }
    }

    #[test]
    fn an_interrupted_attempt_is_not_counted_twice() {
        let events = vec![
            Event::SeedStarted { item: S1 },
            ran(1, 2),
            check(1, Verdict::Pass),
            // killed here; resumed:
            Event::SeedStarted { item: S1 },
            ran(1, 2),
            check(1, Verdict::Pass),
            check(1, Verdict::DataLoss),
            Event::SeedDone { item: S1 },
            Event::SeedStarted { item: S2 },
            check(2, Verdict::Pass),
        ];

        let s = CampaignState::of(&events);
        let t = s.totals(&[]);

        assert_eq!((t.seeds, t.checks, t.passed, t.failures), (1, 2, 1, 1));
        assert_eq!(s.finished_items().into_iter().collect::<Vec<_>>(), vec![S1]);
        assert_eq!(s.seed(&S2).and_then(SeedState::checks_missing), None);
    }

    #[test]
    fn infrastructure_problems_are_counted_and_named() {
        let events = vec![
            Event::SeedStarted { item: S1 },
            Event::RunFailed {
                item: S1,
                verdict: Verdict::BootFailed,
                problem: "QEMU exited".into(),
            },
            Event::SeedDone { item: S1 },
            Event::SeedStarted { item: S2 },
            ran(2, 2),
            check(2, Verdict::Timeout),
            check(2, Verdict::Pass),
            Event::SeedDone { item: S2 },
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
            Event::SeedStarted { item: S1 },
            ran(1, 1),
            check(1, Verdict::DataLoss),
            Event::SeedDone { item: S1 },
        ];
        let re = regex::Regex::new("^data-loss: f0").expect("regex");

        let t = CampaignState::of(&events).totals(&[re]);

        assert_eq!((t.failures, t.suppressed.len()), (0, 1));
    }

    #[test]
    fn seeds_know_how_many_checks_are_missing() {
        let mut s = CampaignState::default();
        s.apply(&Event::SeedStarted {
            item: TrialItem::Seed(4),
        });
        s.apply(&ran(4, 2));
        s.apply(&check(4, Verdict::Pass));

        assert_eq!(
            s.seed(&TrialItem::Seed(4))
                .and_then(SeedState::checks_missing),
            Some(1)
        );
    }

    #[test]
    fn instances_of_one_bucket_are_one_distinct_failure() {
        let events = vec![
            Event::SeedStarted { item: S1 },
            ran(1, 3),
            checked(1, Verdict::DataLoss, 3, Some("m5")),
            checked(1, Verdict::DataLoss, 5, Some("m5")),
            checked(1, Verdict::SizeLoss, 5, Some("m5")),
            Event::SeedDone { item: S1 },
            Event::SeedStarted { item: S2 },
            ran(2, 1),
            checked(2, Verdict::DataLoss, 2, Some("m5")),
            Event::SeedDone { item: S2 },
        ];

        let s = CampaignState::of(&events);
        let t = s.totals(&[]);
        let bucket = t.distinct_failures.first().cloned().expect("a bucket");

        assert_eq!((t.failures, t.distinct_failures.len()), (4, 2));
        assert_eq!(s.instances(&bucket).count(), 3);
    }

    #[test]
    fn buckets_of_two_mutants_stay_apart_and_suppressions_match_bucket_ids() {
        let events = vec![
            Event::SeedStarted { item: S1 },
            ran(1, 2),
            checked(1, Verdict::DataLoss, 3, Some("m3")),
            checked(1, Verdict::DataLoss, 3, Some("m5")),
            Event::SeedDone { item: S1 },
        ];
        let re = regex::Regex::new(r"\(snapshot, ext4, m3\)$").expect("regex");

        let s = CampaignState::of(&events);
        let all = s.totals(&[]);
        let known = s.totals(&[re]);

        assert_eq!(all.distinct_failures.len(), 2);
        assert_eq!((known.failures, known.suppressed.len()), (1, 1));
        assert!(known.suppressed.iter().all(|b| b.ends_with("m3)")));
    }

    #[test]
    fn a_bucket_keys_its_directory_and_old_journals_key_by_title() {
        let events = vec![
            Event::FailureSaved {
                item: S1,
                title: "t1".into(),
                dir: "failures/a".into(),
                bucket: Some("b".into()),
            },
            Event::FailureSaved {
                item: S2,
                title: "t2".into(),
                dir: "failures/t2".into(),
                bucket: None,
            },
        ];

        let s = CampaignState::of(&events);

        assert_eq!(s.failure_dir("b"), Some("failures/a"));
        assert_eq!(s.failure_dir("t2"), Some("failures/t2"));
        assert_eq!(s.failure_dir("t1"), None);
    }

    #[test]
    fn phase_totals_sum_the_finished_items_and_skip_old_lines() {
        use crate::records::{CheckPhases, RunPhases};
        let mut timed = checked(1, Verdict::Pass, 1, None);
        if let Event::Checked(c) = &mut timed {
            c.phases = Some(Box::new(CheckPhases {
                mount_us: 4_000,
                ..CheckPhases::default()
            }));
        }
        let mut reused = timed.clone();
        if let Event::Checked(c) = &mut reused {
            c.same_as = Some(Box::new(crate::records::StateRef {
                item: S1,
                at: c.at.clone(),
                model: "snapshot".into(),
            }));
        }
        let mut run = ran(1, 3);
        if let Event::RunDone { phases, .. } = &mut run {
            *phases = Some(RunPhases {
                start_us: 2_000,
                ..RunPhases::default()
            });
        }
        let events = vec![
            Event::SeedStarted { item: S1 },
            run,
            timed,
            reused,
            check(1, Verdict::Pass),
            Event::SeedDone { item: S1 },
            // Unfinished: not counted.
            Event::SeedStarted { item: S2 },
            ran(2, 1),
        ];

        let t = CampaignState::of(&events).phase_totals();

        assert_eq!((t.runs, t.checks, t.reused), (1, 2, 1));
        assert_eq!(t.run_ms.start, 2.0);
        assert_eq!(t.check_ms.mount, 8.0);
    }
}
