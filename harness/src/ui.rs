//! Terminal output of a campaign: progress bars (only on a TTY) and the summary table.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use workloads::oracle::Verdict;

use crate::campaign::Totals;

/// Progress bars for seeds and checks; all no-ops when not on a TTY.
pub struct Progress {
    multi: Option<MultiProgress>,
    seeds: ProgressBar,
    checks: ProgressBar,
}

impl Progress {
    /// Bars for `seeds` seeds, shown only if `enabled`.
    pub fn new(enabled: bool, seeds: u64) -> Self {
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
                .with_prefix("seeds"),
        );
        let c = multi.add(ProgressBar::new(0).with_style(style).with_prefix("checks"));
        Progress {
            multi: Some(multi),
            seeds: s,
            checks: c,
        }
    }

    /// Status text.
    pub fn message(&self, m: &str) {
        self.seeds.set_message(m.to_owned());
        tracing::info!("{m}");
    }

    /// Print a line above the bars (or plainly).
    pub fn println(&self, m: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(m);
            }
            None => eprintln!("{m}"),
        }
    }

    /// More checks to do.
    pub fn add_checks(&self, n: u64) {
        self.checks.inc_length(n);
    }

    /// One check done.
    pub fn check_done(&self, v: Verdict) {
        self.checks.inc(1);
        if v != Verdict::Pass {
            self.checks.set_message(format!("last non-pass: {v}"));
        }
    }

    /// One seed done.
    pub fn seed_done(&self) {
        self.seeds.inc(1);
    }

    /// Remove the bars.
    pub fn finish(&self) {
        self.seeds.finish_and_clear();
        self.checks.finish_and_clear();
    }
}

/// The end-of-campaign summary table.
pub fn summary_table(t: &Totals, accel: &str, dir: &std::path::Path) -> String {
    let mut s = String::new();
    s.push_str("\n  powercut campaign summary\n");
    s.push_str("  ------------------------------------------\n");
    for (k, v) in [
        ("seeds", t.seeds),
        ("crash images checked", t.checks),
        ("pass", t.passed),
        ("durability failures", t.failures),
        ("distinct failures", t.distinct_failures.len()),
        ("infrastructure problems", t.infra),
    ] {
        s.push_str(&format!("  {k:<26}{v:>8}\n"));
    }
    s.push_str(&format!("  {:<26}{accel:>8}\n", "accelerator"));
    s.push_str("  ------------------------------------------\n");
    for title in &t.distinct_failures {
        s.push_str(&format!("  FAIL  {title}\n"));
    }
    for p in &t.infra_problems {
        s.push_str(&format!("  INFRA {p}\n"));
    }
    s.push_str(&format!("  run directory: {}\n", dir.display()));
    s
}
