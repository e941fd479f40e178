//! Campaign reports, built from a run directory alone: `report.json` (schema in [`model`]),
//! `report.html` (one self-contained page for a person) and JUnit XML (for CI). A campaign
//! writes them when it ends; `powercut report <run-dir>` writes them again at any time, also
//! for a campaign that was resumed or is still running.
//!
//! Shape: [`rundir`] reads the directory into [`RunData`] (the only I/O), [`model`] turns it
//! into a [`Report`], and [`html`] and [`junit`] render; [`write_reports`] strings them
//! together.

pub mod hexdiff;
pub mod html;
pub mod junit;
pub mod model;
pub mod rundir;
#[cfg(test)]
mod testdata;
pub mod timeline;

use std::path::{Path, PathBuf};

pub use model::{build_report, Report, SeedStatus, SCHEMA};
pub use rundir::{load_run_dir, RunData, RunInfo};

/// `report.json`, in the run directory.
pub const REPORT_JSON: &str = "report.json";
/// `report.html`, in the run directory.
pub const REPORT_HTML: &str = "report.html";
/// `run-info.json`, in the run directory: what the campaign ran on (see [`RunInfo`]).
pub const RUN_INFO: &str = "run-info.json";

/// Errors of reading a run directory or writing its reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The directory has no `journal.jsonl` or no `config.yaml`.
    #[error("{path} is not a campaign run directory (it needs journal.jsonl and config.yaml); pass the directory given to `campaign --output`")]
    NotARunDir {
        /// The directory.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file that must parse did not.
    #[error("failed to parse {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A report could not be written.
    #[error("failed to write {path}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// JSON serialization failed.
    #[error("failed to serialize the report as JSON")]
    Json(#[source] serde_json::Error),
    /// JUnit serialization failed.
    #[error("failed to serialize the JUnit XML")]
    Junit(#[source] quick_junit::SerializeError),
}

/// What [`write_reports`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The report (as in `report.json`).
    pub report: Report,
    /// `report.json`.
    pub json: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// The JUnit XML, if asked for.
    pub junit: Option<PathBuf>,
}

/// Read the run directory `dir` and write `report.json` and `report.html` into it, and the
/// JUnit XML to `junit` if given.
pub fn write_reports(dir: &Path, junit: Option<&Path>) -> Result<Written, ReportError> {
    let data = load_run_dir(dir)?;
    let report = build_report(&data);
    let json_path = dir.join(REPORT_JSON);
    let json = serde_json::to_string_pretty(&report).map_err(ReportError::Json)?;
    write_atomically(&json_path, json.as_bytes())?;
    let html_path = dir.join(REPORT_HTML);
    write_atomically(&html_path, html::render(&report, &data).as_bytes())?;
    if let Some(path) = junit {
        let xml = junit::junit_xml(&report, &data)?;
        write_atomically(path, xml.as_bytes())?;
    }
    Ok(Written {
        report,
        json: json_path,
        html: html_path,
        junit: junit.map(Path::to_owned),
    })
}

/// Write `path` through a temporary file and a rename, so a reader never sees half a report.
/// The parent directory is created if needed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(err)?;
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
