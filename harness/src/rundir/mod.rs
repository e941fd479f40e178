//! The run directory of a campaign: the only module that knows its file names and formats.
//!
//! ```text
//! <run>/config.yaml        the effective config (written atomically, once)
//! <run>/run-info.json      kernel, image, accelerator, versions
//! <run>/journal.jsonl      the event journal (journal)
//! <run>/report.json, report.html
//! <run>/seeds/<seed>/      workload.yaml, the workload VM's console and QEMU logs, error.txt
//! <run>/workloads.json     the workload inputs: name and original file ([`items`])
//! <run>/workloads/<name>/  as a seed directory; workload.yaml is the copy of the input file
//! <run>/checkers/          checker VM logs and pmem files
//! <run>/failures/<slug>/   one per failure bucket (see [`failure`])
//! ```
//!
//! Every file is written through a temporary file and a rename ([`write_atomically`]), and
//! the directory is fsync'd after a file is created in it.

pub mod diff;
pub mod failure;
pub mod instances;
pub mod items;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::Workload;

use crate::config::shard::Shard;
use crate::config::CampaignConfig;
use crate::host::{fsync_dir, write_atomically};
use crate::image::user_modules::ModuleRecord;
use crate::records::item::TrialItem;

/// `config.yaml`.
pub const CONFIG: &str = "config.yaml";
/// `journal.jsonl`.
pub const JOURNAL: &str = "journal.jsonl";
/// `run-info.json`.
pub const RUN_INFO: &str = "run-info.json";
/// Largest record file (`run-info.json`, `config.yaml`, `failure.json`) read, in bytes.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;
/// `report.json`.
pub const REPORT_JSON: &str = "report.json";
/// `report.html`.
pub const REPORT_HTML: &str = "report.html";
/// `seeds/`.
pub const SEEDS: &str = "seeds";
/// `failures/`.
pub const FAILURES: &str = "failures";
/// `workloads/`.
pub const WORKLOADS: &str = "workloads";
/// `workload.yaml` (in a seed or failure directory).
pub const WORKLOAD: &str = "workload.yaml";

/// Errors of the run directory.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not say what it should.
    #[error("{path}: {message}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl RunDirError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> RunDirError {
        RunDirError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn bad(path: &Path, message: impl Into<String>) -> RunDirError {
        RunDirError::Bad {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// Did this fail because the disk is full?
    pub fn is_disk_full(&self) -> bool {
        matches!(self, RunDirError::Io { source, .. } if crate::host::is_disk_full_io(source))
    }
}

/// What `config.yaml` does not say about a campaign: the environment it ran in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// powercut version.
    pub powercut: String,
    /// The generator's RNG.
    pub rng: String,
    /// Guest kernel release.
    pub kernel: String,
    /// Guest image hash.
    pub image: String,
    /// Accelerator.
    pub accelerator: String,
    /// How workload VMs started: `restore` (from the booted state) or `cold-boot`.
    #[serde(default = "unknown")]
    pub start: String,
    /// Why workload VMs cold-booted although restores were wanted: the first reason (no
    /// booted state could be saved, or a restore failed and its seed cold-booted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_fallback: Option<String>,
    /// The user's modules loaded in workload VMs (`--module`): name, sha256, arguments. In
    /// a kernel matrix, those of the first kernel (each kernel's are in `kernels`).
    #[serde(default)]
    pub modules: Vec<ModuleRecord>,
    /// A kernel matrix (`kernels:`): one entry per kernel, in config order. Empty for a
    /// campaign on one kernel (then `kernel` and `image` say which).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<KernelInfo>,
    /// The shard of the campaign this run directory ran (`--shard K/N`); absent for a whole
    /// campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// A run directory written by `powercut report merge`: the run directories merged into
    /// it, in order. Empty for a campaign's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedRun>,
}

/// One run directory that `powercut report merge` merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedRun {
    /// The directory as given.
    pub dir: String,
    /// Its shard (`None`: a whole campaign).
    pub shard: Option<Shard>,
    /// Its accelerator.
    pub accelerator: String,
}

/// What a run directory from before a field existed says for it.
fn unknown() -> String {
    "unknown".into()
}

/// One kernel of a kernel matrix, as `run-info.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// The kernel's name in the matrix: its spec as `kernels:` lists it (the journal's
    /// `kernel` field).
    pub name: String,
    /// Guest kernel release.
    pub kernel: String,
    /// Guest image hash.
    pub image: String,
    /// The user's modules, as built for this kernel.
    #[serde(default)]
    pub modules: Vec<ModuleRecord>,
}

/// A campaign's run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created).
    pub fn new(root: &Path) -> RunDir {
        RunDir {
            root: root.to_owned(),
        }
    }

    /// Create the directory (and its parents), fsyncing the parent.
    pub fn create(root: &Path) -> Result<RunDir, RunDirError> {
        std::fs::create_dir_all(root).map_err(|e| RunDirError::io(root, e))?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent).map_err(|e| RunDirError::io(parent, e))?;
        }
        Ok(RunDir::new(root))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `journal.jsonl`.
    pub fn journal(&self) -> PathBuf {
        self.root.join(JOURNAL)
    }

    /// `config.yaml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `seeds/<seed>/`.
    pub fn seed_dir(&self, seed: u64) -> PathBuf {
        self.root.join(SEEDS).join(seed.to_string())
    }

    /// `workloads/<name>/`.
    pub fn workload_item_dir(&self, name: &str) -> PathBuf {
        self.root.join(WORKLOADS).join(name)
    }

    /// The directory of an item: `seeds/<seed>/` or `workloads/<name>/`.
    pub fn item_dir(&self, item: &TrialItem) -> PathBuf {
        match item {
            TrialItem::Seed(s) => self.seed_dir(*s),
            TrialItem::Workload(n) => self.workload_item_dir(n),
        }
    }

    /// The directory of an item relative to the run directory, as reports name it.
    pub fn item_rel(item: &TrialItem) -> String {
        match item {
            TrialItem::Seed(s) => format!("{SEEDS}/{s}"),
            TrialItem::Workload(n) => format!("{WORKLOADS}/{n}"),
        }
    }

    /// `checkers/`.
    pub fn checkers(&self) -> PathBuf {
        self.root.join("checkers")
    }

    /// `failures/`.
    pub fn failures(&self) -> PathBuf {
        self.root.join(FAILURES)
    }

    /// Does it hold a journal?
    pub fn has_journal(&self) -> bool {
        self.journal().exists()
    }

    /// The recorded `config.yaml`, if there is one.
    pub fn read_config(&self) -> Result<Option<CampaignConfig>, RunDirError> {
        let path = self.config();
        if !path.exists() {
            return Ok(None);
        }
        crate::input::check_regular(&path, MAX_RECORD_BYTES, "config.yaml")
            .map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        CampaignConfig::load(&path)
            .map(Some)
            .map_err(|e| RunDirError::bad(&path, e.to_string()))
    }

    /// Write `config.yaml`.
    pub fn write_config(&self, cfg: &CampaignConfig) -> Result<(), RunDirError> {
        let path = self.config();
        let yaml =
            serde_yaml::to_string(cfg).map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        write_atomically(&path, yaml.as_bytes()).map_err(|e| RunDirError::io(&path, e))
    }

    /// The recorded `run-info.json`, if there is one.
    pub fn read_run_info(&self) -> Result<Option<RunInfo>, RunDirError> {
        let path = self.root.join(RUN_INFO);
        match crate::input::read(&path, MAX_RECORD_BYTES, "run-info.json") {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| RunDirError::bad(&path, e.to_string())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(RunDirError::bad(&path, e.to_string())),
        }
    }

    /// Write `run-info.json`.
    pub fn write_run_info(&self, info: &RunInfo) -> Result<(), RunDirError> {
        let path = self.root.join(RUN_INFO);
        let json = serde_json::to_string_pretty(info)
            .map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        write_atomically(&path, json.as_bytes()).map_err(|e| RunDirError::io(&path, e))
    }

    /// Prepare an item's directory: a seed's gets its generated `workload.yaml`; a workload
    /// input's already holds the copy written when the campaign started.
    pub fn write_workload(
        &self,
        item: &TrialItem,
        workload: &Workload,
    ) -> Result<PathBuf, RunDirError> {
        let dir = self.item_dir(item);
        std::fs::create_dir_all(&dir).map_err(|e| RunDirError::io(&dir, e))?;
        if item.workload().is_some() {
            return Ok(dir);
        }
        let path = dir.join(WORKLOAD);
        let yaml =
            serde_yaml::to_string(workload).map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        write_atomically(&path, yaml.as_bytes()).map_err(|e| RunDirError::io(&path, e))?;
        Ok(dir)
    }

    /// Delete every crash image and scratch pmem file under `seeds/` and `workloads/` (left
    /// behind by a harness that was killed); returns how many files went.
    pub fn remove_crash_images(&self) -> usize {
        let mut removed = 0;
        let seeds = [SEEDS, WORKLOADS]
            .iter()
            .flat_map(|d| std::fs::read_dir(self.root.join(d)).into_iter().flatten());
        for seed in seeds.flatten() {
            for f in std::fs::read_dir(seed.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = f.path();
                if is_scratch(&p) && std::fs::remove_file(&p).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Free space on the run directory's file system, MiB.
    pub fn free_mib(&self) -> Result<u64, RunDirError> {
        free_mib(&self.root).map_err(|e| RunDirError::io(&self.root, e))
    }
}

/// Is this a crash image or a scratch pmem file (deleted once used; never part of a
/// campaign's record outside `failures/`)?
pub fn is_scratch(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == crate::records::CRASH_IMAGE_EXT || e == "pmem")
}

/// Read a `workload.yaml` of a run directory (bounded in size and nesting, then parsed;
/// not validated: a report shows whatever ran, a re-run validates).
pub fn read_workload(path: &Path) -> Result<Workload, RunDirError> {
    let text =
        workloads::spec::yaml_limits::read_yaml(path, workloads::spec::MAX_WORKLOAD_FILE_BYTES)
            .map_err(|e| RunDirError::bad(path, e.to_string()))?;
    serde_yaml::from_str(&text).map_err(|e| RunDirError::bad(path, e.to_string()))
}

/// Free space (for unprivileged users) on the file system holding `path`, MiB.
pub fn free_mib(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `statvfs` is plain old data; zeroed is a valid value for it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize) >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_target_and_never_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join(".report.json.tmp")).expect("plant");
        let target = dir.path().join("report.json");

        write_atomically(&target, b"one").expect("write");
        write_atomically(&target, b"two").expect("rewrite");

        assert_eq!(std::fs::read_to_string(&target).expect("read"), "two");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".powercut-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn stale_crash_images_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        let seed = run.seed_dir(3);
        std::fs::create_dir_all(&seed).expect("mkdir");
        for f in ["crash-0001-after.img", "work.pmem", "work-3.console.log"] {
            std::fs::write(seed.join(f), "x").expect("write");
        }

        let removed = run.remove_crash_images();

        assert_eq!(removed, 2);
        assert!(seed.join("work-3.console.log").exists());
    }

    #[test]
    fn free_space_is_known() {
        let dir = tempfile::tempdir().expect("tempdir");

        let free = free_mib(dir.path()).expect("statvfs");

        assert!(free > 0);
    }
}
