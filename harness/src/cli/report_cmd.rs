//! `powercut report <run-dir> [--junit PATH] [--kcidb PATH]`: write a run directory's
//! reports again (`report.json`, `report.html`, JUnit XML, KCIDB JSON) from what the
//! directory holds; and
//! `powercut report merge OUT DIR...`: merge the run directories of a campaign's shards
//! into one run directory and write its reports and summary.

use std::path::PathBuf;

use anyhow::Context;

use super::exit;
use crate::error::Error;
use crate::report::write_reports;
use crate::runs::merge::merge;

/// `report` options.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    /// Merge run directories instead.
    #[command(subcommand)]
    pub action: Option<ReportAction>,
    /// The campaign's run directory (its `--output`).
    #[arg(required = true)]
    pub run_dir: Option<PathBuf>,
    /// Also write JUnit XML (one testcase per seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write the campaign as KCIDB v5 JSON (checkout, one build per kernel, tests
    /// `powercut.<fs>.<model>[.<bucket>]`) to this file, for kernel CI dashboards.
    #[arg(long, value_name = "PATH")]
    pub kcidb: Option<PathBuf>,
}

/// `report` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportAction {
    /// Merge the run directories of one campaign's shards (`campaign --shard K/N`) into the
    /// new run directory OUT, and write its reports (exit like the campaign: 0 pass, 1
    /// durability failure, 69 infrastructure problem or missing shard, 2 refused).
    Merge(MergeArgs),
}

/// `report merge` options.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The merged run directory to write (must not exist, or be empty).
    pub out: PathBuf,
    /// The run directories to merge: the shards of one campaign.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also write JUnit XML (one testcase per seed and workload of every shard) here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

/// `powercut report`: exit 0 once the reports are written (whatever the campaign found: its
/// verdicts are in them), 2 if the directory is not a run directory or its journal is
/// damaged (never a report of a journal it could not read whole).
pub fn report(args: &ReportArgs) -> Result<i32, Error> {
    if let Some(ReportAction::Merge(m)) = &args.action {
        return report_merge(m);
    }
    let Some(run_dir) = &args.run_dir else {
        return Err(Error::Usage(
            "give a run directory (or `report merge OUT DIR...`)".into(),
        ));
    };
    let written = match write_reports(run_dir, args.junit.as_deref()) {
        Ok(w) => w,
        Err(e) if e.is_bad_input() => return Err(Error::Usage(e.to_string())),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("writing the reports of {}", run_dir.display()))
                .map_err(Error::from)
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
    if let Some(k) = &args.kcidb {
        crate::report::write_kcidb(&written.report, k)
            .with_context(|| format!("writing the KCIDB JSON {}", k.display()))?;
        println!("wrote {}", k.display());
    }
    print!("{}", crate::report::fstests::summary_lines(&written.report));
    Ok(exit::PASS)
}

/// `powercut report merge OUT DIR...`: the merged run directory, its reports and the
/// campaign's summary; the campaign's exit code for what the shards found together.
fn report_merge(args: &MergeArgs) -> Result<i32, Error> {
    let merged = match merge(&args.out, &args.dirs) {
        Ok(m) => m,
        Err(e) if e.is_bad_input() => return Err(Error::Usage(format!("report merge: {e}"))),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("merging into {}", args.out.display()))
                .map_err(Error::from)
        }
    };
    for (from, to) in &merged.renamed {
        println!("  {from} (another shard's directory of the same bucket) is {to}");
    }
    let written = write_reports(&args.out, args.junit.as_deref())
        .with_context(|| format!("writing the reports of {}", args.out.display()))?;
    let r = &written.report;
    let shards: Vec<String> = merged
        .runs
        .iter()
        .map(|m| {
            m.shard
                .map_or_else(|| m.dir.clone(), |s| format!("{s} ({})", m.dir))
        })
        .collect();
    println!(
        "merged {} run directories: {}",
        shards.len(),
        shards.join(", ")
    );
    println!(
        "{}",
        crate::ui::summary_table(&r.totals, &r.accelerator, &r.start, &args.out)
    );
    println!("  report: {}", written.html.display());
    if let Some(j) = &written.junit {
        println!("  junit: {}", j.display());
    }
    if !merged.missing.is_empty() {
        let missing: Vec<String> = merged.missing.iter().map(ToString::to_string).collect();
        eprintln!(
            "warning: shard(s) {} of the split are missing: their items are not in this report",
            missing.join(", ")
        );
    }
    if let Some(s) = &r.stopped {
        eprintln!("warning: not every shard finished: {s}");
    }
    print!("{}", crate::report::fstests::summary_lines(r));
    Ok(if r.totals.failures > 0 {
        exit::FAILURE
    } else if r.totals.infra > 0 || !merged.missing.is_empty() || r.stopped.is_some() {
        exit::INFRA
    } else {
        exit::PASS
    })
}
