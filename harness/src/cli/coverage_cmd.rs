//! `powercut coverage RUN_DIR... [--functions] [--json]`: the kernel coverage of one or more
//! run directories (shards, nights, a kernel matrix) merged per kernel, as the tables the
//! HTML report's coverage section shows, or as the `report.json` section's JSON.

use std::path::PathBuf;

use super::exit;
use crate::error::Error;
use crate::runs::coverage::read_coverage;

/// `coverage` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CoverageArgs {
    /// Run directories; their coverage is merged per kernel.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Also list every reached function with its blocks reached / blocks.
    #[arg(long)]
    pub functions: bool,
    /// Print the summaries as JSON (the `coverage` section of `report.json`).
    #[arg(long)]
    pub json: bool,
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
    if args.json {
        let text = serde_json::to_string_pretty(&summaries)
            .map_err(|e| Error::Infra(anyhow::Error::new(e)))?;
        println!("{text}");
    } else {
        for s in &summaries {
            print!("{}", crate::coverage::summary::render(s, args.functions));
        }
    }
    Ok(exit::PASS)
}
