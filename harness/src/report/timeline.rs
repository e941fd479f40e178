//! A seed's timeline: its ops in order with the crash points placed where they were taken
//! ("after op K" between op K and op K+1, "inside op K" on op K), coloured by verdict.
//! [`slots`] is the pure layout; [`render`] turns it into HTML.

use std::fmt::Write as _;

use super::html::{escape, failure_anchor, verdict_class};
use super::model::{CrashPointEntry, OpEntry, SeedEntry, When};

/// One position on a timeline.
#[derive(Debug)]
pub enum Slot<'a> {
    /// An op, with the crash points taken while it ran.
    Op {
        /// The op.
        op: &'a OpEntry,
        /// Crash points "inside op K".
        inside: Vec<&'a CrashPointEntry>,
    },
    /// A crash point "after op K", right after op K's slot.
    Cut(&'a CrashPointEntry),
    /// A crash point whose label does not parse or names an op the workload does not have
    /// (listed at the end).
    Unplaced(&'a CrashPointEntry),
}

/// Lay out a seed's timeline.
pub fn slots(seed: &SeedEntry) -> Vec<Slot<'_>> {
    let at =
        |cp: &CrashPointEntry, when, k| cp.at.as_ref().is_some_and(|a| a.when == when && a.op == k);
    let mut out = Vec::new();
    for op in &seed.ops {
        let k = op.index;
        let inside = seed
            .crash_points
            .iter()
            .filter(|cp| at(cp, When::Inside, k))
            .collect();
        out.push(Slot::Op { op, inside });
        out.extend(
            seed.crash_points
                .iter()
                .filter(|cp| at(cp, When::After, k))
                .map(Slot::Cut),
        );
    }
    out.extend(
        seed.crash_points
            .iter()
            .filter(|cp| cp.at.as_ref().is_none_or(|a| a.op >= seed.ops.len()))
            .map(Slot::Unplaced),
    );
    out
}

/// One crash point marker: a pill in its verdict's colour, linking to its failure section.
fn marker(cp: &CrashPointEntry, out: &mut String) {
    let class = verdict_class(cp.verdict, cp.suppressed);
    let mut tip = format!("{}: {}", cp.point, cp.verdict);
    if cp.suppressed {
        tip.push_str(" (known bug, suppressed)");
    }
    if let Some(t) = &cp.title {
        tip.push_str(" — ");
        tip.push_str(t);
    }
    let text = format!("⚡ {}", cp.verdict);
    match cp
        .failure_dir
        .as_deref()
        .and_then(|d| d.strip_prefix("failures/"))
    {
        Some(slug) => {
            let _ = write!(
                out,
                "<a class=\"cp {class}\" href=\"#{}\" title=\"{}\">{}</a>",
                escape(&failure_anchor(slug)),
                escape(&tip),
                escape(&text)
            );
        }
        None => {
            let _ = write!(
                out,
                "<span class=\"cp {class}\" title=\"{}\">{}</span>",
                escape(&tip),
                escape(&text)
            );
        }
    }
}

/// Render a seed's timeline as an ordered list.
pub fn render(seed: &SeedEntry, out: &mut String) {
    if seed.ops.is_empty() && seed.crash_points.is_empty() {
        out.push_str("<p class=\"muted\">No ops and no crash points recorded.</p>");
        return;
    }
    out.push_str("<ol class=\"timeline\">");
    for slot in slots(seed) {
        match slot {
            Slot::Op { op, inside } => {
                let _ = write!(
                    out,
                    "<li class=\"op\"><span class=\"k\">{}</span> <span class=\"kind\">{}</span>",
                    op.index,
                    escape(&op.kind)
                );
                if !op.files.is_empty() {
                    let _ = write!(
                        out,
                        " <span class=\"file\">{}</span>",
                        escape(&op.files.join(" → "))
                    );
                }
                for cp in inside {
                    out.push(' ');
                    marker(cp, out);
                }
                out.push_str("</li>");
            }
            Slot::Cut(cp) => {
                out.push_str("<li class=\"cut\">");
                marker(cp, out);
                out.push_str("</li>");
            }
            Slot::Unplaced(cp) => {
                let _ = write!(out, "<li class=\"cut unplaced\">{} ", escape(&cp.point));
                marker(cp, out);
                out.push_str("</li>");
            }
        }
    }
    out.push_str("</ol>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashAt, SeedStatus, When};
    use workloads::oracle::Verdict;

    fn op(index: usize, kind: &str) -> OpEntry {
        OpEntry {
            index,
            kind: kind.into(),
            files: vec!["f0".into()],
        }
    }

    /// "after op 2 (fsync)" → its typed form (test data only).
    fn at(point: &str) -> CrashAt {
        let words: Vec<&str> = point.split(' ').collect();
        CrashAt {
            when: if words[0] == "after" {
                When::After
            } else {
                When::Inside
            },
            op: words[2].parse().expect("op index"),
            kind: words[3].trim_matches(|c| c == '(' || c == ')').into(),
        }
    }

    fn cp(point: &str, verdict: Verdict) -> CrashPointEntry {
        CrashPointEntry {
            point: point.into(),
            at: Some(at(point)),
            verdict,
            title: None,
            bucket: None,
            suppressed: false,
            millis: 1,
            failure_dir: None,
        }
    }

    fn kinds(slots: &[Slot<'_>]) -> Vec<String> {
        slots
            .iter()
            .map(|s| match s {
                Slot::Op { op, inside } => format!("op{}+{}", op.index, inside.len()),
                Slot::Cut(cp) => format!("cut:{}", cp.point),
                Slot::Unplaced(cp) => format!("?:{}", cp.point),
            })
            .collect()
    }

    #[test]
    fn crash_points_land_after_or_inside_their_op() {
        let seed = SeedEntry {
            item: crate::records::item::TrialItem::Seed(1),
            file: None,
            status: SeedStatus::Fail,
            ops: vec![op(0, "create"), op(1, "pwrite"), op(2, "fsync")],
            crash_points: vec![
                cp("after op 2 (fsync)", Verdict::DataLoss),
                cp("inside op 1 (pwrite)", Verdict::Pass),
                cp("after op 0 (create)", Verdict::Pass),
                cp("after op 9 (fsync)", Verdict::Pass),
            ],
            infra: None,
            millis: 4,
            workload_yaml: None,
            console: None,
        };

        let got = kinds(&slots(&seed));

        assert_eq!(
            got,
            vec![
                "op0+0",
                "cut:after op 0 (create)",
                "op1+1",
                "op2+0",
                "cut:after op 2 (fsync)",
                "?:after op 9 (fsync)"
            ]
        );
    }

    #[test]
    fn timeline_of_a_synthetic_run_marks_each_crash_point_in_its_verdict_colour() {
        let report = crate::report::build_report(&crate::report::testdata::synthetic_run());
        let seed1 = &report.seeds[0];

        let laid_out = kinds(&slots(seed1));
        let mut html = String::new();
        render(seed1, &mut html);

        assert_eq!(
            laid_out,
            vec![
                "op0+0",
                "cut:after op 0 (create)",
                "op1+1",
                "op2+0",
                "cut:after op 2 (fsync)"
            ]
        );
        assert_eq!(html.matches("class=\"cp v-pass\"").count(), 2, "{html}");
        assert!(
            html.contains(&format!(
                "<a class=\"cp v-bug\" href=\"#f-{}\"",
                crate::report::testdata::SLUG
            )),
            "{html}"
        );
        assert!(
            html.contains("f&lt;0&gt;") && !html.contains("f<0>"),
            "{html}"
        );
    }
}
