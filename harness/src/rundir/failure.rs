//! Failure directories, `failures/<slug>/`: one per failure bucket
//! ([`crate::records::bucket::Bucket`]: the bug, not the instance), holding its first instance
//! in full — everything a kernel developer needs to look at it, and everything `repro` and
//! `minimize` need to re-run it — and the list of every instance:
//!
//! | file | what |
//! |---|---|
//! | `failure.json` | [`FailureRecord`]: bucket, title, verdict, signature, crash point, seed or workload, file system, mutant, crash model |
//! | `instances.jsonl` | every instance of the bucket, one [`Instance`] a line: seed or workload, crash point, model, title (with the file and range) |
//! | `workload.yaml` | the workload, exactly as it ran |
//! | `expectation.json`, `check.json` | what the oracle allowed; the checker's verdict and findings |
//! | `diff.txt` | the byte diff ([`super::diff`]) |
//! | `<vm>.console.log` | the workload VM's console |
//! | `crash.img.zst` | the crash image (within the campaign's cap) |
//! | `lost-lines.txt`, `lost-lines.json` | the cache lines the crash state lost: file ranges, storing code, missing flush or fence (cache model) |
//! | `reproduce.sh` | the command that re-runs the seed or workload |
//!
//! A directory is written under a temporary name and renamed into place, so a reader never
//! sees half of one. Later instances are appended to `instances.jsonl` (fsync'd) after the
//! journal has them; the journal is the record, and a campaign that starts or resumes
//! rewrites every list from it, so a cut append or a voided attempt never lingers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::oracle::{CrashPoint, Expectation, Verdict};
use workloads::Workload;

use super::diff::{diff_text, slug};
pub use super::instances::{append_instance, read_instances, write_instances, Instance, INSTANCES};
use super::{fsync_dir, RunDir, RunDirError, WORKLOAD};
use crate::cache_model::lost::{self as cache_lost, LostReport};
use crate::cache_model::{CacheCut, CutSelector, Variant};
use crate::config::CampaignConfig;
use crate::records::bucket::Bucket;
use crate::records::finding::{CrashLabel, Signature};
use crate::records::item::TrialItem;
use crate::records::CheckOutcome;

/// `failure.json`.
pub const FAILURE_JSON: &str = "failure.json";
/// `failure.json` schema version. Schema 2 added `bucket` and `workload`; schema 1
/// directories (one per title) still read. `cache_cut` is optional (absent: snapshot model).
pub const FAILURE_SCHEMA: u32 = 2;
/// `lost-lines.json` (cache model).
pub const LOST_JSON: &str = "lost-lines.json";

/// `failure.json`: what a failure is, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    /// [`FAILURE_SCHEMA`].
    pub schema: u32,
    /// The failure title.
    pub title: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// What identifies it across re-runs.
    pub signature: Signature,
    /// The bucket (absent in schema 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    /// Where the power was cut.
    pub crash: CrashLabel,
    /// Crash model and variant of the image (`snapshot`, `cache:worst`, …).
    pub crash_model: String,
    /// The seed of the run's crash plan: the generated seed, or the workload's `seed`.
    pub seed: u64,
    /// The workload input's name, when the run was a workload file (absent: a generated
    /// seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// File system (and oracle rules) name.
    pub filesystem: String,
    /// The mutant loaded (`None`: the stock kernel).
    pub mutant: Option<String>,
    /// The user's own modules (`--module`) loaded in the workload VM, name and sha256
    /// each. Absent (empty) in directories written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<crate::image::user_modules::ModuleRecord>,
    /// The command that re-runs the seed or workload.
    pub reproduce: String,
    /// Cache model: which cut and crash state (what `repro` rebuilds from a new trace).
    /// Absent for the snapshot model and in directories written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_cut: Option<CacheCut>,
    /// The kernel of a kernel matrix it was found on (its spec as `kernels:` lists it);
    /// absent for a campaign on one kernel, whose `run-info.json` names the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

impl FailureRecord {
    /// Cache model: the crash states a re-run of the workload must build to look for this
    /// failure at `point` (the recorded point, or where a minimizer moved it). `exact`
    /// pins the position inside the op context (repro); without it every cut at `point`
    /// qualifies (minimize: fences move when ops go). `None` for the snapshot model.
    pub fn cache_selector(&self, point: CrashPoint, exact: bool) -> Option<CutSelector> {
        let variant_of_model = || {
            self.crash_model
                .strip_prefix("cache:")
                .and_then(|v| v.parse::<Variant>().ok())
        };
        match &self.cache_cut {
            Some(c) => Some(CutSelector {
                point,
                at: exact.then_some(c.at),
                variant: c.variant,
                subset_seed: c.subset_seed,
            }),
            None => variant_of_model().map(|variant| CutSelector {
                point,
                at: None,
                variant,
                subset_seed: None,
            }),
        }
    }
}

impl FailureRecord {
    /// The item of its first instance.
    pub fn item(&self) -> TrialItem {
        self.workload
            .clone()
            .map_or(TrialItem::Seed(self.seed), TrialItem::Workload)
    }

    /// Its bucket id, or its title for a schema 1 directory.
    pub fn bucket_id(&self) -> String {
        self.bucket
            .as_ref()
            .map_or_else(|| self.title.clone(), Bucket::id)
    }
}

/// Everything of a failure's first instance that goes into its directory.
pub struct NewFailure<'a> {
    /// `failure.json`.
    pub record: &'a FailureRecord,
    /// The workload.
    pub workload: &'a Workload,
    /// The oracle's expectation.
    pub expectation: &'a Expectation,
    /// The checker's outcome.
    pub outcome: &'a CheckOutcome,
    /// The workload VM's console log.
    pub console: &'a Path,
    /// The crash image, if it is to be kept (compressed).
    pub image: Option<&'a Path>,
    /// The lost-lines report of the image (cache model).
    pub lost_lines: Option<&'a Path>,
    /// The first instance, the first line of `instances.jsonl`.
    pub first: &'a Instance,
    /// Its typed form (`lost-lines.json`).
    pub lost_report: Option<&'a Path>,
}

/// Write the failure directory of `f` under `run`'s `failures/`; returns its path relative
/// to the run directory (`failures/<slug>`).
pub fn write(run: &RunDir, f: &NewFailure<'_>) -> Result<String, RunDirError> {
    let root = run.failures();
    std::fs::create_dir_all(&root).map_err(|e| RunDirError::io(&root, e))?;
    let name = free_slug(&root, &f.record.bucket_id(), f.record.kernel.as_deref());
    let tmp = tempfile::Builder::new()
        .prefix(".writing-")
        .tempdir_in(&root)
        .map_err(|e| RunDirError::io(&root, e))?;
    let put = |file: &str, bytes: &[u8]| {
        let p = tmp.path().join(file);
        std::fs::write(&p, bytes).map_err(|e| RunDirError::io(&p, e))
    };
    put(FAILURE_JSON, pretty(f.record, &root)?.as_bytes())?;
    put(INSTANCES, f.first.line(&root)?.as_bytes())?;
    put(
        WORKLOAD,
        serde_yaml::to_string(f.workload)
            .map_err(|e| RunDirError::bad(&root, e.to_string()))?
            .as_bytes(),
    )?;
    put("expectation.json", pretty(f.expectation, &root)?.as_bytes())?;
    put("check.json", pretty(f.outcome, &root)?.as_bytes())?;
    let lost = f.lost_report.and_then(|p| cache_lost::read(p).ok());
    put(
        "diff.txt",
        diff_text(f.outcome, f.expectation, lost.as_ref()).as_bytes(),
    )?;
    put(
        "reproduce.sh",
        format!(
            "#!/bin/sh\n# Re-run the seed or workload that produced this failure.\n{}\n",
            f.record.reproduce
        )
        .as_bytes(),
    )?;
    if let Some(name) = f.console.file_name() {
        let to = tmp.path().join(name);
        std::fs::copy(f.console, &to).map_err(|e| RunDirError::io(&to, e))?;
    }
    if let Some(lost) = f.lost_lines {
        let to = tmp.path().join("lost-lines.txt");
        std::fs::copy(lost, &to).map_err(|e| RunDirError::io(&to, e))?;
    }
    if let Some(lost) = f.lost_report {
        let to = tmp.path().join(LOST_JSON);
        std::fs::copy(lost, &to).map_err(|e| RunDirError::io(&to, e))?;
    }
    if let Some(img) = f.image {
        keep_image(img, tmp.path())?;
    }
    let tmp = tmp.keep();
    let dest = root.join(&name);
    if dest.exists() {
        // Left by an attempt that was killed before it journaled the directory.
        std::fs::remove_dir_all(&dest).map_err(|e| RunDirError::io(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| RunDirError::io(&dest, e))?;
    fsync_dir(&root).map_err(|e| RunDirError::io(&root, e))?;
    Ok(format!("{}/{name}", super::FAILURES))
}

/// The slug of a bucket id (in a kernel matrix, of the kernel and the bucket: each kernel
/// keeps its own directory of a bucket), or with `-2`, `-3`, … when another bucket's (or
/// another kernel's) directory has it.
fn free_slug(root: &Path, bucket: &str, kernel: Option<&str>) -> String {
    let base = match kernel {
        Some(k) => slug(&format!("{k} {bucket}")),
        None => slug(bucket),
    };
    let mut name = base.clone();
    for n in 2.. {
        let taken_by_other = std::fs::read(root.join(&name).join(FAILURE_JSON))
            .ok()
            .and_then(|b| serde_json::from_slice::<FailureRecord>(&b).ok())
            .is_some_and(|r| r.bucket_id() != bucket || r.kernel.as_deref() != kernel);
        if !taken_by_other {
            break;
        }
        name = format!("{base}-{n}");
    }
    name
}

/// Keep the crash image compressed (`zstd -d crash.img.zst`); without zstd, as a sparse copy.
fn keep_image(img: &Path, dir: &Path) -> Result<(), RunDirError> {
    let zst = dir.join("crash.img.zst");
    let mut cmd = std::process::Command::new("zstd");
    cmd.args(["-q", "-f", "-3"]).arg(img).arg("-o").arg(&zst);
    crate::host::process::die_with_parent(&mut cmd);
    let compressed = cmd.status().is_ok_and(|s| s.success());
    if compressed {
        return Ok(());
    }
    // A partial .zst would mislead: it goes, the copy stands in for it.
    std::fs::remove_file(&zst).ok();
    let to = dir.join("crash.img");
    crate::host::blocks::sparse_copy(img, &to)
        .map(drop)
        .map_err(|e| RunDirError::io(&to, e))
}

fn pretty<T: Serialize>(value: &T, file: &Path) -> Result<String, RunDirError> {
    serde_json::to_string_pretty(value).map_err(|e| RunDirError::bad(file, e.to_string()))
}

/// A failure directory, read back.
#[derive(Debug, Clone)]
pub struct FailureDir {
    /// The directory.
    pub dir: PathBuf,
    /// `failure.json`.
    pub record: FailureRecord,
    /// `workload.yaml`, validated.
    pub workload: Workload,
    /// `check.json`, if it parses.
    pub outcome: Option<CheckOutcome>,
    /// `diff.txt` (empty if missing).
    pub diff: String,
    /// The console log copied into it, if any.
    pub console: Option<PathBuf>,
    /// `lost-lines.json` (cache model), if present and readable.
    pub lost: Option<LostReport>,
}

impl FailureDir {
    /// Read the failure directory `dir` to re-run it: [`FailureDir::load`], and the
    /// workload must be valid.
    pub fn load_valid(dir: &Path) -> Result<FailureDir, RunDirError> {
        let f = FailureDir::load(dir)?;
        workloads::spec::validate(&f.workload)
            .map_err(|e| RunDirError::bad(&dir.join(WORKLOAD), e.to_string()))?;
        Ok(f)
    }

    /// Read the failure directory `dir` (for a report): `failure.json` must parse and the
    /// workload's op at the crash point must be of the recorded kind.
    pub fn load(dir: &Path) -> Result<FailureDir, RunDirError> {
        let path = dir.join(FAILURE_JSON);
        let bytes = std::fs::read(&path).map_err(|e| RunDirError::io(&path, e))?;
        let record: FailureRecord =
            serde_json::from_slice(&bytes).map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        if !(1..=FAILURE_SCHEMA).contains(&record.schema) {
            return Err(RunDirError::bad(
                &path,
                format!(
                    "schema {} (this powercut reads 1 to {FAILURE_SCHEMA})",
                    record.schema
                ),
            ));
        }
        let workload = super::read_workload(&dir.join(WORKLOAD))?;
        let k = record.crash.op();
        match workload.ops.get(k) {
            Some(op) if op.kind() == record.crash.kind => {}
            Some(op) => {
                return Err(RunDirError::bad(
                    &path,
                    format!(
                        "the crash point names a {} but op {k} of workload.yaml is a {}: the directory mixes two failures",
                        record.crash.kind,
                        op.kind()
                    ),
                ))
            }
            None => {
                return Err(RunDirError::bad(
                    &path,
                    format!(
                        "crash point op {k} is past the workload's {} ops",
                        workload.ops.len()
                    ),
                ))
            }
        }
        let outcome = std::fs::read(dir.join("check.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let diff = std::fs::read_to_string(dir.join("diff.txt")).unwrap_or_default();
        let console = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".console.log"));
        let lost = cache_lost::read(&dir.join(LOST_JSON)).ok();
        Ok(FailureDir {
            dir: dir.to_owned(),
            record,
            workload,
            outcome,
            diff,
            console,
            lost,
        })
    }

    /// The directory name under `failures/`.
    pub fn slug(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// The run directory it sits in (`<run>/failures/<slug>/`), if it still does.
    pub fn run_dir(&self) -> Option<RunDir> {
        let failures = self.dir.parent()?;
        (failures.file_name()? == super::FAILURES)
            .then(|| RunDir::new(failures.parent().unwrap_or(Path::new("."))))
    }

    /// The campaign config of its run directory, if it is still inside one.
    pub fn campaign_config(&self) -> Result<Option<CampaignConfig>, RunDirError> {
        match self.run_dir() {
            Some(run) => run.read_config(),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;
