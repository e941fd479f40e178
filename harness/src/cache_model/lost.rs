//! Who lost what in one crash state of the cache model: `lost-lines.json` and its text
//! (`lost-lines.txt`). Built by `trial::cache_lost` from a run; read back by the failure
//! directories and the reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::oracle::CrashPoint;

use super::attribution::{in_flight_words, LostRange};
use super::CacheCut;

/// Version of `lost-lines.json`.
pub const LOST_SCHEMA: u32 = 1;

/// Who lost what in one crash state: `lost-lines.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LostReport {
    /// [`LOST_SCHEMA`].
    pub schema: u32,
    /// Where the power was cut.
    pub point: CrashPoint,
    /// Which cut and crash state.
    pub cut: CacheCut,
    /// Lines in flight at the cut.
    pub in_flight: usize,
    /// Of those, persisted in this state.
    pub persisted: usize,
    /// Lost lines.
    pub lost_lines: usize,
    /// Backing-file offset of `/dev/pmem0` (`None`: not measured or not verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_offset: Option<u64>,
    /// The lost lines, merged into ranges.
    pub ranges: Vec<LostRange>,
    /// One sentence per range.
    pub sentences: Vec<String>,
    /// What could not be attributed, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn point_label(p: CrashPoint) -> String {
    match p {
        CrashPoint::AfterOp(k) => format!("after op {k}"),
        CrashPoint::InsideOp(k) => format!("inside op {k}"),
    }
}

impl LostReport {
    /// The sentences of the ranges in `file` that overlap `[start, end)` (a finding's range).
    pub fn behind(&self, file: &str, start: u64, end: u64) -> Vec<&str> {
        self.ranges
            .iter()
            .zip(&self.sentences)
            .filter(|(r, _)| r.file.as_deref() == Some(file) && r.start < end && start < r.end)
            .map(|(_, s)| s.as_str())
            .collect()
    }

    /// `lost-lines.txt`: the cut, then one sentence per range, then a table of the ranges.
    pub fn text(&self, base: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Cache lines in flight at the power cut that this crash state did not persist.\n\
             cut: {} {} ({:?}), trace event {}\nvariant: {}{}\nin-flight lines: {}, persisted: {}, lost: {}",
            point_label(self.point),
            self.cut.at,
            self.cut.reason,
            self.cut.trace_event,
            self.cut.variant,
            self.cut
                .subset_seed
                .map_or_else(String::new, |s| format!(" (seed {s:#x})")),
            self.in_flight,
            self.persisted,
            self.lost_lines
        );
        if let Some(d) = self.data_offset {
            let _ = writeln!(
                out,
                "/dev/pmem0 starts at pmem offset {d:#x} (measured, checked against the files)"
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out.push('\n');
        for s in &self.sentences {
            let _ = writeln!(out, "{s}");
        }
        let _ = writeln!(
            out,
            "\n{:<14} {:<16} {:<20} {:<34} last store in",
            "pmem offset", "guest-phys", "file range", "how in flight"
        );
        for r in &self.ranges {
            let file = r.file.as_ref().map_or_else(
                || "-".to_owned(),
                |f| format!("{f} [{}..{})", r.start, r.end),
            );
            let _ = writeln!(
                out,
                "{:<#14x} {:<#16x} {:<20} {:<34} {} ({})",
                r.pmem,
                base + r.pmem,
                file,
                in_flight_words(r.why),
                r.stored_in
                    .map_or_else(|| "before the first op".to_owned(), point_label),
                r.storer
            );
        }
        out
    }
}

/// `<image>.lost-lines.json` beside a crash image.
pub fn json_path(image: &Path) -> PathBuf {
    image.with_extension("lost-lines.json")
}

/// Read a `lost-lines.json`.
pub fn read(path: &Path) -> Result<LostReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
