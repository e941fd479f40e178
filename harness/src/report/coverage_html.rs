//! The coverage section of `report.html`: per kernel, the subsystems as bars (blocks
//! reached during the ops of the total the disassembly found), a plot of blocks reached over
//! the campaign's time (inline SVG), the functions with reached/total blocks, and the
//! never-reached functions. Pure: a [`CoverageSummary`] in, HTML out.

use std::fmt::Write;

use super::html::escape;
use crate::coverage::diff::{DiffCoverage, Reach};
use crate::coverage::summary::percent;
use crate::coverage::CoverageSummary;

/// Width and height of the time plot, px.
const PLOT: (f64, f64) = (480.0, 160.0);

/// Append the section (a line saying there is none when `summaries` is empty), the diff
/// coverage of a patch (`--coverage-diff`) first.
pub fn section(summaries: &[CoverageSummary], diffs: &[DiffCoverage], out: &mut String) {
    out.push_str("<section id=\"coverage\"><h2>Kernel coverage</h2>");
    for d in diffs {
        diff(d, out);
    }
    if summaries.is_empty() {
        out.push_str(
            "<p>No coverage recorded (KVM, <code>coverage: false</code>, or a run directory \
             from before coverage).</p></section>",
        );
        return;
    }
    for s in summaries {
        kernel(s, out);
    }
    out.push_str("</section>");
}

fn kernel(s: &CoverageSummary, out: &mut String) {
    let _ = write!(
        out,
        "<h3>{}: {} runs</h3><p class=\"note\">Blocks reached between the first op's start and \
         the last op's end (set-up apart), of the basic blocks found by disassembling each \
         function. {} Largest run: {} kernel blocks during the ops.</p>",
        escape(&s.kernel),
        s.runs,
        escape(&s.grouping),
        s.max_run_ops_blocks
    );
    out.push_str("<table class=\"coverage\"><tr><th>subsystem</th><th>functions</th><th>blocks</th><th></th><th>set-up blocks</th></tr>");
    for x in &s.subsystems {
        let p = percent(x.blocks_reached, x.blocks);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}/{}</td><td>{}/{} ({p:.1}%)</td>\
             <td><div style=\"background:#ddd;width:200px;height:10px\"><div style=\"background:#2a7;width:{:.0}px;height:10px\"></div></div></td><td>{}</td></tr>",
            escape(&x.name),
            x.functions_reached,
            x.functions,
            x.blocks_reached,
            x.blocks,
            p * 2.0,
            x.blocks_setup
        );
    }
    out.push_str("</table>");
    plot(s, out);
    out.push_str("<details><summary>Functions reached (blocks reached / blocks)</summary><table><tr><th>function</th><th>subsystem</th><th>file</th><th>blocks</th><th>set-up</th></tr>");
    for f in s.functions.iter().filter(|f| f.reached > 0) {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            escape(&f.function),
            escape(&f.subsystem),
            escape(f.file.as_deref().unwrap_or("")),
            f.reached,
            f.blocks,
            f.setup
        );
    }
    out.push_str("</table></details>");
    for x in &s.subsystems {
        let never: Vec<String> = s
            .never_reached()
            .filter(|f| f.subsystem == x.name)
            .map(|f| format!("<code>{}</code>", escape(&f.function)))
            .collect();
        if !never.is_empty() {
            let _ = write!(
                out,
                "<details><summary>Never reached in {} ({})</summary><p>{}</p></details>",
                escape(&x.name),
                never.len(),
                never.join(", ")
            );
        }
    }
    for n in &s.notes {
        let _ = write!(out, "<p class=\"note\">{}</p>", escape(n));
    }
}

/// A patch's changed functions: the verdict line, then each function with a bar.
fn diff(d: &DiffCoverage, out: &mut String) {
    let _ = write!(
        out,
        "<h3>Your change: {}</h3><p class=\"note\">{}</p><p><b>{}</b></p>\
         <table class=\"coverage\"><tr><th>function</th><th>file</th><th>blocks reached</th><th></th></tr>",
        escape(&d.kernel),
        escape(&d.patch),
        escape(&d.line)
    );
    for f in &d.functions {
        let (figure, width) = match f.reach {
            Reach::NotMapped => (
                "not in the code map (inlined, or not mapped)".to_owned(),
                0.0,
            ),
            _ => (
                format!("{}/{}", f.reached, f.blocks),
                percent(f.reached, f.blocks) * 2.0,
            ),
        };
        let color = if f.reach == Reach::Reached {
            "#2a7"
        } else {
            "#c33"
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td><div style=\"background:{color};opacity:0.25;width:200px;height:10px\"><div style=\"background:{color};width:{width:.0}px;height:10px\"></div></div></td></tr>",
            escape(&f.name),
            escape(&f.file),
            escape(&figure)
        );
    }
    out.push_str("</table>");
    for n in &d.notes {
        let _ = write!(out, "<p class=\"note\">{}</p>", escape(n));
    }
}

/// Blocks reached over time as an SVG polyline.
fn plot(s: &CoverageSummary, out: &mut String) {
    let (Some(last), false) = (s.timeline.last(), s.timeline.is_empty()) else {
        return;
    };
    let (w, h) = PLOT;
    let tmax = last.secs.max(1) as f64;
    let bmax = last.blocks.max(1) as f64;
    let points: Vec<String> = s
        .timeline
        .iter()
        .map(|p| {
            format!(
                "{:.1},{:.1}",
                p.secs as f64 / tmax * w,
                h - p.blocks as f64 / bmax * h
            )
        })
        .collect();
    let _ = write!(
        out,
        "<p>Blocks of these subsystems reached over the campaign ({} after {} s):</p>\
         <svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" style=\"border:1px solid #ccc\">\
         <polyline fill=\"none\" stroke=\"#2a7\" stroke-width=\"2\" points=\"{}\"/></svg>",
        last.blocks,
        last.secs,
        points.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::summary::{FunctionCoverage, SubsystemCoverage, TimePoint};

    #[test]
    fn the_section_shows_bars_functions_never_reached_and_the_plot_escaped() {
        let s = CoverageSummary {
            kernel: "6.12<x>".into(),
            runs: 2,
            subsystems: vec![SubsystemCoverage {
                name: "fs/dax.c".into(),
                functions: 2,
                functions_reached: 1,
                blocks: 10,
                blocks_reached: 5,
                blocks_setup: 1,
            }],
            functions: vec![
                FunctionCoverage {
                    function: "dax_a".into(),
                    subsystem: "fs/dax.c".into(),
                    file: Some("fs/dax.c".into()),
                    blocks: 6,
                    reached: 5,
                    setup: 1,
                },
                FunctionCoverage {
                    function: "dax_b".into(),
                    subsystem: "fs/dax.c".into(),
                    file: None,
                    blocks: 4,
                    reached: 0,
                    setup: 0,
                },
            ],
            timeline: vec![
                TimePoint { secs: 0, blocks: 3 },
                TimePoint {
                    secs: 10,
                    blocks: 5,
                },
            ],
            ..CoverageSummary::default()
        };
        let mut out = String::new();

        let patch = crate::coverage::diff::PatchFunctions {
            tree: "/src/linux".into(),
            rev: "HEAD~1".into(),
            commit: "abc".into(),
            functions: vec![crate::coverage::diff::ChangedFunction {
                file: "fs/dax.c".into(),
                name: "dax_b".into(),
            }],
            ..Default::default()
        };
        let d = crate::coverage::diff::diff_coverage(&patch, &s);

        section(&[s], &[d], &mut out);

        assert!(out.contains("6.12&lt;x&gt;: 2 runs"));
        assert!(out.contains("Your change: 6.12&lt;x&gt;"));
        assert!(out.contains(
            "your change touches 1 function; 0 reached (0/4 blocks); not reached: dax_b"
        ));
        assert!(out.contains("5/10 (50.0%)"));
        assert!(out.contains("<code>dax_a</code>"));
        assert!(out.contains("Never reached in fs/dax.c (1)"));
        assert!(out.contains("points=\"0.0,64.0 480.0,0.0\""));
        let mut empty = String::new();
        section(&[], &[], &mut empty);
        assert!(empty.contains("No coverage recorded"));
    }
}
