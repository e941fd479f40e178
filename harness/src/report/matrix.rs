//! The reports of a kernel matrix (`kernels:`): one [`KernelSection`] per kernel, with the
//! report of that kernel's journal lines alone; `report.json`'s top-level totals and
//! verdict counts are their sums; `report.html` is the kernel × verdict table with a link
//! to each kernel's page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::html::escape;
use super::model::Report;
use crate::journal::fold::Totals;

/// One kernel of a kernel matrix in `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelSection {
    /// Its name (the spec as `kernels:` lists it; the journal's `kernel` tag).
    pub name: String,
    /// Its HTML report, relative to the run directory.
    pub html: String,
    /// The report of its items alone.
    pub report: Report,
}

/// The report of a kernel matrix from its kernels' reports (in `kernels:` order): sums of
/// their totals and verdict counts, their sections, the first one's environment.
pub fn matrix_report(mut sections: Vec<KernelSection>) -> Option<Report> {
    let first = sections.first()?.report.clone();
    let mut totals = Totals::default();
    let mut by_verdict = BTreeMap::new();
    let mut notes = Vec::new();
    let mut phases = crate::records::PhaseTotals::default();
    for s in &mut sections {
        let r = &mut s.report;
        totals.add(&r.totals, &s.name);
        phases.add(&r.phases);
        for (v, n) in &r.by_verdict {
            *by_verdict.entry(v.clone()).or_insert(0) += n;
        }
        notes.extend(std::mem::take(&mut r.notes));
        if let Some(info) = r.kernel_info.take() {
            r.kernel = info.kernel;
            r.image = info.image;
            r.modules = info.modules;
            // The run directory holds every kernel's coverage: this section shows its own.
            let release = r.kernel.clone();
            r.coverage.retain(|c| c.kernel == release);
            r.coverage_diff.retain(|c| c.kernel == release);
        }
    }
    notes.sort();
    notes.dedup();
    Some(Report {
        kernel: sections
            .iter()
            .map(|s| s.report.kernel.clone())
            .collect::<Vec<_>>()
            .join(", "),
        image: sections
            .iter()
            .map(|s| s.report.image.clone())
            .collect::<Vec<_>>()
            .join(", "),
        totals,
        phases,
        by_verdict,
        checks: Vec::new(),
        seeds: Vec::new(),
        failures: Vec::new(),
        stopped: sections.iter().find_map(|s| s.report.stopped.clone()),
        notes,
        kernels: sections,
        ..first
    })
}

/// The matrix page: the kernel × verdict table, each kernel linking to its own page.
pub fn render_matrix(r: &Report) -> String {
    let verdicts: Vec<&String> = r.by_verdict.keys().collect();
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>powercut kernel matrix</title></head><body><h1>powercut kernel matrix</h1>",
    );
    let verdict = if r.totals.failures > 0 {
        format!("FAIL: {} durability failures", r.totals.failures)
    } else if r.totals.infra > 0 {
        format!("INFRA: {} infrastructure problems", r.totals.infra)
    } else {
        "PASS: no durability failure".to_owned()
    };
    let _ = write!(
        out,
        "<p id=\"verdict\">{}</p><table id=\"matrix\" border=\"1\"><tr><th>kernel</th><th>release</th><th>items</th>",
        escape(&verdict)
    );
    for v in &verdicts {
        let _ = write!(out, "<th>{}</th>", escape(v));
    }
    out.push_str("<th>infra</th></tr>");
    for k in &r.kernels {
        let _ = write!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td>",
            escape(&k.html),
            escape(&k.name),
            escape(&k.report.kernel),
            k.report.totals.seeds
        );
        for v in &verdicts {
            let n = k.report.by_verdict.get(*v).copied().unwrap_or(0);
            let _ = write!(out, "<td>{n}</td>");
        }
        let _ = write!(out, "<td>{}</td></tr>", k.report.totals.infra);
    }
    out.push_str("</table></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::build_report;
    use crate::report::testdata::synthetic_run;

    #[test]
    fn a_matrix_sums_its_kernels_and_keeps_each_section() {
        let one = build_report(&synthetic_run());
        let sections = ["6.1", "7.2"]
            .iter()
            .enumerate()
            .map(|(i, n)| KernelSection {
                name: (*n).to_owned(),
                html: format!("report-k{i}.html"),
                report: one.clone(),
            })
            .collect();

        let m = matrix_report(sections).expect("two kernels");
        let page = render_matrix(&m);

        assert_eq!(m.totals.checks, 2 * one.totals.checks);
        assert_eq!(m.kernels.len(), 2);
        assert!(m.seeds.is_empty() && m.checks.is_empty());
        assert!(page.contains("href=\"report-k1.html\">7.2</a>"), "{page}");
    }
}
