//! `powercut coverage RUN_DIR... [--functions] [--json] [--diff REV --tree DIR]`: the kernel
//! coverage of one or more run directories (shards, nights, a kernel matrix) merged per
//! kernel, as the tables the HTML report's coverage section shows, or as the `report.json`
//! section's JSON; with `--diff`, how far they reached each function a patch changes (the
//! patch of a campaign's `--coverage-diff` when no `--diff` is given).

use std::path::PathBuf;

use super::exit;
use crate::coverage::diff::diff_coverage;
use crate::error::Error;
use crate::runs::coverage::{read_coverage, read_diff_coverage};

/// `coverage` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CoverageArgs {
    /// Run directories; their coverage is merged per kernel.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Also list every reached function with its blocks reached / blocks.
    #[arg(long)]
    pub functions: bool,
    /// Print the summaries as JSON (the `coverage` section of `report.json`; with a diff,
    /// `{"coverage": [...], "coverage_diff": [...]}`).
    #[arg(long)]
    pub json: bool,
    /// Diff coverage: the functions `git diff REV` of --tree changes, and how far the runs
    /// reached each (functions outside the reported subsystems are mapped only by a
    /// campaign run with --coverage-diff).
    #[arg(long, value_name = "REV", requires = "tree")]
    pub diff: Option<String>,
    /// The kernel's git tree for --diff.
    #[arg(long, value_name = "DIR", requires = "diff")]
    pub tree: Option<PathBuf>,
}

/// `powercut coverage`: exit 0 with the tables printed, 2 if a directory is not a run
/// directory or none holds coverage.
pub fn coverage(args: &CoverageArgs) -> Result<i32, Error> {
    for d in &args.run_dirs {
        if !d.join(crate::rundir::JOURNAL).is_file() {
            return Err(Error::Usage(format!(
                "{} is not a run directory (no {})",
                d.display(),
                crate::rundir::JOURNAL
            )));
        }
    }
    let dirs: Vec<&std::path::Path> = args.run_dirs.iter().map(PathBuf::as_path).collect();
    let (summaries, notes) = read_coverage(&dirs);
    for n in &notes {
        eprintln!("note: {n}");
    }
    if summaries.is_empty() {
        return Err(Error::Usage(
            "no coverage in these run directories (no coverage-map*.json: KVM, `coverage: false`, \
             or a campaign from before coverage)"
                .into(),
        ));
    }
    let diffs = match (&args.diff, &args.tree) {
        (Some(rev), Some(tree)) => {
            let patch = crate::coverage::git_diff::patch_functions(tree, rev)
                .map_err(|e| Error::Usage(e.to_string()))?;
            summaries.iter().map(|s| diff_coverage(&patch, s)).collect()
        }
        _ => {
            let (d, notes) = read_diff_coverage(&args.run_dirs[0], &summaries);
            for n in &notes {
                eprintln!("note: {n}");
            }
            d
        }
    };
    if args.json {
        let value = if diffs.is_empty() {
            serde_json::to_value(&summaries)
        } else {
            serde_json::to_value(serde_json::json!({"coverage": summaries, "coverage_diff": diffs}))
        };
        let text = value
            .and_then(|v| serde_json::to_string_pretty(&v))
            .map_err(|e| Error::Infra(anyhow::Error::new(e)))?;
        println!("{text}");
    } else {
        for s in &summaries {
            print!("{}", crate::coverage::summary::render(s, args.functions));
        }
        for d in &diffs {
            print!("\n{}", crate::coverage::diff::render(d));
        }
    }
    Ok(exit::PASS)
}
