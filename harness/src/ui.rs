//! Terminal output of a campaign, a consumer of its events: progress bars (only on a TTY),
//! one line per failure and infrastructure problem, and the summary table at the end.

use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use workloads::oracle::Verdict;

use crate::journal::events::Event;
use crate::journal::fold::{is_suppressed, CampaignState, Totals};
use crate::journal::sink::EventSink;
use crate::records::item::TrialItem;

/// Progress bars for seeds and checks; hidden when not on a TTY (the lines still print).
pub struct Progress {
    multi: Option<MultiProgress>,
    seeds: ProgressBar,
    checks: ProgressBar,
}

impl Progress {
    /// Bars for a campaign's items (seeds and workloads; their count comes with
    /// [`EventSink::begin`]), shown only if `enabled`.
    pub fn new(enabled: bool) -> Self {
        let seeds = 0;
        if !enabled {
            return Progress {
                multi: None,
                seeds: ProgressBar::hidden(),
                checks: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let s = multi.add(
            ProgressBar::new(seeds)
                .with_style(style.clone())
                .with_prefix("items"),
        );
        let c = multi.add(ProgressBar::new(0).with_style(style).with_prefix("checks"));
        Progress {
            multi: Some(multi),
            seeds: s,
            checks: c,
        }
    }

    /// Count the listed items, and those an earlier run finished.
    pub fn resume(&self, state: &CampaignState, listed: &[TrialItem]) {
        self.seeds.set_length(listed.len() as u64);
        let done = state.finished_items();
        self.seeds
            .inc(listed.iter().filter(|s| done.contains(s)).count() as u64);
    }

    /// Print a line above the bars (or plainly).
    pub fn println(&self, m: &str) {
        match &self.multi {
            Some(multi) => {
                if multi.println(m).is_err() {
                    eprintln!("{m}");
                }
            }
            None => eprintln!("{m}"),
        }
    }

    /// Show one recorded event (`state` already includes it).
    pub fn on_event(&self, e: &Event, state: &CampaignState, suppressions: &[regex::Regex]) {
        match e {
            Event::SeedStarted { item } => {
                self.seeds.set_message(format!("{item}: running"));
                tracing::info!(%item, "item started");
            }
            Event::RunFailed {
                item,
                verdict,
                problem,
            } => self.println(&format!("INFRA {item}: {verdict}: {problem}")),
            Event::RunDone {
                item: seed,
                images,
                live_mismatch,
                ..
            } => {
                self.checks.inc_length(*images as u64);
                if let Some(m) = live_mismatch {
                    self.println(&format!(
                        "INFRA {seed}: the live file system differs from the oracle ({m}): oracle/agent disagreement, not a kernel bug"
                    ));
                }
            }
            Event::Checked(c) => {
                self.checks.inc(1);
                if c.verdict != Verdict::Pass {
                    self.checks
                        .set_message(format!("last non-pass: {}", c.verdict));
                }
                if let Some(p) = &c.problem {
                    self.println(&format!("INFRA {} {}: {p}", c.item, c.at));
                }
                if is_suppressed(c, suppressions) {
                    tracing::info!(item = %c.item, title = c.title(), "known bug (suppressed)");
                }
            }
            Event::FailureSaved {
                title, dir, bucket, ..
            } => {
                let b = bucket.as_deref().unwrap_or(title);
                self.println(&format!("FAIL {b}\n     first: {title}\n     {dir}"));
            }
            Event::SeedDone { .. } => {
                let done = state.finished_items().len() as u64;
                self.seeds
                    .set_position(done.min(self.seeds.length().unwrap_or(done)));
            }
            Event::Journal { .. } | Event::Started { .. } | Event::Stopped { .. } => {}
        }
    }

    /// Remove the bars.
    pub fn finish(&self) {
        self.seeds.finish_and_clear();
        self.checks.finish_and_clear();
    }
}

impl EventSink for Progress {
    fn begin(&mut self, state: &CampaignState, listed: &[TrialItem]) {
        self.resume(state, listed);
    }

    fn event(&mut self, e: &Event, state: &CampaignState, suppressions: &[regex::Regex]) {
        self.on_event(e, state, suppressions);
    }

    fn note(&mut self, line: &str) {
        self.println(line);
    }

    fn end(&mut self) {
        self.finish();
    }
}

/// The end-of-campaign summary table.
/// `start` says how workload VMs came up (`restore`, `cold-boot`).
pub fn summary_table(t: &Totals, accel: &str, start: &str, dir: &std::path::Path) -> String {
    let mut s = String::new();
    s.push_str("\n  powercut campaign summary\n");
    s.push_str("  ------------------------------------------\n");
    for (k, v) in [
        ("seeds and workloads", t.seeds),
        ("crash images checked", t.checks),
        ("pass", t.passed),
        ("failure instances", t.failures),
        ("distinct failures (buckets)", t.distinct_failures.len()),
        ("known bugs (suppressed)", t.suppressed.len()),
        ("infrastructure problems", t.infra),
    ] {
        s.push_str(&format!("  {k:<28}{v:>8}\n"));
    }
    s.push_str(&format!("  {:<28}{accel:>8}\n", "accelerator"));
    s.push_str(&format!("  {:<28}{start:>8}\n", "workload VM start"));
    s.push_str("  ------------------------------------------\n");
    for bucket in &t.distinct_failures {
        let n = t.bucket_instances.get(bucket).copied().unwrap_or(0);
        s.push_str(&format!("  FAIL  {bucket}: {n} instance(s)\n"));
    }
    for p in &t.infra_problems {
        s.push_str(&format!("  INFRA {p}\n"));
    }
    s.push_str(&format!("  run directory: {}\n", dir.display()));
    s
}

/// The kernel × verdict table: one row per kernel (checks by verdict, seeds, infra).
pub fn verdict_table(rows: &[(String, BTreeMap<Verdict, usize>, Totals)]) -> String {
    let verdicts: Vec<Verdict> = Verdict::ALL
        .iter()
        .copied()
        .filter(|v| {
            rows.iter()
                .any(|(_, by, _)| by.get(v).is_some_and(|n| *n > 0))
        })
        .collect();
    let width = rows
        .iter()
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!("\n  kernel matrix\n  {:<width$}  {:>6}", "kernel", "items");
    for v in &verdicts {
        s.push_str(&format!("  {:>12}", v.name()));
    }
    s.push_str(&format!("  {:>6}\n", "infra"));
    for (name, by, t) in rows {
        s.push_str(&format!("  {name:<width$}  {:>6}", t.seeds));
        for v in &verdicts {
            s.push_str(&format!("  {:>12}", by.get(v).copied().unwrap_or(0)));
        }
        s.push_str(&format!("  {:>6}\n", t.infra));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_kernel_and_a_column_per_verdict_seen() {
        let by1: BTreeMap<Verdict, usize> = [(Verdict::Pass, 9)].into();
        let by2: BTreeMap<Verdict, usize> = [(Verdict::Pass, 7), (Verdict::DataLoss, 2)].into();
        let t = Totals {
            seeds: 3,
            ..Totals::default()
        };

        let table = verdict_table(&[("6.1".into(), by1, t.clone()), ("7.2".into(), by2, t)]);

        assert!(
            table.contains("data-loss") && !table.contains("size-loss"),
            "{table}"
        );
        let row: Vec<&str> = table.lines().filter(|l| l.contains("7.2")).collect();
        assert_eq!(
            row[0].split_whitespace().collect::<Vec<_>>(),
            ["7.2", "3", "7", "2", "0"]
        );
    }
}
