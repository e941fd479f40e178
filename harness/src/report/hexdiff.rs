//! The byte diff of one finding as HTML: each allowed version of the range (the op that
//! wrote it) over what was found, 16 bytes a row, found bytes that differ from the newest
//! allowed version highlighted (the same rule as `diff.txt`), with the same one-line summary
//! first and the same folding of runs of identical found rows.

use std::fmt::Write as _;

use workloads::oracle::{Finding, Verdict};

use super::html::escape;
use crate::rundir::diff::{fold_rows, loss_summary, Fold};

/// Bytes per row.
pub const ROW: usize = 16;

/// For each position of `found`, and past its end up to the length of `newest`: does the
/// found byte differ from the newest allowed version's byte? A position past the end of
/// `found` (a shorter file) differs; with no allowed version nothing is marked.
pub fn differing(found: &[u8], newest: Option<&[u8]>) -> Vec<bool> {
    let Some(newest) = newest else {
        return vec![false; found.len()];
    };
    (0..found.len().max(newest.len()))
        .map(|i| found.get(i) != newest.get(i))
        .collect()
}

/// Hex cells of one row: `bytes[lo..hi]`, with `mark[i]` highlighted; positions past the end
/// of `bytes` print as `--`.
fn hex_cells(out: &mut String, bytes: &[u8], lo: usize, hi: usize, mark: &[bool]) {
    for i in lo..hi {
        let text = bytes
            .get(i)
            .map_or_else(|| "--".to_owned(), |b| format!("{b:02x}"));
        if mark.get(i).copied().unwrap_or(false) {
            let _ = write!(out, "<span class=\"d\">{text}</span>");
        } else {
            out.push_str(&text);
        }
        if i + 1 < hi {
            out.push(' ');
        }
    }
}

/// Render one finding: its title, the promise and sizes, and the hex table.
pub fn render_finding(f: &Finding, out: &mut String) {
    let _ = write!(
        out,
        "<div class=\"finding\"><p class=\"ftitle\"><span class=\"pill v-bug\">{}</span> <code>{}</code></p>",
        escape(f.verdict.name()),
        escape(&f.title())
    );
    let mut facts = Vec::new();
    if let Some(p) = f.promised_by {
        facts.push(format!("promised durable by op {p}"));
    }
    if let (Some(sizes), Some(found)) = (&f.allowed_sizes, f.found_size) {
        facts.push(format!("size: allowed {sizes}, found {found}"));
    } else if let Some(found) = f.found_size {
        facts.push(format!("file size found: {found}"));
    }
    if !facts.is_empty() {
        let _ = write!(out, "<p class=\"facts\">{}</p>", escape(&facts.join(" · ")));
    }
    if let Some(line) = loss_summary(f) {
        let _ = write!(out, "<p class=\"summary\">{}</p>", escape(&line));
    }
    if f.expected.is_empty() && f.found.is_empty() {
        let what = match f.verdict {
            Verdict::MissingFile => "the file is absent",
            Verdict::UnexpectedFile => "the file exists but must not",
            _ => "no byte range to compare",
        };
        let _ = write!(
            out,
            "<p class=\"absent\">No bytes to compare: {what} (diff.txt below has the oracle's view).</p></div>"
        );
        return;
    }
    let newest = f.expected.last().map(|v| v.bytes.as_slice());
    let mark = differing(&f.found, newest);
    let len = f
        .expected
        .iter()
        .map(|v| v.bytes.len())
        .chain([f.found.len()])
        .max()
        .unwrap_or(0);
    out.push_str(
        "<table class=\"hex\"><thead><tr><th>offset</th><th>content</th><th>bytes (highlighted: differs from the newest allowed version)</th></tr></thead><tbody>",
    );
    let folds = if f.found.is_empty() {
        (0..len.div_ceil(ROW)).map(Fold::Row).collect()
    } else {
        let mut fo = fold_rows(&f.found);
        // Rows past the found bytes (a shorter file) are shown one by one.
        fo.extend((f.found.len().div_ceil(ROW)..len.div_ceil(ROW)).map(Fold::Row));
        fo
    };
    for fold in folds {
        let row = match fold {
            Fold::Row(i) => i,
            Fold::Gap { from, to } => {
                let _ = write!(
                    out,
                    "<tr class=\"gap\"><td class=\"off\"></td><td colspan=\"2\">… {} more rows where the found bytes repeat ({:08x}..{:08x})</td></tr>",
                    to - from,
                    f.start + (from * ROW) as u64,
                    f.start + (to * ROW) as u64
                );
                continue;
            }
        };
        let lo = row * ROW;
        let hi = (lo + ROW).min(len);
        let off = f.start + lo as u64;
        for (i, v) in f.expected.iter().enumerate() {
            let who =
                v.op.map_or_else(|| "never written".to_owned(), |k| format!("op {k}"));
            let first = if i == 0 {
                format!("{off:08x}")
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<tr class=\"exp\"><td class=\"off\">{first}</td><td class=\"who\">expected ({})</td><td class=\"b\">",
                escape(&who)
            );
            hex_cells(out, &v.bytes, lo, hi, &[]);
            out.push_str("</td></tr>");
        }
        let first = if f.expected.is_empty() {
            format!("{off:08x}")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr class=\"found\"><td class=\"off\">{first}</td><td class=\"who\">found</td><td class=\"b\">"
        );
        hex_cells(out, &f.found, lo, hi, &mark);
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::AllowedVersion;

    #[test]
    fn differing_marks_changed_and_missing_bytes() {
        assert_eq!(
            differing(&[1, 9, 3], Some(&[1, 2, 3, 4])),
            vec![false, true, false, true]
        );
        assert_eq!(differing(&[1, 2], None), vec![false, false]);
    }

    #[test]
    fn finding_table_highlights_the_differing_byte() {
        let f = Finding {
            verdict: Verdict::DataLoss,
            file: "f<1>".into(),
            start: 4096,
            end: 4104,
            expected: vec![AllowedVersion {
                op: Some(5),
                bytes: vec![0xaa; 8],
            }],
            found: vec![0xaa, 0xaa, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa],
            allowed_sizes: None,
            found_size: Some(8192),
            promised_by: Some(7),
            at: "after op 7 (fsync)".into(),
            meta: None,
        };
        let mut html = String::new();

        render_finding(&f, &mut html);

        assert!(html.contains("f&lt;1&gt;"), "{html}");
        assert!(html.contains("00001000"), "{html}");
        assert!(
            html.contains("aa aa <span class=\"d\">00</span> aa"),
            "{html}"
        );
        assert!(html.contains("expected (op 5)"), "{html}");
        assert!(html.contains("promised durable by op 7"), "{html}");
    }

    #[test]
    fn a_lost_range_gets_its_summary_and_folded_rows() {
        let f = Finding {
            verdict: Verdict::DataLoss,
            file: "f1".into(),
            start: 0,
            end: 512,
            expected: vec![AllowedVersion {
                op: Some(5),
                bytes: (0..512u32).map(|i| (i % 7) as u8 + 1).collect(),
            }],
            found: vec![0; 512],
            allowed_sizes: None,
            found_size: Some(512),
            promised_by: Some(9),
            at: "after op 9 (msync)".into(),
            meta: None,
        };
        let mut html = String::new();

        render_finding(&f, &mut html);

        assert!(
            html.contains("512 bytes read back as zeros; expected op 5&#39;s pattern"),
            "{html}"
        );
        assert!(
            html.contains("… 29 more rows where the found bytes repeat"),
            "{html}"
        );
        assert_eq!(html.matches("<tr class=\"found\">").count(), 3, "{html}");
    }
}
