//! The report model: `report.json`'s schema and [`build_report`], a pure function from a
//! parsed run directory ([`RunData`]) to a [`Report`]. HTML and JUnit render from it.
//!
//! # `report.json`, schema 2
//! Schema 2 is a superset of schema 1: every schema-1 field keeps its name, type and
//! meaning, so a schema-1 reader that ignores unknown keys reads schema 2. The schema number
//! changes only when a field changes meaning or goes away. Field by field:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema` | integer | 2 |
//! | `powercut` | string | version of the powercut that ran the campaign |
//! | `rng` | string | the generator's RNG (seeds reproduce only with the same one) |
//! | `kernel`, `image`, `accelerator` | string | guest kernel release, image hash, `kvm`/`tcg`; `"unknown"` if the run directory does not record them |
//! | `crash_model`, `filesystem`, `mutant` | string, string, string or null | from `config.yaml` |
//! | `profile` | string | generator profile (new in 2) |
//! | `totals` | object | `seeds`, `checks`, `passed`, `failures`, `infra`, `distinct_failures` (titles), `infra_problems` (lines), `suppressed` (titles of known bugs) |
//! | `by_verdict` | object | verdict name → number of checks |
//! | `checks` | array | every check of a finished seed: `seed`, `point`, `verdict`, `title`, `millis`, `suppressed` |
//! | `seeds` | array | one [`SeedEntry`] per seed the campaign started (new in 2) |
//! | `failures` | array | one [`FailureEntry`] per failure directory (new in 2) |
//! | `notes` | array of strings | files of the run directory that could not be read (new in 2) |
//!
//! Suppressions (`suppressions:` in `config.yaml`) are re-applied to the recorded titles, so
//! a report regenerated after editing them reflects the new list.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use super::rundir::{FailureDir, RunData};
use crate::campaign::config::CrashModel;
use crate::campaign::journal::{self, JournalEntry};
use crate::campaign::{CheckRecord, Totals};
use crate::image::Filesystem;

/// The `schema` number of the `report.json` this module writes.
pub const SCHEMA: u32 = 2;

/// What `kernel`, `image` and `accelerator` say when the run directory does not record them.
pub const UNKNOWN: &str = "unknown";

/// `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Version of the powercut that ran the campaign.
    pub powercut: String,
    /// The generator's RNG.
    pub rng: String,
    /// Guest kernel release.
    pub kernel: String,
    /// Guest image hash.
    pub image: String,
    /// Accelerator (`kvm`, `tcg`).
    pub accelerator: String,
    /// Crash model.
    pub crash_model: CrashModel,
    /// File system under test.
    pub filesystem: Filesystem,
    /// Mutant, or none for the stock kernel.
    pub mutant: Option<String>,
    /// Generator profile.
    pub profile: String,
    /// Totals of the finished seeds.
    pub totals: Totals,
    /// Verdict name → number of checks of finished seeds.
    pub by_verdict: BTreeMap<String, usize>,
    /// Every check of a finished seed.
    pub checks: Vec<CheckRecord>,
    /// Every seed the campaign started, by seed number.
    pub seeds: Vec<SeedEntry>,
    /// Every failure directory, by seed and crash point.
    pub failures: Vec<FailureEntry>,
    /// Files of the run directory that could not be read.
    pub notes: Vec<String>,
}

/// How a seed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeedStatus {
    /// Every crash image passed.
    Pass,
    /// A kernel-bug verdict that no suppression matches.
    Fail,
    /// Kernel-bug verdicts, all matched by suppressions (known bugs).
    KnownBug,
    /// An infrastructure problem and no kernel-bug verdict: nothing proven.
    Infra,
    /// Started but not finished (campaign stopped); `--resume` runs it again.
    Incomplete,
}

impl SeedStatus {
    /// Name as serialized.
    pub fn name(self) -> &'static str {
        match self {
            SeedStatus::Pass => "pass",
            SeedStatus::Fail => "fail",
            SeedStatus::KnownBug => "known-bug",
            SeedStatus::Infra => "infra",
            SeedStatus::Incomplete => "incomplete",
        }
    }
}

/// One seed: its ops and its crash points.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedEntry {
    /// Seed.
    pub seed: u64,
    /// How it ended.
    pub status: SeedStatus,
    /// The workload's ops (empty if `workload.yaml` is missing).
    pub ops: Vec<OpEntry>,
    /// Crash points of its last attempt, in journal order.
    pub crash_points: Vec<CrashPointEntry>,
    /// The infrastructure problem that ended its run, if any.
    pub infra: Option<String>,
    /// Sum of its check times, ms.
    pub millis: u64,
    /// `seeds/<seed>/workload.yaml`, relative to the run directory, if present.
    pub workload: Option<String>,
    /// Its workload VM's console log, relative to the run directory, if present.
    pub console: Option<String>,
}

/// One op of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpEntry {
    /// Op index `k`.
    pub index: usize,
    /// Kind, as in YAML (`pwrite`, `fsync_dir`, …).
    pub kind: String,
    /// Files it touches (two for `rename`, none for `fsync_dir` and `sync`).
    pub files: Vec<String>,
}

/// Where a crash point is, parsed from its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// "after op K (kind)": op K had returned.
    After,
    /// "inside op K (kind)": op K had started, not returned.
    Inside,
}

/// A crash point label, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashAt {
    /// After or inside.
    pub when: When,
    /// Op index.
    pub op: usize,
    /// Op kind named in the label.
    pub kind: String,
}

/// One crash point of a seed and its check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashPointEntry {
    /// Label, "after op 7 (fsync)".
    pub point: String,
    /// The label parsed; null if it has another form.
    pub at: Option<CrashAt>,
    /// Verdict.
    pub verdict: Verdict,
    /// Failure title, for non-pass verdicts.
    pub title: Option<String>,
    /// Matched a suppression (known bug).
    pub suppressed: bool,
    /// Check time, ms.
    pub millis: u64,
    /// The failure directory of its title, relative to the run directory, if there is one.
    pub failure_dir: Option<String>,
}

/// One failure directory (the first occurrence of a distinct failure title).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureEntry {
    /// Failure title.
    pub title: String,
    /// Directory name under `failures/`.
    pub slug: String,
    /// `failures/<slug>`, relative to the run directory.
    pub dir: String,
    /// Verdict, from `check.json`.
    pub verdict: Option<Verdict>,
    /// Seed that produced it, from `crash-point.txt`.
    pub seed: Option<u64>,
    /// Crash point label, from `crash-point.txt`.
    pub point: Option<String>,
    /// The command that re-runs its seed, from `reproduce.sh`.
    pub reproduce: Option<String>,
    /// Checks of finished seeds with this title.
    pub occurrences: usize,
    /// Seeds with a check of this title.
    pub seeds: Vec<u64>,
    /// The title matches a suppression (known bug).
    pub suppressed: bool,
}

/// Parse "after op K (kind)" / "inside op K (kind)".
pub fn parse_point(label: &str) -> Option<CrashAt> {
    let (when, rest) = if let Some(r) = label.strip_prefix("after op ") {
        (When::After, r)
    } else {
        (When::Inside, label.strip_prefix("inside op ")?)
    };
    let (k, kind) = rest.split_once(' ')?;
    let kind = kind.strip_prefix('(')?.strip_suffix(')')?;
    Some(CrashAt {
        when,
        op: k.parse().ok()?,
        kind: kind.to_owned(),
    })
}

/// One seed's last attempt, as the journal has it.
#[derive(Debug, Default)]
struct Attempt {
    checks: Vec<CheckRecord>,
    /// `Some(infra)` once the seed is done.
    done: Option<Option<String>>,
}

/// Each seed's last attempt: a `seed_started` entry voids the checks before it, the same
/// rule [`journal::records`] applies.
fn attempts(entries: &[JournalEntry]) -> BTreeMap<u64, Attempt> {
    let mut finished: BTreeMap<u64, Attempt> = BTreeMap::new();
    let mut current: BTreeMap<u64, Vec<CheckRecord>> = BTreeMap::new();
    for e in entries {
        match e {
            JournalEntry::SeedStarted { seed } => {
                current.insert(*seed, Vec::new());
            }
            JournalEntry::Check(r) => current.entry(r.seed).or_default().push(r.clone()),
            JournalEntry::SeedDone { seed, infra } => {
                let checks = current.remove(seed).unwrap_or_default();
                finished.insert(
                    *seed,
                    Attempt {
                        checks,
                        done: Some(infra.clone()),
                    },
                );
            }
        }
    }
    for (seed, checks) in current {
        finished
            .entry(seed)
            .or_insert(Attempt { checks, done: None });
    }
    finished
}

/// Seeds whose console logs the reports show: those with a non-pass check, an infrastructure
/// problem, or no end. (All-pass seeds need none; the I/O layer skips reading theirs.)
pub fn seeds_needing_console(entries: &[JournalEntry]) -> BTreeSet<u64> {
    attempts(entries)
        .into_iter()
        .filter(|(_, a)| {
            !matches!(a.done, Some(None)) || a.checks.iter().any(|c| c.verdict != Verdict::Pass)
        })
        .map(|(seed, _)| seed)
        .collect()
}

/// How a seed ended, from its last attempt.
fn status(a: &Attempt) -> SeedStatus {
    let bug = |c: &&CheckRecord| c.verdict.is_kernel_bug();
    if a.done.is_none() {
        SeedStatus::Incomplete
    } else if a.checks.iter().filter(bug).any(|c| !c.suppressed) {
        SeedStatus::Fail
    } else if matches!(a.done, Some(Some(_)))
        || a.checks.iter().any(|c| c.verdict.is_infrastructure())
    {
        SeedStatus::Infra
    } else if a.checks.iter().any(|c| bug(&c)) {
        SeedStatus::KnownBug
    } else {
        SeedStatus::Pass
    }
}

/// Build the report. Pure: everything comes from `data`.
pub fn build_report(data: &RunData) -> Report {
    let mut notes = data.notes.clone();
    let suppressions = data.config.suppression_regexes().unwrap_or_else(|e| {
        notes.push(format!("config.yaml: suppressions ignored: {e}"));
        Vec::new()
    });
    let suppressed = |title: &Option<String>| {
        title
            .as_ref()
            .is_some_and(|t| suppressions.iter().any(|re| re.is_match(t)))
    };
    let dir_of: BTreeMap<&str, &FailureDir> = data
        .failures
        .iter()
        .map(|f| (f.title.as_str(), f))
        .collect();
    let checks: Vec<CheckRecord> = journal::records(&data.entries)
        .into_iter()
        .map(|mut r| {
            r.suppressed = r.verdict.is_kernel_bug() && suppressed(&r.title);
            r
        })
        .collect();
    let mut by_verdict = BTreeMap::new();
    for r in &checks {
        *by_verdict.entry(r.verdict.to_string()).or_insert(0) += 1;
    }
    let mut seeds = Vec::new();
    for (seed, mut attempt) in attempts(&data.entries) {
        for c in &mut attempt.checks {
            c.suppressed = c.verdict.is_kernel_bug() && suppressed(&c.title);
        }
        let ops = data.workloads.get(&seed).map_or_else(Vec::new, |w| {
            w.ops
                .iter()
                .enumerate()
                .map(|(index, op)| OpEntry {
                    index,
                    kind: op.kind().to_owned(),
                    files: op.files().into_iter().map(str::to_owned).collect(),
                })
                .collect()
        });
        let crash_points = attempt
            .checks
            .iter()
            .map(|c| CrashPointEntry {
                point: c.point.clone(),
                at: parse_point(&c.point),
                verdict: c.verdict,
                title: c.title.clone(),
                suppressed: c.suppressed,
                millis: c.millis,
                failure_dir: c
                    .title
                    .as_deref()
                    .and_then(|t| dir_of.get(t))
                    .map(|f| format!("failures/{}", f.slug)),
            })
            .collect();
        seeds.push(SeedEntry {
            seed,
            status: status(&attempt),
            ops,
            crash_points,
            infra: attempt.done.clone().flatten(),
            millis: attempt.checks.iter().map(|c| c.millis).sum(),
            workload: data
                .workloads
                .contains_key(&seed)
                .then(|| format!("seeds/{seed}/workload.yaml")),
            console: data.consoles.get(&seed).map(|c| c.path.clone()),
        });
    }
    let mut failures: Vec<FailureEntry> = data
        .failures
        .iter()
        .map(|f| {
            let same: Vec<&CheckRecord> = checks
                .iter()
                .filter(|c| c.title.as_deref() == Some(f.title.as_str()))
                .collect();
            let mut seeds: Vec<u64> = same.iter().map(|c| c.seed).collect();
            seeds.dedup();
            FailureEntry {
                title: f.title.clone(),
                slug: f.slug.clone(),
                dir: format!("failures/{}", f.slug),
                verdict: f.outcome.as_ref().map(|o| o.verdict),
                seed: f.seed,
                point: f.point.clone(),
                reproduce: f.reproduce.clone(),
                occurrences: same.len(),
                seeds,
                suppressed: suppressed(&Some(f.title.clone())),
            }
        })
        .collect();
    failures.sort_by_key(|f| {
        let at = f.point.as_deref().and_then(parse_point);
        (
            f.seed,
            at.map(|a| (a.op, a.when == When::After)),
            f.title.clone(),
        )
    });
    let info = data.info.as_ref();
    let field = |get: fn(&super::RunInfo) -> &String, fallback: &str| {
        info.map_or_else(|| fallback.to_owned(), |i| get(i).clone())
    };
    Report {
        schema: SCHEMA,
        powercut: field(|i| &i.powercut, env!("CARGO_PKG_VERSION")),
        rng: field(|i| &i.rng, workloads::generator::RNG),
        kernel: field(|i| &i.kernel, UNKNOWN),
        image: field(|i| &i.image, UNKNOWN),
        accelerator: field(|i| &i.accelerator, UNKNOWN),
        crash_model: data.config.crash_model,
        filesystem: data.config.filesystem,
        mutant: data.config.mutant.clone(),
        profile: data.config.profile.clone(),
        totals: journal::totals(&data.entries, &suppressions),
        by_verdict,
        checks,
        seeds,
        failures,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_point_labels_parse() {
        assert_eq!(
            parse_point("after op 7 (fsync_dir)"),
            Some(CrashAt {
                when: When::After,
                op: 7,
                kind: "fsync_dir".into()
            })
        );
        assert_eq!(
            parse_point("inside op 12 (pwrite)").map(|a| (a.when, a.op)),
            Some((When::Inside, 12))
        );
        assert_eq!(parse_point("before op 1 (fsync)"), None);
        assert_eq!(parse_point("after op x (fsync)"), None);
        assert_eq!(parse_point("after op 3 fsync"), None);
    }

    fn check(seed: u64, verdict: Verdict) -> JournalEntry {
        JournalEntry::Check(CheckRecord {
            seed,
            point: "after op 1 (fsync)".into(),
            verdict,
            title: (verdict != Verdict::Pass).then(|| format!("{verdict}: f0 after op 1 (fsync)")),
            millis: 10,
            suppressed: false,
        })
    }

    #[test]
    fn seed_status_follows_its_last_attempt() {
        let done = |seed, infra: Option<&str>| JournalEntry::SeedDone {
            seed,
            infra: infra.map(str::to_owned),
        };
        let entries = vec![
            check(1, Verdict::DataLoss),
            JournalEntry::SeedStarted { seed: 1 },
            check(1, Verdict::Pass),
            done(1, None),
            check(2, Verdict::Timeout),
            check(2, Verdict::MissingFile),
            done(2, None),
            done(3, Some("seed 3: boot-failed: no console")),
            JournalEntry::SeedStarted { seed: 4 },
            check(4, Verdict::Pass),
        ];

        let got: Vec<(u64, SeedStatus)> = attempts(&entries)
            .iter()
            .map(|(s, a)| (*s, status(a)))
            .collect();

        assert_eq!(
            got,
            vec![
                (1, SeedStatus::Pass),
                (2, SeedStatus::Fail),
                (3, SeedStatus::Infra),
                (4, SeedStatus::Incomplete)
            ]
        );
        assert_eq!(
            seeds_needing_console(&entries)
                .into_iter()
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn report_of_the_synthetic_run_has_seeds_failures_and_totals() {
        let data = crate::report::testdata::synthetic_run();

        let r = build_report(&data);

        assert_eq!(r.schema, SCHEMA);
        assert_eq!(
            (r.kernel.as_str(), r.accelerator.as_str()),
            ("6.12.95+deb12-amd64", "tcg")
        );
        assert_eq!(
            (
                r.totals.seeds,
                r.totals.checks,
                r.totals.failures,
                r.totals.infra
            ),
            (4, 5, 1, 1)
        );
        assert_eq!(r.totals.suppressed.len(), 1);
        let statuses: Vec<SeedStatus> = r.seeds.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            vec![
                SeedStatus::Fail,
                SeedStatus::Pass,
                SeedStatus::Infra,
                SeedStatus::KnownBug,
                SeedStatus::Incomplete
            ]
        );
        assert_eq!(r.seeds[0].ops.len(), 3);
        assert_eq!(
            r.seeds[0].crash_points[2].failure_dir.as_deref(),
            Some("failures/data-loss-f-0-0-8-after-op-2-fsync")
        );
        assert_eq!(r.failures.len(), 1);
        assert_eq!(
            (r.failures[0].occurrences, r.failures[0].seeds.clone()),
            (1, vec![1])
        );
        assert_eq!(
            r.failures[0].reproduce.as_deref(),
            Some("cargo run --release -- campaign --mutant m5 --seeds 1..=1")
        );
        let json = serde_json::to_value(&r).expect("json");
        for key in [
            "schema",
            "powercut",
            "rng",
            "kernel",
            "image",
            "accelerator",
            "crash_model",
            "filesystem",
            "mutant",
            "totals",
            "by_verdict",
            "checks",
            "seeds",
            "failures",
        ] {
            assert!(json.get(key).is_some(), "report.json lacks `{key}`");
        }
    }
}
