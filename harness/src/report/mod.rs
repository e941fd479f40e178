//! Campaign reports, built from a run directory alone: `report.json` (schema in [`model`]),
//! `report.html` (one self-contained page for a person) and JUnit XML (for CI). A campaign
//! writes them when it ends; `powercut report <run-dir>` writes them again at any time, also
//! for a campaign that was resumed or is still running.
//!
//! Shape: [`crate::runs::read`] reads the directory (the fold of its journal and the files
//! beside it), [`model`] turns it into a [`Report`], and [`html`] and [`junit`] render;
//! [`write_reports`] strings them together. [`kcidb`] maps a report to KCIDB JSON.

pub mod coverage_html;
pub mod fstests;
pub mod hexdiff;
pub mod html;
pub mod junit;
pub mod kcidb;
pub mod matrix;
pub mod model;
/// What each kernel of a finished campaign showed, for `expect:`: its unsuppressed
/// failure buckets with their items, and its infrastructure problems.
pub fn outcomes_of(report: &Report) -> Vec<KernelOutcome> {
    use crate::config::expect::item_name;
    let one = |name: &str, r: &Report| KernelOutcome {
        name: name.to_owned(),
        release: r.kernel.clone(),
        failures: r
            .failures
            .iter()
            .filter(|f| !f.suppressed)
            .map(|f| {
                let items = f.items.iter().map(item_name).collect();
                (f.bucket.clone(), items)
            })
            .collect(),
        infra: r.totals.infra,
        ran: r.seeds.iter().map(|e| item_name(&e.item)).collect(),
    };
    if report.kernels.is_empty() {
        vec![one(&report.kernel, report)]
    } else {
        report
            .kernels
            .iter()
            .map(|k| one(&k.name, &k.report))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod testdata;
pub mod timeline;

use std::path::{Path, PathBuf};

pub use model::{build_report, Report};

use crate::config::expect::KernelOutcome;
use crate::host::write_atomically;
use crate::rundir::{REPORT_HTML, REPORT_JSON};
use crate::runs::read::{load_run_dir, load_run_dir_for, matrix_kernels, ReadError};

/// Errors of reading a run directory or writing its reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory could not be read (not one, or a damaged journal).
    #[error(transparent)]
    Read(#[from] ReadError),
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

impl ReportError {
    /// Is this about the input (not a run directory, a damaged journal): a usage error?
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ReportError::Read(ReadError::NotARunDir { .. } | ReadError::Journal(_))
        )
    }
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
/// JUnit XML to `junit` if given. Each file is replaced atomically.
pub fn write_reports(dir: &Path, junit: Option<&Path>) -> Result<Written, ReportError> {
    let kernels = matrix_kernels(dir)?;
    if !kernels.is_empty() {
        return write_matrix_reports(dir, junit, &kernels);
    }
    let data = load_run_dir(dir)?;
    let report = build_report(&data);
    let write = |path: &Path, bytes: &[u8]| {
        write_atomically(path, bytes).map_err(|source| ReportError::Write {
            path: path.to_owned(),
            source,
        })
    };
    let json_path = dir.join(REPORT_JSON);
    let json = serde_json::to_string_pretty(&report).map_err(ReportError::Json)?;
    write(&json_path, json.as_bytes())?;
    let html_path = dir.join(REPORT_HTML);
    write(&html_path, html::render(&report, &data).as_bytes())?;
    if let Some(path) = junit {
        let xml = junit::junit_xml(&report, &data)?;
        write(path, xml.as_bytes())?;
    }
    Ok(Written {
        report,
        json: json_path,
        html: html_path,
        junit: junit.map(Path::to_owned),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_atomically(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The reports of a kernel matrix: per kernel, its own HTML page (`report-k<i>.html`) and
/// JUnit test suite (`powercut <kernel>`); `report.json` with one section per kernel and
/// their sums; `report.html` with the kernel × verdict table and links to the pages.
fn write_matrix_reports(
    dir: &Path,
    junit: Option<&Path>,
    kernels: &[String],
) -> Result<Written, ReportError> {
    let mut sections = Vec::new();
    let mut suites = quick_junit::Report::new("powercut");
    for (i, name) in kernels.iter().enumerate() {
        let data = load_run_dir_for(dir, Some(name))?;
        let report = build_report(&data);
        let page = format!("report-k{i}.html");
        write_file(&dir.join(&page), html::render(&report, &data).as_bytes())?;
        for mut suite in junit::build(&report, &data).test_suites {
            suite.name = format!("powercut {name}").into();
            suites.add_test_suite(suite);
        }
        sections.push(matrix::KernelSection {
            name: name.clone(),
            html: page,
            report,
        });
    }
    let Some(report) = matrix::matrix_report(sections) else {
        return Err(ReportError::Read(ReadError::NotARunDir {
            path: dir.to_owned(),
        }));
    };
    let json_path = dir.join(REPORT_JSON);
    let json = serde_json::to_string_pretty(&report).map_err(ReportError::Json)?;
    write_file(&json_path, json.as_bytes())?;
    let html_path = dir.join(REPORT_HTML);
    write_file(&html_path, matrix::render_matrix(&report).as_bytes())?;
    if let Some(path) = junit {
        let xml = suites.to_string().map_err(ReportError::Junit)?;
        write_file(path, xml.as_bytes())?;
    }
    Ok(Written {
        report,
        json: json_path,
        html: html_path,
        junit: junit.map(Path::to_owned),
    })
}

/// Write `report` as a KCIDB v5 JSON document ([`kcidb`]) to `path`, atomically.
pub fn write_kcidb(report: &Report, path: &Path) -> Result<(), ReportError> {
    let doc = kcidb::kcidb_document(report);
    let json = serde_json::to_string_pretty(&doc).map_err(ReportError::Json)?;
    write_file(path, json.as_bytes())
}
