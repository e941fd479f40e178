//! The report model: `report.json`'s schema and [`build_report`], a pure function from a
//! read run directory ([`RunData`]: the fold of its journal and the files beside it) to a
//! [`Report`]. HTML and JUnit render from it.
//!
//! # `report.json`, schema 3
//! Schema 3 changed how checks and failures are listed: crash points are typed (`at`), and
//! `failures` lists every distinct failure title the journal recorded (with its directory
//! when one was written), not every directory found. Field by field:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema` | integer | 3 |
//! | `powercut` | string | version of the powercut that ran the campaign |
//! | `rng` | string | the generator's RNG (seeds reproduce only with the same one) |
//! | `kernel`, `image`, `accelerator` | string | guest kernel release, image hash, `kvm`/`tcg`; `"unknown"` if the run directory does not record them |
//! | `crash_model`, `filesystem`, `mutant`, `profile` | string, string, string or null, string | from `config.yaml` |
//! | `modules` | array | the user's modules loaded in workload VMs (`--module`): `name`, `sha256`, `args` (from `run-info.json`; added in powercut 0.1, absent before) |
//! | `totals` | object | `seeds`, `checks`, `passed`, `failures`, `infra`, `distinct_failures` (titles), `infra_problems` (lines), `suppressed` (titles of known bugs) |
//! | `by_verdict` | object | verdict name → number of checks |
//! | `checks` | array | every check of a finished seed: `seed`, `point` (label), `at` (`when`, `op`, `kind`), `model`, `verdict`, `title`, `millis`, `suppressed` |
//! | `seeds` | array | one [`SeedEntry`] per seed the campaign started |
//! | `failures` | array | one [`FailureEntry`] per distinct failure title |
//! | `stopped` | string or null | why the campaign stopped before finishing, if it did |
//! | `notes` | array of strings | files of the run directory that could not be read |
//!
//! Suppressions (`suppressions:` in `config.yaml`) are re-applied to the recorded titles, so
//! a report regenerated after editing them reflects the new list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use workloads::oracle::{CrashPoint, Verdict};

use crate::campaign::config::CrashModel;
use crate::campaign::events::CheckRecord;
use crate::campaign::fold::{RunEnd, SeedState, Totals};
use crate::image::user_modules::ModuleRecord;
use crate::image::Filesystem;
use crate::rundir::read::RunData;
use crate::trial::finding::CrashLabel;

/// The `schema` number of the `report.json` this module writes.
pub const SCHEMA: u32 = 3;

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
    /// The user's modules loaded in workload VMs: name, sha256, arguments.
    #[serde(default)]
    pub modules: Vec<ModuleRecord>,
    /// Generator profile.
    pub profile: String,
    /// Totals of the finished seeds.
    pub totals: Totals,
    /// Verdict name → number of checks of finished seeds.
    pub by_verdict: BTreeMap<String, usize>,
    /// Every check of a finished seed.
    pub checks: Vec<CheckEntry>,
    /// Every seed the campaign started, by seed number.
    pub seeds: Vec<SeedEntry>,
    /// Every distinct failure title, by seed and crash point.
    pub failures: Vec<FailureEntry>,
    /// Why the campaign stopped before finishing, if it did.
    pub stopped: Option<String>,
    /// Files of the run directory that could not be read.
    pub notes: Vec<String>,
}

/// One check of a finished seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckEntry {
    /// Seed.
    pub seed: u64,
    /// Crash point label, "after op 7 (fsync)".
    pub point: String,
    /// The crash point.
    pub at: CrashAt,
    /// Crash model and variant.
    pub model: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Failure title, for kernel-bug verdicts.
    pub title: Option<String>,
    /// Check time, ms.
    pub millis: u64,
    /// Matched a suppression (known bug).
    pub suppressed: bool,
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
    /// The crash point.
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

/// One distinct failure title.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureEntry {
    /// Failure title.
    pub title: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// The seed of its first instance.
    pub seed: u64,
    /// The crash point of its first instance.
    pub point: String,
    /// Its failure directory (`failures/<slug>`), relative to the run directory, if one was
    /// written.
    pub dir: Option<String>,
    /// The command that re-runs its seed (from the directory's `failure.json`).
    pub reproduce: Option<String>,
    /// Checks of finished seeds with this title.
    pub occurrences: usize,
    /// Seeds with a check of this title.
    pub seeds: Vec<u64>,
    /// The title matches a suppression (known bug).
    pub suppressed: bool,
}

impl FailureEntry {
    /// The directory name under `failures/`, if there is a directory.
    pub fn slug(&self) -> Option<&str> {
        self.dir
            .as_deref()
            .and_then(|d| d.strip_prefix("failures/"))
    }
}

impl CrashAt {
    /// The typed crash label as the report shows it.
    pub fn of(label: &CrashLabel) -> CrashAt {
        CrashAt {
            when: match label.point {
                CrashPoint::AfterOp(_) => When::After,
                CrashPoint::InsideOp(_) => When::Inside,
            },
            op: label.op(),
            kind: label.kind.clone(),
        }
    }
}

/// How a seed ended, from its last attempt.
fn status(s: &SeedState, suppressed: &dyn Fn(&CheckRecord) -> bool) -> SeedStatus {
    let bug = |c: &&CheckRecord| c.verdict.is_kernel_bug();
    if !s.done {
        SeedStatus::Incomplete
    } else if s.checks.iter().filter(bug).any(|c| !suppressed(c)) {
        SeedStatus::Fail
    } else if matches!(s.run, Some(RunEnd::Failed { .. }))
        || matches!(
            s.run,
            Some(RunEnd::Done {
                live_mismatch: Some(_),
                ..
            })
        )
        || s.checks.iter().any(|c| c.verdict.is_infrastructure())
    {
        SeedStatus::Infra
    } else if s.checks.iter().any(|c| bug(&c)) {
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
    let is_suppressed = |c: &CheckRecord| {
        c.verdict.is_kernel_bug()
            && c.title()
                .is_some_and(|t| suppressions.iter().any(|re| re.is_match(t)))
    };
    let state = &data.state;
    let checks: Vec<CheckEntry> = state
        .finished_checks()
        .map(|c| CheckEntry {
            seed: c.seed,
            point: c.at.to_string(),
            at: CrashAt::of(&c.at),
            model: c.model.clone(),
            verdict: c.verdict,
            title: c.title().map(str::to_owned),
            millis: c.millis,
            suppressed: is_suppressed(c),
        })
        .collect();
    let mut by_verdict = BTreeMap::new();
    for c in &checks {
        *by_verdict.entry(c.verdict.to_string()).or_insert(0) += 1;
    }
    let seeds = state
        .seeds()
        .map(|(seed, s)| seed_entry(data, seed, s, &is_suppressed))
        .collect();
    let failures = failure_entries(data, &checks);
    let info = data.info.as_ref();
    let field = |get: fn(&crate::rundir::RunInfo) -> &String, fallback: &str| {
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
        modules: info.map_or_else(Vec::new, |i| i.modules.clone()),
        profile: data.config.profile.clone(),
        totals: state.totals(&suppressions),
        by_verdict,
        checks,
        seeds,
        failures,
        stopped: state.stopped.clone(),
        notes,
    }
}

fn seed_entry(
    data: &RunData,
    seed: u64,
    s: &SeedState,
    is_suppressed: &dyn Fn(&CheckRecord) -> bool,
) -> SeedEntry {
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
    let crash_points = s
        .checks
        .iter()
        .map(|c| CrashPointEntry {
            point: c.at.to_string(),
            at: Some(CrashAt::of(&c.at)),
            verdict: c.verdict,
            title: c.title().map(str::to_owned),
            suppressed: is_suppressed(c),
            millis: c.millis,
            failure_dir: c
                .title()
                .and_then(|t| data.state.failure_dir(t))
                .map(str::to_owned),
        })
        .collect();
    let problems = s.problems(seed);
    SeedEntry {
        seed,
        status: status(s, is_suppressed),
        ops,
        crash_points,
        infra: match &s.run {
            Some(
                RunEnd::Failed { .. }
                | RunEnd::Done {
                    live_mismatch: Some(_),
                    ..
                },
            ) => problems.first().cloned(),
            _ => None,
        },
        millis: s.checks.iter().map(|c| c.millis).sum(),
        workload: data
            .workloads
            .contains_key(&seed)
            .then(|| format!("seeds/{seed}/workload.yaml")),
        console: data.consoles.get(&seed).map(|c| c.path.clone()),
    }
}

/// One entry per distinct failure title of the finished checks, first instance first.
fn failure_entries(data: &RunData, checks: &[CheckEntry]) -> Vec<FailureEntry> {
    let mut out: Vec<FailureEntry> = Vec::new();
    for c in checks.iter().filter(|c| c.verdict.is_kernel_bug()) {
        let Some(title) = &c.title else { continue };
        if let Some(f) = out.iter_mut().find(|f| &f.title == title) {
            f.occurrences += 1;
            if !f.seeds.contains(&c.seed) {
                f.seeds.push(c.seed);
            }
            continue;
        }
        let dir = data.state.failure_dir(title).map(str::to_owned);
        let reproduce = dir.as_deref().and_then(|d| {
            data.failures
                .iter()
                .find(|f| Some(f.slug().as_str()) == d.strip_prefix("failures/"))
                .map(|f| f.record.reproduce.clone())
        });
        out.push(FailureEntry {
            title: title.clone(),
            verdict: c.verdict,
            seed: c.seed,
            point: c.point.clone(),
            dir,
            reproduce,
            occurrences: 1,
            seeds: vec![c.seed],
            suppressed: c.suppressed,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(r.failures.len(), 2, "the failure and the known bug");
        assert_eq!(
            (r.failures[0].occurrences, r.failures[0].seeds.clone()),
            (1, vec![1])
        );
        assert_eq!(
            r.failures[0].reproduce.as_deref(),
            Some("cargo run --release -- campaign --mutant m5 --seeds 1..=1")
        );
        assert!(r.failures[1].suppressed && r.failures[1].dir.is_none());
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
            "stopped",
        ] {
            assert!(json.get(key).is_some(), "report.json lacks `{key}`");
        }
    }

    #[test]
    fn a_failure_without_a_directory_still_appears() {
        let mut data = crate::report::testdata::synthetic_run();
        data.failures.clear();

        let r = build_report(&data);

        assert_eq!(r.failures[0].title, crate::report::testdata::TITLE);
        assert_eq!(r.failures[0].reproduce, None);
        assert_eq!(r.totals.failures, 1);
    }
}
