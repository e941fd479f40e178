//! `instances.jsonl` of a failure directory: every instance of its bucket, one [`Instance`]
//! a line (seed or workload, crash point, model, verdict, title). The first line is written
//! with the directory; later instances are appended (fsync'd) after the journal has them,
//! and a campaign that starts or resumes rewrites every list from the journal's fold.

use std::path::Path;

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use super::{write_atomically, RunDir, RunDirError};
use crate::journal::events::CheckRecord;
use crate::records::finding::CrashLabel;
use crate::records::item::TrialItem;

/// `instances.jsonl`.
pub const INSTANCES: &str = "instances.jsonl";

/// One instance of a bucket, as `instances.jsonl` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
    /// Where the power was cut.
    pub at: CrashLabel,
    /// Crash model and variant of the image.
    pub model: String,
    /// Verdict.
    pub verdict: Verdict,
    /// The instance's title (file, byte range or size).
    pub title: String,
    /// The bucket id.
    pub bucket: String,
}

impl Instance {
    /// The instance a failing check is (`None` for a check without a failure).
    pub fn of(c: &CheckRecord) -> Option<Instance> {
        let f = c.failure.as_ref()?;
        Some(Instance {
            item: c.item.clone(),
            at: c.at.clone(),
            model: c.model.clone(),
            verdict: c.verdict,
            title: f.title.clone(),
            bucket: f.bucket_id(),
        })
    }

    /// The JSON line (with its newline); `file` names the list in errors.
    pub fn line(&self, file: &Path) -> Result<String, RunDirError> {
        serde_json::to_string(self)
            .map(|l| l + "\n")
            .map_err(|e| RunDirError::bad(file, e.to_string()))
    }
}

/// Append one instance to `<dir>/instances.jsonl` (`dir` relative to the run directory) and
/// fsync it.
pub fn append_instance(run: &RunDir, dir: &str, i: &Instance) -> Result<(), RunDirError> {
    use std::io::Write;
    let path = run.root().join(dir).join(INSTANCES);
    let line = i.line(&path)?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| RunDirError::io(&path, e))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| RunDirError::io(&path, e))
}

/// Replace `<dir>/instances.jsonl` (`dir` relative to the run directory) with `list`,
/// atomically.
pub fn write_instances(run: &RunDir, dir: &str, list: &[Instance]) -> Result<(), RunDirError> {
    let path = run.root().join(dir).join(INSTANCES);
    let mut text = String::new();
    for i in list {
        text.push_str(&i.line(&path)?);
    }
    write_atomically(&path, text.as_bytes()).map_err(|e| RunDirError::io(&path, e))
}

/// Read `instances.jsonl` of a failure directory (missing: empty); lines that do not parse
/// are skipped and counted.
pub fn read_instances(dir: &Path) -> (Vec<Instance>, usize) {
    let text = std::fs::read_to_string(dir.join(INSTANCES)).unwrap_or_default();
    let mut bad = 0;
    let list = text
        .lines()
        .filter_map(|l| {
            let i = serde_json::from_str(l).ok();
            bad += usize::from(i.is_none());
            i
        })
        .collect();
    (list, bad)
}
