//! Reading a run directory: the thin I/O layer under the reports. Everything is read, never
//! written (the journal is not opened for appending), so a report can be made of a campaign
//! that is still running. A file that is missing or garbled becomes a note in the report,
//! except `journal.jsonl` and `config.yaml`, without which there is no campaign to report on.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::Workload;

use super::model::seeds_needing_console;
use super::{ReportError, RUN_INFO};
use crate::campaign::config::CampaignConfig;
use crate::campaign::journal::{self, JournalEntry};
use crate::campaign::CampaignEnv;
use crate::checker::CheckOutcome;

/// Lines of a console log kept for reports (the end is where a guest says what went wrong).
pub const CONSOLE_TAIL_LINES: usize = 40;

/// At most this many bytes from the end of a console log are read for its tail.
const CONSOLE_TAIL_BYTES: u64 = 64 * 1024;

/// What the run directory's `config.yaml` does not say about the campaign: the environment
/// it ran in. Written to `run-info.json` when a campaign starts (again on `--resume`).
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
}

impl RunInfo {
    /// The environment of a campaign about to run.
    pub fn of(env: &CampaignEnv) -> RunInfo {
        RunInfo {
            powercut: env!("CARGO_PKG_VERSION").to_owned(),
            rng: workloads::generator::RNG.to_owned(),
            kernel: env.image.kernel_version.clone(),
            image: env.image.hash.clone(),
            accelerator: env.accel.to_string(),
        }
    }

    /// Write `run-info.json` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let json = serde_json::to_string_pretty(self).map_err(ReportError::Json)?;
        super::write_atomically(&dir.join(RUN_INFO), json.as_bytes())
    }
}

/// The last lines of a console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTail {
    /// Path relative to the run directory.
    pub path: String,
    /// Its last [`CONSOLE_TAIL_LINES`] lines.
    pub tail: String,
}

/// One `failures/<slug>/` directory.
#[derive(Debug, Clone)]
pub struct FailureDir {
    /// Directory name.
    pub slug: String,
    /// `title.txt` (the slug if it is missing).
    pub title: String,
    /// Crash point label, line 1 of `crash-point.txt`.
    pub point: Option<String>,
    /// The `seed N` line of `crash-point.txt`.
    pub seed: Option<u64>,
    /// `check.json`: verdict and findings.
    pub outcome: Option<CheckOutcome>,
    /// `diff.txt`.
    pub diff: String,
    /// The command in `reproduce.sh`.
    pub reproduce: Option<String>,
    /// Tail of the console log copied into it.
    pub console: Option<ConsoleTail>,
}

/// A run directory, parsed.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory's name (for titles).
    pub name: String,
    /// `config.yaml`.
    pub config: CampaignConfig,
    /// `run-info.json` (or the fields of an older `report.json`).
    pub info: Option<RunInfo>,
    /// `journal.jsonl`.
    pub entries: Vec<JournalEntry>,
    /// `seeds/<seed>/workload.yaml`, by seed.
    pub workloads: BTreeMap<u64, Workload>,
    /// Console tails of the seeds that need them (see [`seeds_needing_console`]).
    pub consoles: BTreeMap<u64, ConsoleTail>,
    /// `failures/*/`, by directory name.
    pub failures: Vec<FailureDir>,
    /// Files that could not be read or parsed, one line each.
    pub notes: Vec<String>,
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Read a run directory.
pub fn load_run_dir(dir: &Path) -> Result<RunData, ReportError> {
    let journal_path = dir.join("journal.jsonl");
    if !journal_path.is_file() || !dir.join("config.yaml").is_file() {
        return Err(ReportError::NotARunDir {
            path: dir.to_owned(),
        });
    }
    let entries = journal::read_entries(&journal_path).map_err(|source| ReportError::Read {
        path: journal_path.clone(),
        source,
    })?;
    let config_path = dir.join("config.yaml");
    let config: CampaignConfig =
        serde_yaml::from_str(&read_text(&config_path)?).map_err(|e| ReportError::Parse {
            path: config_path,
            message: e.to_string(),
        })?;
    let mut notes = Vec::new();
    let info = load_info(dir, &mut notes);
    let seed_dirs = numbered_dirs(&dir.join("seeds"));
    let mut workloads = BTreeMap::new();
    for (seed, sdir) in &seed_dirs {
        let path = sdir.join("workload.yaml");
        match std::fs::read_to_string(&path) {
            Ok(text) => match serde_yaml::from_str::<Workload>(&text) {
                Ok(w) => {
                    workloads.insert(*seed, w);
                }
                Err(e) => notes.push(format!("seeds/{seed}/workload.yaml: {e}")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => notes.push(format!("seeds/{seed}/workload.yaml: {e}")),
        }
    }
    let mut consoles = BTreeMap::new();
    for seed in seeds_needing_console(&entries) {
        if let Some((_, sdir)) = seed_dirs.iter().find(|(s, _)| *s == seed) {
            if let Some(tail) = console_tail(dir, sdir) {
                consoles.insert(seed, tail);
            }
        }
    }
    let failures = failure_dirs(dir, &mut notes);
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
        entries,
        workloads,
        consoles,
        failures,
        notes,
    })
}

/// `run-info.json`, else the environment fields of a `report.json` written before
/// `run-info.json` existed (schema 1), else nothing.
fn load_info(dir: &Path, notes: &mut Vec<String>) -> Option<RunInfo> {
    match std::fs::read_to_string(dir.join(RUN_INFO)) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(info) => return Some(info),
            Err(e) => notes.push(format!("{RUN_INFO}: {e}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => notes.push(format!("{RUN_INFO}: {e}")),
    }
    let old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).ok()?).ok()?;
    let field = |k: &str| old.get(k)?.as_str().map(str::to_owned);
    Some(RunInfo {
        powercut: field("powercut")?,
        rng: field("rng")?,
        kernel: field("kernel")?,
        image: field("image")?,
        accelerator: field("accelerator")?,
    })
}

/// Subdirectories of `dir` named by a number, sorted.
fn numbered_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .filter(|(_, p): &(u64, PathBuf)| p.is_dir())
        .collect();
    out.sort();
    out
}

/// The first `*.console.log` in `sub` (a directory inside `run`), with its tail.
fn console_tail(run: &Path, sub: &Path) -> Option<ConsoleTail> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(sub)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".console.log"))
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

/// The command of a `reproduce.sh`: its last line that is not a comment.
pub fn reproduce_command(script: &str) -> Option<String> {
    script
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

/// Every `failures/*/` directory, sorted by name.
fn failure_dirs(run: &Path, notes: &mut Vec<String>) -> Vec<FailureDir> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run.join("failures"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| failure_dir(run, d, notes)).collect()
}

fn failure_dir(run: &Path, dir: &Path, notes: &mut Vec<String>) -> FailureDir {
    let slug = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut read = |name: &str| match std::fs::read_to_string(dir.join(name)) {
        Ok(t) => Some(t),
        Err(e) => {
            notes.push(format!("failures/{slug}/{name}: {e}"));
            None
        }
    };
    let title = read("title.txt").map(|t| t.trim().to_owned());
    let crash_point = read("crash-point.txt").unwrap_or_default();
    let check = read("check.json");
    let diff = read("diff.txt").unwrap_or_default();
    let reproduce = read("reproduce.sh").and_then(|s| reproduce_command(&s));
    let outcome = check.and_then(|t| match serde_json::from_str::<CheckOutcome>(&t) {
        Ok(o) => Some(o),
        Err(e) => {
            notes.push(format!("failures/{slug}/check.json: {e}"));
            None
        }
    });
    FailureDir {
        title: title.unwrap_or_else(|| slug.clone()),
        point: crash_point.lines().next().map(str::to_owned),
        seed: crash_point
            .lines()
            .find_map(|l| l.strip_prefix("seed ")?.trim().parse().ok()),
        outcome,
        diff,
        reproduce,
        console: console_tail(run, dir),
        slug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduce_command_is_the_last_non_comment_line() {
        let script =
            "#!/bin/sh\n# Re-run the seed.\ncargo run --release -- campaign --seeds 3..=3\n\n";
        assert_eq!(
            reproduce_command(script).as_deref(),
            Some("cargo run --release -- campaign --seeds 3..=3")
        );
        assert_eq!(reproduce_command("#!/bin/sh\n"), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.console.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).expect("write");

        let tail = tail_lines(&p, 3).expect("tail");

        assert_eq!(tail, "line 97\nline 98\nline 99");
    }
}
