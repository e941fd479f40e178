//! Reading a whole run directory for the reports. Nothing is written (the journal is not
//! opened for appending), so a report can be made of a campaign that is still running. The
//! journal is read strictly (a damaged line is an error, never a silent PASS); any other
//! file that is missing or garbled becomes a note in the report.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use workloads::oracle::Verdict;
use workloads::Workload;

use crate::config::CampaignConfig;
use crate::journal::fold::{CampaignState, RunEnd};
use crate::journal::{self, JournalError};
use crate::records::item::TrialItem;
use crate::rundir::failure::FailureDir;
use crate::rundir::{RunDir, RunInfo, FAILURES, RUN_INFO, WORKLOAD};

/// Lines of a console log kept for reports (the end is where a guest says what went wrong).
pub const CONSOLE_TAIL_LINES: usize = 40;

/// At most this many bytes from the end of a console log are read for its tail.
const CONSOLE_TAIL_BYTES: u64 = 64 * 1024;

/// Errors of reading a run directory.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The directory has no journal or no config.
    #[error("{path} is not a campaign run directory (it needs journal.jsonl and config.yaml); pass the directory given to `campaign --output`")]
    NotARunDir {
        /// The directory.
        path: PathBuf,
    },
    /// The journal is damaged.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The config is unreadable.
    #[error(transparent)]
    Config(#[from] crate::rundir::RunDirError),
}

/// The last lines of a console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTail {
    /// Path relative to the run directory.
    pub path: String,
    /// Its last [`CONSOLE_TAIL_LINES`] lines.
    pub tail: String,
}

/// A run directory, read.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Directory name (for titles).
    pub name: String,
    /// `config.yaml`.
    pub config: CampaignConfig,
    /// `run-info.json`.
    pub info: Option<RunInfo>,
    /// The fold of `journal.jsonl`.
    pub state: CampaignState,
    /// `seeds/<seed>/workload.yaml` and `workloads/<name>/workload.yaml`, by item.
    pub workloads: BTreeMap<TrialItem, Workload>,
    /// The original file of each workload input (`workloads.json`), by name.
    pub workload_files: BTreeMap<String, String>,
    /// Console tails of the items whose reports show them (non-pass, infra, unfinished).
    pub consoles: BTreeMap<TrialItem, ConsoleTail>,
    /// `failures/*/` that could be read, by directory name.
    pub failures: Vec<FailureDir>,
    /// Console tails of the failure directories, by directory name.
    pub failure_consoles: BTreeMap<String, ConsoleTail>,
    /// Files that could not be read or parsed, one line each.
    pub notes: Vec<String>,
    /// The kernel of a kernel matrix whose journal lines were folded (`None`: a campaign
    /// on one kernel).
    pub kernel: Option<String>,
    /// Kernel complaints (warnings, lockdep, KASAN, BUGs) in the guest consoles.
    pub kernel_log: super::kernel_log::KernelLog,
    /// Kernel coverage of the runs, one summary per kernel with a code map.
    pub coverage: Vec<crate::coverage::CoverageSummary>,
    /// Diff coverage of `--coverage-diff`'s patch, one per kernel with coverage.
    pub coverage_diff: Vec<crate::coverage::diff::DiffCoverage>,
}

/// Read the run directory `dir`.
pub fn load_run_dir(dir: &Path) -> Result<RunData, ReadError> {
    load_run_dir_for(dir, None)
}

/// The kernels of a kernel matrix in the run directory `dir`, by the journal's tags, in
/// order (empty for a campaign on one kernel).
pub fn matrix_kernels(dir: &Path) -> Result<Vec<String>, ReadError> {
    Ok(journal::read(&RunDir::new(dir).journal())?.kernel_names())
}

/// Read the run directory `dir` for one kernel of a kernel matrix (`Some(name)`: the fold
/// of that kernel's journal lines), or for a campaign on one kernel (`None`).
pub fn load_run_dir_for(dir: &Path, kernel: Option<&str>) -> Result<RunData, ReadError> {
    let run = RunDir::new(dir);
    if !run.journal().is_file() || !run.config().is_file() {
        return Err(ReadError::NotARunDir {
            path: dir.to_owned(),
        });
    }
    let contents = journal::read(&run.journal())?;
    let config = run.read_config()?.ok_or_else(|| ReadError::NotARunDir {
        path: dir.to_owned(),
    })?;
    let state = CampaignState::of(&contents.of_kernel(kernel));
    let mut notes = Vec::new();
    if contents.torn {
        notes.push(
            "journal.jsonl: its last line was cut short (the harness was killed while writing it) and is ignored"
                .to_owned(),
        );
    }
    let info = load_info(dir, &mut notes);
    // A matrix kernel's VMs are `work-<item>-k<index>`: its consoles, not another kernel's.
    let console_suffix = kernel
        .and_then(|k| config.kernels.iter().position(|c| c == k))
        .map(|i| format!("-k{i}.console.log"));
    let mut workloads = BTreeMap::new();
    let mut consoles = BTreeMap::new();
    let workload_files = match run.read_workload_manifest() {
        Ok(m) => m.into_iter().map(|r| (r.name, r.file)).collect(),
        Err(e) => {
            notes.push(e.to_string());
            BTreeMap::new()
        }
    };
    for (seed, s) in state.seeds() {
        let sdir = run.item_dir(seed);
        let path = sdir.join(WORKLOAD);
        if path.exists() {
            match crate::rundir::read_workload(&path) {
                Ok(w) => {
                    workloads.insert(seed.clone(), w);
                }
                Err(e) => notes.push(format!("{}/{WORKLOAD}: {e}", RunDir::item_rel(seed))),
            }
        }
        let needs_console = !s.done
            || matches!(s.run, Some(RunEnd::Failed { .. }))
            || s.checks.iter().any(|c| c.verdict != Verdict::Pass);
        if needs_console {
            if let Some(tail) = console_tail(dir, &sdir, console_suffix.as_deref()) {
                consoles.insert(seed.clone(), tail);
            }
        }
    }
    let (failures, failure_consoles) = failure_dirs(&run, &mut notes);
    let kernel_log = super::kernel_log::scan_run_dir(dir, console_suffix.as_deref());
    let (coverage, cov_notes) = super::coverage::read_coverage(&[dir]);
    notes.extend(cov_notes);
    let (coverage_diff, diff_notes) = super::coverage::read_diff_coverage(dir, &coverage);
    notes.extend(diff_notes);
    Ok(RunData {
        name: dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_owned())
            .file_name()
            .map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        config,
        info,
        state,
        workloads,
        workload_files,
        consoles,
        failures,
        failure_consoles,
        notes,
        kernel: kernel.map(str::to_owned),
        kernel_log,
        coverage,
        coverage_diff,
    })
}

fn load_info(dir: &Path, notes: &mut Vec<String>) -> Option<RunInfo> {
    match crate::input::read_to_string(
        &dir.join(RUN_INFO),
        crate::rundir::MAX_RECORD_BYTES,
        RUN_INFO,
    ) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(info) => Some(info),
            Err(e) => {
                notes.push(format!("{RUN_INFO}: {e}"));
                None
            }
        },
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            notes.push(format!("{RUN_INFO}: {e}"));
            None
        }
    }
}

/// The first `*.console.log` in `sub` (a directory inside `run`), with its tail.
fn console_tail(run: &Path, sub: &Path, suffix: Option<&str>) -> Option<ConsoleTail> {
    let suffix = suffix.unwrap_or(".console.log");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(sub)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    logs.sort();
    let path = logs.into_iter().next()?;
    let tail = tail_lines(&path, CONSOLE_TAIL_LINES).ok()?;
    Some(ConsoleTail {
        path: path
            .strip_prefix(run)
            .unwrap_or(&path)
            .display()
            .to_string(),
        tail,
    })
}

/// The last `n` lines of a file, reading at most its last [`CONSOLE_TAIL_BYTES`].
fn tail_lines(path: &Path, n: usize) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(CONSOLE_TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..].join("\n"))
}

/// Every readable `failures/*/` directory, sorted by name; the others become notes.
fn failure_dirs(
    run: &RunDir,
    notes: &mut Vec<String>,
) -> (Vec<FailureDir>, BTreeMap<String, ConsoleTail>) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run.failures())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    let mut consoles = BTreeMap::new();
    for d in dirs {
        match FailureDir::load(&d) {
            Ok(f) => {
                if let Some(tail) = console_tail(run.root(), &d, None) {
                    consoles.insert(f.slug(), tail);
                }
                out.push(f);
            }
            Err(e) => notes.push(format!(
                "{FAILURES}/{}: {e}",
                d.file_name().unwrap_or_default().to_string_lossy()
            )),
        }
    }
    (out, consoles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.console.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).expect("write");

        let tail = tail_lines(&p, 3).expect("tail");

        assert_eq!(tail, "line 97\nline 98\nline 99");
    }

    #[test]
    fn a_matrix_kernel_gets_its_own_vms_console() {
        let run = tempfile::tempdir().expect("tempdir");
        let sdir = run.path().join("seeds/1");
        std::fs::create_dir_all(&sdir).expect("mkdir");
        for k in 0..3 {
            std::fs::write(
                sdir.join(format!("work-1-k{k}.console.log")),
                format!("k{k}\n"),
            )
            .expect("write");
        }

        let tail = |s| console_tail(run.path(), &sdir, s).expect("a console");

        assert_eq!(tail(Some("-k1.console.log")).tail, "k1");
        assert_eq!(
            tail(Some("-k1.console.log")).path,
            "seeds/1/work-1-k1.console.log"
        );
        assert_eq!(tail(Some("-k2.console.log")).tail, "k2");
        assert!(console_tail(run.path(), &sdir, Some("-k3.console.log")).is_none());
    }

    #[test]
    fn a_damaged_journal_makes_the_directory_unreadable_with_the_line_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        run.write_config(&CampaignConfig::default())
            .expect("config");
        std::fs::write(
            run.journal(),
            "{\"event\":\"journal\",\"version\":2,\"powercut\":\"0.1.0\"}\n\
             {\"event\":\"seed_started\",\"seed\":1}\n\
             garbage\n\
             {\"event\":\"seed_done\",\"seed\":1}\n",
        )
        .expect("journal");

        let err = load_run_dir(dir.path()).expect_err("damaged");

        assert!(err.to_string().contains("journal.jsonl:3"), "{err}");
    }
}
