//! `diff.txt` of a failure directory: for each finding, the allowed versions of the bytes
//! and what was found, as hex rows; for a missing file, the durable bytes that were lost.
//! Also the slug that names a failure directory.

use std::fmt::Write as _;

use workloads::oracle::{Expectation, Finding, Verdict, WORD};

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

/// For a missing file: what the oracle says had to be there (its allowed sizes and the
/// durable bytes of its first words), so the diff shows what was lost.
pub fn render_missing(f: &Finding, exp: &Expectation) -> String {
    let mut out = String::new();
    let Some(state) = exp.files.get(&f.file).and_then(|e| e.states.first()) else {
        return out;
    };
    let _ = writeln!(out, "expected: {} must exist, size {}", f.file, state.sizes);
    // The first 256 bytes of durable data (from the first word holding any), within 1 MiB.
    let words = state.sizes.max().min(1 << 20).div_ceil(WORD);
    let durable = |w: u64| state.span(w).map(|span| span.durable.bytes(exp.seed, w));
    let first = (0..words).find(|&w| durable(w).is_some_and(|b| b.iter().any(|&x| x != 0)));
    if let Some(first) = first {
        let bytes: Vec<u8> = (first..words.min(first + 256 / WORD))
            .filter_map(durable)
            .flatten()
            .collect();
        let _ = writeln!(
            out,
            "durable content that was lost ({} bytes from offset {}):",
            bytes.len(),
            first * WORD
        );
        out.push_str(&hex_rows(first * WORD, &bytes, None));
    }
    out.push_str("found: (file absent)\n");
    out
}

/// The whole `diff.txt` of a check: every finding's diff (with the lost content of a
/// missing file), then the checker's detail (mount error, fsck output).
pub fn diff_text(outcome: &CheckOutcome, exp: &Expectation) -> String {
    let mut diff = String::new();
    for f in &outcome.findings {
        diff.push_str(&render_diff(f));
        if f.verdict == Verdict::MissingFile {
            diff.push_str(&render_missing(f, exp));
        }
        diff.push('\n');
    }
    diff.push_str(&outcome.detail);
    diff
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
