//! The last lines of a campaign's summary in the shape of fstests' `./check`, for scripts
//! written against its output: `Ran: <ids>`, `Not run: <ids>` (items the campaign started
//! but did not finish), `Failures: <ids>` and `Failed N of M tests`, or
//! `Passed all M tests`.
//!
//! An item's id is `seed/<n>` or `workload/<name>` (prefixed `k<i>/` per kernel of a
//! matrix). `Ran` lists the finished items; a failure is an item that found an unsuppressed
//! kernel bug or hit an infrastructure problem (the campaign exits non-zero for both), so
//! `Passed all` appears exactly when neither happened. Known bugs (suppressed) count as
//! passed, as the campaign's exit code does.

use super::model::{Report, SeedStatus};
use crate::records::item::TrialItem;

fn item_id(item: &TrialItem) -> String {
    match item {
        TrialItem::Seed(s) => format!("seed/{s}"),
        TrialItem::Workload(n) => format!("workload/{n}"),
    }
}

/// The fstests-style lines of `report` (each ends with a newline).
pub fn summary_lines(report: &Report) -> String {
    let kernels: Vec<(String, &Report)> = if report.kernels.is_empty() {
        vec![(String::new(), report)]
    } else {
        report
            .kernels
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("k{i}/"), &k.report))
            .collect()
    };
    let (mut ran, mut not_run, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (prefix, r) in &kernels {
        for s in &r.seeds {
            let id = format!("{prefix}{}", item_id(&s.item));
            match s.status {
                SeedStatus::Incomplete => not_run.push(id),
                SeedStatus::Fail | SeedStatus::Infra => {
                    ran.push(id.clone());
                    failed.push(id);
                }
                SeedStatus::Pass | SeedStatus::KnownBug => ran.push(id),
            }
        }
    }
    let mut out = format!("Ran: {}\n", ran.join(" "));
    if !not_run.is_empty() {
        out.push_str(&format!("Not run: {}\n", not_run.join(" ")));
    }
    if failed.is_empty() {
        out.push_str(&format!("Passed all {} tests\n", ran.len()));
    } else {
        out.push_str(&format!("Failures: {}\n", failed.join(" ")));
        out.push_str(&format!("Failed {} of {} tests\n", failed.len(), ran.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build_report;
    use crate::report::matrix::{matrix_report, KernelSection};
    use crate::report::testdata::synthetic_run;

    #[test]
    fn failures_and_infrastructure_problems_fail_known_bugs_pass() {
        let report = build_report(&synthetic_run());

        let lines = summary_lines(&report);

        assert_eq!(
            lines,
            "Ran: seed/1 seed/2 seed/3 seed/4 workload/pwrite-fsync\n\
             Not run: seed/5\n\
             Failures: seed/1 seed/3 workload/pwrite-fsync\n\
             Failed 3 of 5 tests\n"
        );
    }

    #[test]
    fn a_clean_run_passes_all() {
        let mut report = build_report(&synthetic_run());
        report.seeds.retain(|s| s.status == SeedStatus::Pass);

        let lines = summary_lines(&report);

        assert_eq!(lines, "Ran: seed/2\nPassed all 1 tests\n");
    }

    #[test]
    fn a_matrix_prefixes_each_kernel() {
        let mut one = build_report(&synthetic_run());
        one.seeds.retain(|s| s.status == SeedStatus::Pass);
        let sections = (0..2)
            .map(|i| KernelSection {
                name: format!("kernel{i}"),
                html: format!("report-k{i}.html"),
                report: one.clone(),
            })
            .collect();
        let report = matrix_report(sections).expect("matrix");

        let lines = summary_lines(&report);

        assert_eq!(lines, "Ran: k0/seed/2 k1/seed/2\nPassed all 2 tests\n");
    }
}
