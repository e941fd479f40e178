//! JUnit XML (through `quick-junit`) for CI: one testsuite, one testcase per seed or workload
//! file (`seed 7`, `workload name`). One with a kernel-bug verdict is a `failure` (message:
//! its first failure title; text: its bucket, that failure's `diff.txt` and the end of the
//! guest console); the suite's properties count distinct failures (buckets) and instances; an
//! infrastructure problem is an
//! `error`; a seed the campaign did not finish is `skipped`; all-pass seeds and seeds whose
//! failures are all suppressed (known bugs) pass.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::model::{CrashPointEntry, Report, SeedEntry, SeedStatus};
use super::ReportError;
use crate::records::item::TrialItem;
use crate::runs::read::{RunData, CONSOLE_TAIL_LINES};

/// Name of the one testsuite.
pub const SUITE: &str = "powercut campaign";

/// The testcase class name: `powercut.<fs>.<mutant or stock>`.
fn classname(r: &Report) -> String {
    format!(
        "powercut.{}.{}",
        r.filesystem.name(),
        r.mutant.as_deref().unwrap_or("stock")
    )
}

/// One line per crash point, for the testcase's system-out.
fn crash_point_lines(s: &SeedEntry) -> String {
    let mut out = String::new();
    for cp in &s.crash_points {
        let _ = write!(out, "{}: {}", cp.point, cp.verdict);
        if cp.suppressed {
            out.push_str(" (known bug, suppressed)");
        }
        if let Some(t) = &cp.title {
            let _ = write!(out, " — {t}");
        }
        out.push('\n');
    }
    out
}

/// The end of the seed's console log (or of the failure directory's copy).
fn console_text(seed: &TrialItem, data: &RunData, fallback_slug: Option<&str>) -> String {
    let tail = data
        .consoles
        .get(seed)
        .or_else(|| fallback_slug.and_then(|s| data.failure_consoles.get(s)));
    match tail {
        Some(c) => format!(
            "--- last {CONSOLE_TAIL_LINES} lines of {} ---\n{}\n",
            c.path, c.tail
        ),
        None => "--- no console log found ---\n".to_owned(),
    }
}

/// The failure of a seed with an unsuppressed kernel-bug verdict.
fn failure_status(s: &SeedEntry, first: &CrashPointEntry, data: &RunData) -> TestCaseStatus {
    let title = first
        .title
        .clone()
        .unwrap_or_else(|| format!("{}: {}", first.verdict, first.point));
    let slug = first
        .failure_dir
        .as_deref()
        .and_then(|d| d.strip_prefix("failures/"));
    let mut text = format!("{title}\n{}, crash point {}\n", s.item, first.point);
    if let Some(b) = &first.bucket {
        let _ = writeln!(text, "bucket: {b}");
    }
    if let Some(d) = &first.failure_dir {
        let _ = writeln!(text, "failure directory: {d}");
    }
    match data
        .failures
        .iter()
        .find(|f| Some(f.slug().as_str()) == slug)
    {
        Some(f) => {
            let _ = writeln!(text, "reproduce: {}", f.record.reproduce);
            let _ = write!(text, "\n--- diff.txt ---\n{}\n", f.diff.trim_end());
        }
        None => text.push_str("\n--- no failure directory (see journal.jsonl) ---\n"),
    }
    text.push_str(&console_text(&s.item, data, slug));
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_message(title)
        .set_type(first.verdict.name())
        .set_description(text);
    status
}

/// The error of a seed with an infrastructure problem and no kernel-bug verdict.
fn error_status(s: &SeedEntry, data: &RunData) -> TestCaseStatus {
    let mut lines: Vec<String> = s.infra.iter().cloned().collect();
    lines.extend(
        s.crash_points
            .iter()
            .filter(|c| c.verdict.is_infrastructure())
            .map(|c| format!("{} {}: {}", s.item, c.point, c.verdict)),
    );
    let message = lines
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}: infrastructure problem", s.item));
    let mut text = lines.join("\n");
    text.push_str("\n\n");
    text.push_str(&console_text(&s.item, data, None));
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_message(message)
        .set_type("infrastructure")
        .set_description(text);
    status
}

/// The testcase of one seed.
fn testcase(r: &Report, s: &SeedEntry, data: &RunData) -> TestCase {
    let first_bug = s
        .crash_points
        .iter()
        .find(|c| c.verdict.is_kernel_bug() && !c.suppressed);
    let status = match (s.status, first_bug) {
        (SeedStatus::Incomplete, _) => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(
                "not finished: the campaign stopped during this item; `campaign --resume` runs it again",
            );
            st
        }
        (_, Some(first)) => failure_status(s, first, data),
        (SeedStatus::Infra, None) => error_status(s, data),
        _ => TestCaseStatus::success(),
    };
    let name = match &s.file {
        Some(f) => format!("{} ({f})", s.item),
        None => s.item.to_string(),
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(classname(r))
        .set_time(Duration::from_millis(s.millis));
    let lines = crash_point_lines(s);
    if !lines.is_empty() {
        tc.set_system_out(lines);
    }
    tc
}

/// Build the JUnit report. Pure.
pub fn build(r: &Report, data: &RunData) -> quick_junit::Report {
    let mut suite = TestSuite::new(SUITE);
    suite.add_properties([
        Property::new("kernel", r.kernel.as_str()),
        Property::new("accelerator", r.accelerator.as_str()),
        Property::new("filesystem", r.filesystem.name()),
        Property::new("mutant", r.mutant.as_deref().unwrap_or("none")),
        Property::new("profile", r.profile.as_str()),
        Property::new("image", r.image.as_str()),
        Property::new("powercut", r.powercut.as_str()),
        Property::new(
            "distinct failures",
            r.totals.distinct_failures.len().to_string(),
        ),
        Property::new("failure instances", r.totals.failures.to_string()),
    ]);
    suite.add_test_cases(r.seeds.iter().map(|s| testcase(r, s, data)));
    suite.set_time(Duration::from_millis(
        r.seeds.iter().map(|s| s.millis).sum(),
    ));
    // Problems that belong to no seed's testcase (e.g. a live-state disagreement) still show.
    let seed_lines: Vec<&String> = r.seeds.iter().filter_map(|s| s.infra.as_ref()).collect();
    let other: Vec<&str> = r
        .totals
        .infra_problems
        .iter()
        .filter(|l| !seed_lines.contains(l))
        .map(String::as_str)
        .collect();
    if !other.is_empty() {
        suite.set_system_err(other.join("\n"));
    }
    let mut report = quick_junit::Report::new("powercut");
    report.add_test_suite(suite);
    report
}

/// The JUnit XML text.
pub fn junit_xml(r: &Report, data: &RunData) -> Result<String, ReportError> {
    build(r, data).to_string().map_err(ReportError::Junit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::build_report;
    use crate::report::testdata::synthetic_run;

    #[test]
    fn junit_parses_back_with_one_testcase_per_seed_and_the_right_counts() {
        let data = synthetic_run();
        let report = build_report(&data);

        let xml = junit_xml(&report, &data).expect("serialize");
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("parses back");

        assert_eq!(parsed.test_suites.len(), 1);
        let suite = &parsed.test_suites[0];
        assert_eq!(
            (suite.tests, suite.failures, suite.errors, suite.skipped),
            (6, 2, 1, 1),
            "{xml}"
        );
        let seed1 = suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == "seed 1")
            .expect("seed 1");
        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message: Some(message),
            description: Some(text),
            ..
        } = &seed1.status
        else {
            panic!("seed 1 is a failure: {:?}", seed1.status);
        };
        assert_eq!(
            message.as_str(),
            "data-loss: f<0> [0..8) after op 2 (fsync)"
        );
        assert!(text.as_str().contains("--- diff.txt ---"), "{text:?}");
        assert!(
            text.as_str().contains("expected (written by op 1)"),
            "{text:?}"
        );
        assert!(
            text.as_str().contains("EXT4-fs (pmem0): mounted"),
            "{text:?}"
        );
        let seed4 = suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == "seed 4")
            .expect("seed 4");
        assert!(matches!(seed4.status, TestCaseStatus::Success { .. }));
    }
}
