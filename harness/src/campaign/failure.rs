//! Failure directories: one per distinct failure title, with everything a kernel developer
//! needs to look at it (workload, crash point, expectation, found bytes, byte diff, console
//! logs, the reproduce command).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use workloads::oracle::{Expectation, Finding};
use workloads::Workload;

use crate::checker::CheckOutcome;

/// A file-name-safe slug of a failure title.
pub fn slug(title: &str) -> String {
    let mut s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').chars().take(100).collect()
}

/// Hex rows of `bytes` starting at file offset `base`, 16 per row.
fn hex_rows(base: u64, bytes: &[u8], mark: Option<&[u8]>) -> String {
    let mut out = String::new();
    for (i, row) in bytes.chunks(16).enumerate() {
        let off = base + (i * 16) as u64;
        let _ = write!(out, "  {off:08x}:");
        for (j, b) in row.iter().enumerate() {
            let differs = mark.and_then(|m| m.get(i * 16 + j)).is_some_and(|m| m != b);
            let _ = write!(out, "{}{b:02x}", if differs { '*' } else { ' ' });
        }
        out.push('\n');
    }
    out
}

/// The byte diff of one finding: each allowed version, then what was found, with `*` before
/// bytes of the found rows that match no allowed version's byte.
pub fn render_diff(f: &Finding) -> String {
    let mut out = format!("{}\n", f.title());
    if let Some(p) = f.promised_by {
        let _ = writeln!(out, "promised durable by op {p}");
    }
    if let (Some(sizes), Some(found)) = (&f.allowed_sizes, f.found_size) {
        let _ = writeln!(out, "size: allowed {sizes}, found {found}");
    }
    for v in &f.expected {
        let who = v.op.map_or_else(
            || "never written (zeros)".to_owned(),
            |k| format!("written by op {k}"),
        );
        let _ = writeln!(out, "expected ({who}):");
        out.push_str(&hex_rows(f.start, &v.bytes, None));
    }
    if !f.found.is_empty() {
        let first = f.expected.last().map(|v| v.bytes.as_slice());
        let _ = writeln!(out, "found (* = differs from the newest allowed version):");
        out.push_str(&hex_rows(f.start, &f.found, first));
    }
    out
}

/// Write a failure directory under `root`; returns its path.
#[allow(clippy::too_many_arguments)]
pub fn write_failure_dir(
    root: &Path,
    title: &str,
    workload: &Workload,
    exp: &Expectation,
    outcome: &CheckOutcome,
    crash_image: &Path,
    consoles: &[PathBuf],
    repro: &str,
) -> std::io::Result<PathBuf> {
    let dir = root.join(slug(title));
    std::fs::create_dir_all(&dir)?;
    let yaml = serde_yaml::to_string(workload).unwrap_or_default();
    std::fs::write(dir.join("workload.yaml"), yaml)?;
    std::fs::write(dir.join("title.txt"), format!("{title}\n"))?;
    std::fs::write(
        dir.join("crash-point.txt"),
        format!(
            "{}\nseed {}\nrules {}\n",
            exp.crash_label(),
            exp.seed,
            exp.rules
        ),
    )?;
    std::fs::write(
        dir.join("expectation.json"),
        serde_json::to_string_pretty(exp).unwrap_or_default(),
    )?;
    std::fs::write(
        dir.join("check.json"),
        serde_json::to_string_pretty(outcome).unwrap_or_default(),
    )?;
    let mut diff = String::new();
    for f in &outcome.findings {
        diff.push_str(&render_diff(f));
        diff.push('\n');
    }
    if !outcome.detail.is_empty() {
        diff.push_str(&outcome.detail);
    }
    std::fs::write(dir.join("diff.txt"), diff)?;
    for c in consoles {
        if let Some(name) = c.file_name() {
            let _ = std::fs::copy(c, dir.join(name));
        }
    }
    // Keep the crash image itself (compressed by the filesystem's holes; sparse copy).
    let _ = super::snapshot::sparse_copy(crash_image, &dir.join("crash.img"));
    std::fs::write(
        dir.join("reproduce.sh"),
        format!("#!/bin/sh\n# Re-run the seed that produced this failure.\n{repro}\n"),
    )?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("data-loss: f2 [4096..8192) after op 7 (fsync)"),
            "data-loss-f2-4096-8192-after-op-7-fsync"
        );
    }

    #[test]
    fn hex_rows_mark_differing_bytes() {
        let rows = hex_rows(16, &[1, 2, 3], Some(&[1, 9, 3]));
        assert_eq!(rows, "  00000010: 01*02 03\n");
    }
}
