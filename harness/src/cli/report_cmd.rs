//! `powercut report <run-dir> [--junit PATH]`: write a run directory's reports again
//! (`report.json`, `report.html`, JUnit XML) from what the directory holds.

use std::path::PathBuf;

use anyhow::Context;

use super::exit;
use crate::report::write_reports;

/// `report` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The campaign's run directory (its `--output`).
    pub run_dir: PathBuf,
    /// Also write JUnit XML (one testcase per seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

/// `powercut report`: exit 0 once the reports are written (whatever the campaign found: its
/// verdicts are in them), 2 if the directory is not a run directory or its journal is
/// damaged (never a report of a journal it could not read whole).
pub fn report(args: &ReportArgs) -> anyhow::Result<i32> {
    let written = match write_reports(&args.run_dir, args.junit.as_deref()) {
        Ok(w) => w,
        Err(e) if e.is_bad_input() => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("writing the reports of {}", args.run_dir.display()))
        }
    };
    let t = &written.report.totals;
    println!(
        "{} seeds, {} checks: {} passed, {} durability failures ({} distinct), {} infrastructure problems",
        t.seeds,
        t.checks,
        t.passed,
        t.failures,
        t.distinct_failures.len(),
        t.infra
    );
    println!("wrote {}", written.json.display());
    println!("wrote {}", written.html.display());
    if let Some(j) = &written.junit {
        println!("wrote {}", j.display());
    }
    Ok(exit::PASS)
}
