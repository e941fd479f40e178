//! The report model: `report.json`'s schema and [`build_report`], a pure function from a
//! read run directory ([`RunData`]: the fold of its journal and the files beside it) to a
//! [`Report`]. HTML and JUnit render from it.
//!
//! # `report.json`, schema 4
//! Schema 4 lists workload files next to seeds and counts failures by bucket: a seed's
//! entries say `"seed": N`, a workload file's say `"workload": "name"` (and `file`);
//! `failures` has one entry per bucket (the bug) with every instance, and
//! `totals.distinct_failures` names buckets. (Schema 3 typed the crash points.) Field by
//! field:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema` | integer | 4 |
//! | `powercut` | string | version of the powercut that ran the campaign |
//! | `rng` | string | the generator's RNG (seeds reproduce only with the same one) |
//! | `kernel`, `image`, `accelerator` | string | guest kernel release, image hash, `kvm`/`tcg`; `"unknown"` if the run directory does not record them |
//! | `start`, `restore_fallback` | string | how workload VMs came up (`restore`, `cold-boot`, `"unknown"`), and the first reason one cold-booted although restores were wanted (absent if none) |
//! | `crash_model`, `filesystem`, `mutant`, `profile` | string, string, string or null, string | from `config.yaml` |
//! | `modules` | array | the user's modules loaded in workload VMs (`--module`): `name`, `sha256`, `args` (from `run-info.json`; empty when none) |
//! | `totals` | object | `seeds` (items: seeds and workloads), `workloads`, `checks`, `passed`, `failures` (instances), `infra`, `distinct_failures` (bucket ids), `bucket_instances` (bucket id → instances), `infra_problems` (lines), `suppressed` (bucket ids of known bugs) |
//! | `by_verdict` | object | verdict name → number of checks |
//! | `checks` | array | every check of a finished item: `seed` or `workload`, `point` (label), `at` (`when`, `op`, `kind`), `model`, `verdict`, `title`, `bucket`, `millis`, `suppressed`, and `same_as` (the state whose byte-identical image's read-back it reused; absent if none) |
//! | `phases` | object | where the finished items' time went: `runs`, `checks`, `reused` (checks that reused an identical image's read-back), `run_ms` (`start`, `ops`, `images`) and `check_ms` (`hash`, `copy`, `mount`, `read`, `umount`, `fsck`, `oracle`) sums in ms; runs and checks recorded before phases are not counted |
//! | `seeds` | array | one [`SeedEntry`] per item (seed or workload) the campaign started |
//! | `failures` | array | one [`FailureEntry`] per bucket, with its `instances` |
//! | `stopped` | string or null | why the campaign stopped before finishing, if it did |
//! | `notes` | array of strings | files of the run directory that could not be read |
//! | `kernel_log` | object | kernel complaints in the guest console logs (informational: no verdict changes): `consoles` scanned, `total` complaints (`WARNING:`, `BUG:` incl. KASAN, `Oops:`, panics, hung tasks…), `complaints` (the first 100: `console` path, `line`, `text`) |
//! | `coverage` | array | kernel coverage, one entry per kernel (`docs/coverage.md`): `subsystems`, `functions`, `timeline`, `notes` (absent without coverage) |
//! | `coverage_diff` | array | with `--coverage-diff REV`, per kernel: `patch` (tree, revision, commit), `line` (the verdict), `functions` (each changed function: `file`, `name`, `symbols`, `blocks`, `reached`, `setup`, `reach`: `reached`, `not-reached` or `not-mapped`), `notes` |
//! | `shard` | string | only for a shard's run directory: `K/N` |
//! | `merged`, `missing_shards` | array | only for `powercut report merge`'s output: the directories merged (`dir`, `shard`, `accelerator`), and the shards of the split not among them |
//!
//! Suppressions (`suppressions:` in `config.yaml`) are re-applied to the recorded titles and
//! bucket ids, so a report regenerated after editing them reflects the new list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use workloads::oracle::{CrashPoint, Verdict};

use crate::config::shard::Shard;
use crate::image::user_modules::ModuleRecord;
use crate::image::Filesystem;
use crate::journal::events::CheckRecord;
use crate::journal::fold::{RunEnd, SeedState, Totals};
use crate::records::bucket::Bucket;
use crate::records::finding::CrashLabel;
use crate::records::item::TrialItem;
use crate::records::{CrashModel, PhaseTotals};
use crate::rundir::{MergedRun, RunDir};
use crate::runs::read::RunData;

/// The `schema` number of the `report.json` this module writes.
pub const SCHEMA: u32 = 4;

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
    /// How workload VMs came up (`restore`, `cold-boot`; `unknown` for older runs).
    #[serde(default)]
    pub start: String,
    /// Why a workload VM cold-booted although restores were wanted (the first reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_fallback: Option<String>,
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
    /// Where the finished items' time went.
    #[serde(default)]
    pub phases: PhaseTotals,
    /// Every check of a finished seed.
    pub checks: Vec<CheckEntry>,
    /// Every seed the campaign started, by seed number.
    pub seeds: Vec<SeedEntry>,
    /// Every bucket (distinct failure), first seen first.
    pub failures: Vec<FailureEntry>,
    /// Why the campaign stopped before finishing, if it did.
    pub stopped: Option<String>,
    /// Files of the run directory that could not be read.
    pub notes: Vec<String>,
    /// A kernel matrix: one section per kernel with its own report; the top-level
    /// `totals` and `by_verdict` are their sums and the per-item lists are in the sections.
    /// Empty for a campaign on one kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<super::matrix::KernelSection>,
    /// The shard of the campaign this run directory ran (`--shard K/N`); absent for a whole
    /// campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// A merged run directory (`powercut report merge`): the directories merged, in order,
    /// each with its shard and accelerator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedRun>,
    /// A merge of shards: the shards of the split that were not merged (their items are
    /// missing from this report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<Shard>,
    /// Kernel complaints (warnings, lockdep, KASAN, BUGs, hung tasks) in the guest console
    /// logs: informational, they change no verdict. Reports written before this field read
    /// it as none.
    #[serde(default)]
    pub kernel_log: crate::runs::kernel_log::KernelLog,
    /// Kernel coverage of the runs (`docs/coverage.md`): per kernel, per subsystem and per
    /// function, and blocks reached over the campaign's time. Absent without coverage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<crate::coverage::CoverageSummary>,
    /// Diff coverage (`--coverage-diff REV`): per kernel, each function the patch changes
    /// and how far the campaign reached it, and the one-line verdict. Absent without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage_diff: Vec<crate::coverage::diff::DiffCoverage>,
    /// While building a matrix: this kernel's entry of `run-info.json` (not serialized).
    #[serde(skip)]
    pub kernel_info: Option<crate::rundir::KernelInfo>,
}

/// One check of a finished seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckEntry {
    /// Seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
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
    /// Failure bucket id, for kernel-bug verdicts.
    pub bucket: Option<String>,
    /// Check time, ms.
    pub millis: u64,
    /// Matched a suppression (known bug).
    pub suppressed: bool,
    /// The state whose byte-identical crash image's read-back this check reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
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
    /// Seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
    /// A workload input's original file (`workloads.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
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
    /// `seeds/<seed>/workload.yaml` or `workloads/<name>/workload.yaml`, relative to the
    /// run directory, if present.
    pub workload_yaml: Option<String>,
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
    /// Failure bucket id, for kernel-bug verdicts.
    pub bucket: Option<String>,
    /// Matched a suppression (known bug).
    pub suppressed: bool,
    /// Check time, ms.
    pub millis: u64,
    /// The failure directory of its bucket, relative to the run directory, if there is one.
    pub failure_dir: Option<String>,
}

/// One bucket: a distinct failure, with every instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureEntry {
    /// The bucket id (for journals written before buckets: the first instance's title).
    pub bucket: String,
    /// The bucket's parts (absent for journals written before buckets).
    pub key: Option<Bucket>,
    /// The first instance's title.
    pub title: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// The seed or workload of its first instance.
    pub first: TrialItem,
    /// The crash point of its first instance.
    pub point: String,
    /// Its failure directory (`failures/<slug>`), relative to the run directory, if one was
    /// written.
    pub dir: Option<String>,
    /// More directories of it: in a merge of shards, those of the shards after the first
    /// that found it (`failures/<slug>-shard-K-of-N`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_dirs: Vec<String>,
    /// The command that re-runs its first instance (from the directory's `failure.json`).
    pub reproduce: Option<String>,
    /// Checks of finished items in this bucket (instances).
    pub occurrences: usize,
    /// Seeds and workloads with an instance.
    pub items: Vec<TrialItem>,
    /// Every instance.
    pub instances: Vec<InstanceEntry>,
    /// A suppression matches it (known bug).
    pub suppressed: bool,
}

/// One instance of a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceEntry {
    /// Seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
    /// Crash point label.
    pub point: String,
    /// Crash model and variant.
    pub model: String,
    /// The instance's title (file and range).
    pub title: String,
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
    let is_suppressed = |c: &CheckRecord| crate::journal::fold::is_suppressed(c, &suppressions);
    let state = &data.state;
    let checks: Vec<CheckEntry> = state
        .finished_checks()
        .map(|c| CheckEntry {
            item: c.item.clone(),
            point: c.at.to_string(),
            at: CrashAt::of(&c.at),
            model: c.model.clone(),
            verdict: c.verdict,
            title: c.title().map(str::to_owned),
            bucket: c.bucket_id(),
            millis: c.millis,
            suppressed: is_suppressed(c),
            same_as: c.same_as.as_ref().map(ToString::to_string),
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
    let failures = failure_entries(data, &is_suppressed);
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
        start: field(|i| &i.start, UNKNOWN),
        restore_fallback: info.and_then(|i| i.restore_fallback.clone()),
        crash_model: data.config.crash_model,
        filesystem: data.config.filesystem,
        mutant: data.config.mutant.clone(),
        modules: info.map_or_else(Vec::new, |i| i.modules.clone()),
        profile: data.config.profile.clone(),
        totals: state.totals(&suppressions),
        phases: state.phase_totals(),
        by_verdict,
        checks,
        seeds,
        failures,
        stopped: state.stopped.clone(),
        notes,
        kernels: Vec::new(),
        shard: info.and_then(|i| i.shard),
        merged: info.map_or_else(Vec::new, |i| i.merged.clone()),
        missing_shards: info.map_or_else(Vec::new, |i| missing_shards(&i.merged)),
        kernel_log: data.kernel_log.clone(),
        coverage: data.coverage.clone(),
        coverage_diff: data.coverage_diff.clone(),
        kernel_info: data
            .kernel
            .as_ref()
            .and_then(|k| info.and_then(|i| i.kernels.iter().find(|ki| ki.name == *k).cloned())),
    }
}

/// The shards of a merge's split that it does not hold.
fn missing_shards(merged: &[MergedRun]) -> Vec<Shard> {
    let Some(n) = merged.iter().find_map(|m| m.shard).map(Shard::count) else {
        return Vec::new();
    };
    (1..=n)
        .filter_map(|k| Shard::new(k, n).ok())
        .filter(|k| !merged.iter().any(|m| m.shard == Some(*k)))
        .collect()
}

fn seed_entry(
    data: &RunData,
    seed: &TrialItem,
    s: &SeedState,
    is_suppressed: &dyn Fn(&CheckRecord) -> bool,
) -> SeedEntry {
    let ops = data.workloads.get(seed).map_or_else(Vec::new, |w| {
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
            bucket: c.bucket_id(),
            suppressed: is_suppressed(c),
            millis: c.millis,
            failure_dir: c
                .bucket_id()
                .and_then(|b| data.state.failure_dir(&b))
                .map(str::to_owned),
        })
        .collect();
    let problems = s.problems(seed);
    SeedEntry {
        item: seed.clone(),
        file: seed
            .workload()
            .and_then(|n| data.workload_files.get(n))
            .cloned(),
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
        workload_yaml: data
            .workloads
            .contains_key(seed)
            .then(|| format!("{}/workload.yaml", RunDir::item_rel(seed))),
        console: data.consoles.get(seed).map(|c| c.path.clone()),
    }
}

/// One entry per bucket of the finished checks, first instance first.
fn failure_entries(
    data: &RunData,
    is_suppressed: &dyn Fn(&CheckRecord) -> bool,
) -> Vec<FailureEntry> {
    let mut out: Vec<FailureEntry> = Vec::new();
    for c in data.state.finished_checks() {
        let (Some(f), true) = (&c.failure, c.verdict.is_kernel_bug()) else {
            continue;
        };
        let bucket = f.bucket_id();
        let instance = InstanceEntry {
            item: c.item.clone(),
            point: c.at.to_string(),
            model: c.model.clone(),
            title: f.title.clone(),
        };
        if let Some(e) = out.iter_mut().find(|e| e.bucket == bucket) {
            e.occurrences += 1;
            if !e.items.contains(&c.item) {
                e.items.push(c.item.clone());
            }
            e.instances.push(instance);
            continue;
        }
        let dir = data.state.failure_dir(&bucket).map(str::to_owned);
        let reproduce = dir.as_deref().and_then(|d| {
            data.failures
                .iter()
                .find(|f| Some(f.slug().as_str()) == d.strip_prefix("failures/"))
                .map(|f| f.record.reproduce.clone())
        });
        out.push(FailureEntry {
            other_dirs: data.state.other_failure_dirs(&bucket).to_vec(),
            key: f.bucket.as_deref().cloned(),
            bucket,
            title: f.title.clone(),
            verdict: c.verdict,
            first: c.item.clone(),
            point: c.at.to_string(),
            dir,
            reproduce,
            occurrences: 1,
            items: vec![c.item.clone()],
            instances: vec![instance],
            suppressed: is_suppressed(c),
        });
    }
    out
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
