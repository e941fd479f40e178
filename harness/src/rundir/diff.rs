//! `diff.txt` of a failure directory: for each finding, one line saying what the bytes read
//! back as against what was expected, the allowed versions of the bytes and what was found
//! as hex rows (a run of identical found rows folded into one line), and for a cache-model
//! failure the lost cache lines behind it; for a missing file, the durable bytes that were
//! lost. Also the slug that names a failure directory.

use std::fmt::Write as _;

use workloads::oracle::{Expectation, Finding, Verdict, WORD};

use crate::cache_model::lost::LostReport;
use crate::records::CheckOutcome;

/// Bytes per hex row.
const ROW: usize = 16;
/// Rows kept at the start of a run of identical rows before the rest is folded.
const KEEP: usize = 2;

/// One shown row, or a fold of identical rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Row `i` (bytes `i*16..`).
    Row(usize),
    /// Rows `from..to` are folded: each is the same as the row before `from`.
    Gap {
        /// First folded row.
        from: usize,
        /// One past the last folded row.
        to: usize,
    },
}

/// Which rows of `bytes` (16 a row) to show: a run of more than `KEEP + 1` identical rows
/// shows its first `KEEP` rows and its last one, and folds the ones between.
pub fn fold_rows(bytes: &[u8]) -> Vec<Fold> {
    let rows: Vec<&[u8]> = bytes.chunks(ROW).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[i] {
            j += 1;
        }
        // rows[i..j] are identical.
        if j - i > KEEP + 1 {
            out.extend((i..i + KEEP).map(Fold::Row));
            out.push(Fold::Gap {
                from: i + KEEP,
                to: j - 1,
            });
            out.push(Fold::Row(j - 1));
        } else {
            out.extend((i..j).map(Fold::Row));
        }
        i = j;
    }
    out
}

/// One line about a data finding: how many bytes, what they read back as, what was
/// expected (e.g. `4096 bytes read back as zeros; expected op 5's pattern`).
pub fn loss_summary(f: &Finding) -> Option<String> {
    if f.verdict != Verdict::DataLoss || f.found.is_empty() {
        return None;
    }
    let n = f.end.saturating_sub(f.start);
    let newest = f.expected.last()?;
    let expected = newest.op.map_or_else(
        || "zeros (never written)".to_owned(),
        |k| format!("op {k}'s pattern"),
    );
    let found = if f.found.iter().all(|&b| b == 0) {
        "read back as zeros".to_owned()
    } else if let Some(old) = f.expected.iter().rev().skip(1).find(|v| v.bytes == f.found) {
        match old.op {
            Some(k) => format!("read back as op {k}'s older data"),
            None => "read back as zeros".to_owned(),
        }
    } else {
        let differ = f
            .found
            .iter()
            .zip(&newest.bytes)
            .filter(|(a, b)| a != b)
            .count();
        format!(
            "read back with {differ} of the first {} bytes different",
            f.found.len()
        )
    };
    let shown = if (f.found.len() as u64) < n {
        format!(" (first {} shown)", f.found.len())
    } else {
        String::new()
    };
    Some(format!("{n} bytes {found}; expected {expected}{shown}"))
}

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

/// Hex rows of `bytes` starting at file offset `base`, 16 per row, shown as `folds` says;
/// `gap` says what a folded row holds.
fn hex_rows_folded(
    base: u64,
    bytes: &[u8],
    mark: Option<&[u8]>,
    folds: &[Fold],
    gap: &str,
) -> String {
    let mut out = String::new();
    for fold in folds {
        let i = match *fold {
            Fold::Row(i) => i,
            Fold::Gap { from, to } => {
                let _ = writeln!(
                    out,
                    "  ... {} more rows {gap} ({:08x}..{:08x})",
                    to - from,
                    base + (from * ROW) as u64,
                    base + (to * ROW) as u64
                );
                continue;
            }
        };
        let Some(row) = bytes.get(i * ROW..bytes.len().min((i + 1) * ROW)) else {
            continue;
        };
        let off = base + (i * ROW) as u64;
        let _ = write!(out, "  {off:08x}:");
        for (j, b) in row.iter().enumerate() {
            let differs = mark
                .and_then(|m| m.get(i * ROW + j))
                .is_some_and(|m| m != b);
            let _ = write!(out, "{}{b:02x}", if differs { '*' } else { ' ' });
        }
        out.push('\n');
    }
    out
}

/// Hex rows of `bytes` starting at file offset `base`, 16 per row, identical runs folded.
fn hex_rows(base: u64, bytes: &[u8], mark: Option<&[u8]>) -> String {
    hex_rows_folded(base, bytes, mark, &fold_rows(bytes), "like the one above")
}

/// The byte diff of one finding: a one-line summary, each allowed version, then what was
/// found, with `*` before bytes of the found rows that match no allowed version's byte.
/// Rows are folded where the found bytes repeat (the same rows in every block).
pub fn render_diff(f: &Finding) -> String {
    let mut out = format!("{}\n", f.title());
    if let Some(line) = loss_summary(f) {
        let _ = writeln!(out, "{line}");
    }
    let folds = fold_rows(&f.found);
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
        if f.found.is_empty() {
            out.push_str(&hex_rows(f.start, &v.bytes, None));
        } else {
            let gap = "of this version, where the found rows repeat";
            out.push_str(&hex_rows_folded(f.start, &v.bytes, None, &folds, gap));
        }
    }
    if !f.found.is_empty() {
        let first = f.expected.last().map(|v| v.bytes.as_slice());
        let _ = writeln!(out, "found (* = differs from the newest allowed version):");
        out.push_str(&hex_rows_folded(
            f.start,
            &f.found,
            first,
            &folds,
            "like the one above",
        ));
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
/// missing file, and for the cache model the lost cache lines behind its range), then every
/// lost range of the crash state, then the checker's detail (mount error, fsck output).
pub fn diff_text(outcome: &CheckOutcome, exp: &Expectation, lost: Option<&LostReport>) -> String {
    let mut diff = String::new();
    for f in &outcome.findings {
        if let Some(lost) = lost {
            for s in lost.behind(&f.file, f.start, f.end.max(f.start + 1)) {
                let _ = writeln!(diff, "lost: {s}");
            }
        }
        diff.push_str(&render_diff(f));
        if f.verdict == Verdict::MissingFile {
            diff.push_str(&render_missing(f, exp));
        }
        diff.push('\n');
    }
    if let Some(lost) = lost {
        let _ = writeln!(
            diff,
            "cache lines this crash state lost ({} lines; lost-lines.txt has the table):",
            lost.lost_lines
        );
        for s in &lost.sentences {
            let _ = writeln!(diff, "  {s}");
        }
        for n in &lost.notes {
            let _ = writeln!(diff, "  note: {n}");
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

    fn lost_page() -> Finding {
        let pattern: Vec<u8> = (0..4096u32).map(|i| (i % 13) as u8 + 1).collect();
        Finding {
            verdict: Verdict::DataLoss,
            file: "f1".into(),
            start: 4096,
            end: 8192,
            expected: vec![workloads::oracle::AllowedVersion {
                op: Some(5),
                bytes: pattern,
            }],
            found: vec![0; 4096],
            allowed_sizes: None,
            found_size: Some(8192),
            promised_by: Some(9),
            at: "after op 9 (msync)".into(),
            meta: None,
        }
    }

    #[test]
    fn a_lost_page_reads_as_one_line_with_its_rows_folded() {
        let text = render_diff(&lost_page());
        let lines: Vec<&str> = text.lines().collect();

        assert_eq!(
            lines[1],
            "4096 bytes read back as zeros; expected op 5's pattern"
        );
        assert!(lines.len() < 20, "{text}");
        assert!(
            text.contains("... 253 more rows like the one above (00001020..00001ff0)"),
            "{text}"
        );
        assert!(text.contains("  00001ff0:*00"), "{text}");
    }

    proptest::proptest! {
        /// Folding shows every distinct row, never folds a row unlike its predecessor, and
        /// accounts for every row exactly once.
        #[test]
        fn folds_cover_every_row_once(rows in proptest::collection::vec(0u8..3, 0..60)) {
            let bytes: Vec<u8> = rows.iter().flat_map(|&r| [r; ROW]).collect();

            let folds = fold_rows(&bytes);

            let mut next = 0;
            for f in &folds {
                match *f {
                    Fold::Row(i) => { proptest::prop_assert_eq!(i, next); next += 1; }
                    Fold::Gap { from, to } => {
                        proptest::prop_assert_eq!(from, next);
                        proptest::prop_assert!(to > from);
                        for k in from..to { proptest::prop_assert_eq!(rows[k], rows[from - 1]); }
                        next = to;
                    }
                }
            }
            proptest::prop_assert_eq!(next, rows.len());
        }
    }
}
