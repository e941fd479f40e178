//! `powercut campaign`: the flags parsed into a [`Request`], the campaign run
//! ([`crate::campaign::run`]), its summary printed and its exit code returned.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::campaign::{Finished, Request};
use crate::config::overrides::Overrides;
use crate::config::shard::Shard;
use crate::error::Error;
use crate::records::CrashModel;
use crate::ui::{verdict_table, Progress};
use workloads::oracle::Verdict;

/// `campaign` options (override the config file).
#[derive(Debug, Clone, clap::Args)]
pub struct CampaignArgs {
    /// Config file (default: ci/smoke.yaml of this checkout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default: `<output>/<timestamp>` from the config).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Seeds, "A..B" (B exclusive), "A..=B" or "1,2,7"; "" for none.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Crash-test this workload file, or every *.yaml of this directory (repeatable;
    /// replaces the config's `workloads`). Without --seeds, only the workloads run.
    #[arg(long = "workload", value_name = "PATH")]
    pub workloads: Vec<PathBuf>,
    /// Load this mutant (m1..m9) in workload VMs.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Your own module, loaded in every workload VM after the mount: `PATH [NAME=VALUE...]`
    /// (one quoted argument, like an insmod command line). PATH is a .ko built for the guest
    /// kernel, or a source directory with a Kbuild file (built against the guest kernel's
    /// headers). Repeatable; added to the config's `modules:`.
    #[arg(long = "module", value_name = "PATH [ARGS]")]
    pub user_modules: Vec<String>,
    /// Crash model.
    #[arg(long, value_enum)]
    pub crash_model: Option<CrashModel>,
    /// File system under test (replaces the config's `filesystem`).
    #[arg(long, value_enum)]
    pub filesystem: Option<crate::image::Filesystem>,
    /// Size of the emulated NVDIMM in MiB (replaces the config's `pmem_mib`; xfs needs 512).
    #[arg(long, value_name = "MIB")]
    pub pmem_mib: Option<u64>,
    /// Generator profile of the seeds: smoke, default, deep (replaces the config's `profile`).
    #[arg(long)]
    pub profile: Option<String>,
    /// Workload VMs at once (0 = fit the machine, `auto` = from the measured balance of
    /// runs and checks).
    #[arg(long, value_name = "N|auto")]
    pub workers: Option<crate::config::VmCount>,
    /// Checker VMs (0 = fit the machine, `auto` = from the measured balance).
    #[arg(long, value_name = "N|auto")]
    pub checkers: Option<crate::config::VmCount>,
    /// Keep drawing seeds until this much time has passed (`8h`, `30m`).
    #[arg(long)]
    pub time_budget: Option<String>,
    /// Accelerator.
    #[arg(long, value_enum)]
    pub accel: Option<crate::vm::AccelChoice>,
    /// Run only shard K of N of the campaign's items (1 ≤ K ≤ N ≤ 1000); merge the shards'
    /// run directories with `powercut report merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Coverage-guided generation: after the listed seeds, derive workloads from a corpus
    /// of those that reached new blocks of fs/dax.c, the ext4/xfs DAX files and the mm DAX
    /// fault path (needs coverage and TCG, and --time-budget or --guided-items).
    #[arg(long)]
    pub guided: bool,
    /// The corpus directory of --guided, kept across campaigns (default: <run dir>/corpus).
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// With --guided: draw at most N items after the listed seeds.
    #[arg(long, value_name = "N")]
    pub guided_items: Option<u64>,
    /// Boot every workload VM instead of restoring the saved booted one.
    #[arg(long)]
    pub cold_boot: bool,
    /// Check every crash image, also one byte-identical to an image already checked (the
    /// path before dedupe, for side-by-side measurement).
    #[arg(long)]
    pub no_dedupe: bool,
    /// Continue the campaign in --output, skipping seeds the journal has finished.
    #[arg(long)]
    pub resume: bool,
    /// Also write JUnit XML (one testcase per seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Diff coverage of a patch: list the functions `git diff REV` of the kernel's source
    /// tree changes (--kernel TREE, or --source-tree) and how far the campaign reached each.
    #[arg(long, value_name = "REV")]
    pub coverage_diff: Option<String>,
    /// The kernel's source tree (a git tree for --coverage-diff; coverage is grouped by its
    /// files). Default: the --kernel build tree.
    #[arg(long, value_name = "DIR")]
    pub source_tree: Option<PathBuf>,
    /// The kernel (overrides the config's `kernel`).
    #[command(flatten)]
    pub kernel: super::KernelArgs,
}

impl CampaignArgs {
    /// The request these flags make.
    fn request(&self, debug: bool) -> Result<Request, Error> {
        let mut modules = Vec::new();
        for m in &self.user_modules {
            let spec = m
                .parse::<crate::image::user_modules::ModuleSpec>()
                .map_err(|e| Error::Usage(format!("--module `{m}`: {e}")))?;
            modules.push(spec);
        }
        let overrides = Overrides {
            seeds: self.seeds.clone(),
            workloads: self.workloads.clone(),
            mutant: self.mutant.as_deref().map(super::mutant_arg),
            modules,
            crash_model: self.crash_model,
            filesystem: self.filesystem,
            pmem_mib: self.pmem_mib,
            profile: self.profile.clone(),
            workers: self.workers,
            checkers: self.checkers,
            time_budget: self.time_budget.clone(),
            accel: self.accel,
            shard: self.shard,
            kernel: self.kernel.spec()?,
            guided: self.guided,
            corpus: self.corpus.clone(),
            guided_items: self.guided_items,
            coverage_diff: self.coverage_diff.clone(),
            source_tree: self.source_tree.clone(),
        };
        Ok(Request {
            config: self.config.clone(),
            overrides,
            output: self.output.clone(),
            resume: self.resume,
            cold_boot: self.cold_boot,
            no_dedupe: self.no_dedupe,
            junit: self.junit.clone(),
            debug,
        })
    }
}

/// `powercut campaign`: returns the exit code.
pub fn campaign(args: &CampaignArgs, debug: bool) -> Result<i32, Error> {
    let req = args.request(debug)?;
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let finished = crate::campaign::run(&req, &mut progress)?;
    print_summary(&finished);
    Ok(finished.exit_code())
}

/// The summary of a finished campaign: totals, the kernel × verdict table of a matrix,
/// where the reports are, and the judgement of `expect:`.
fn print_summary(f: &Finished) {
    println!(
        "{}",
        crate::ui::summary_table(&f.totals, &f.accel, &f.start, &f.dir)
    );
    let report = &f.reports.report;
    print!("{}", kernel_log_lines(&report.kernel_log));
    if !report.kernels.is_empty() {
        let rows: Vec<_> = report
            .kernels
            .iter()
            .map(|k| {
                let by = k
                    .report
                    .by_verdict
                    .iter()
                    .filter_map(|(v, n)| Some((v.parse::<Verdict>().ok()?, *n)))
                    .collect();
                (k.name.clone(), by, k.report.totals.clone())
            })
            .collect();
        println!("{}", verdict_table(&rows));
    }
    if report.phases.checks > 0 {
        for line in report.phases.summary_lines() {
            println!("  time: {line}");
        }
    }
    for d in &report.coverage_diff {
        println!("  coverage diff ({}): {}", d.kernel, d.line);
    }
    println!("  report: {}", f.reports.html.display());
    if let Some(j) = &f.reports.junit {
        println!("  junit: {}", j.display());
    }
    if !f.judgements.is_empty() {
        println!("\n  expectations (`expect:` of the config)");
        for j in &f.judgements {
            println!("  {j}");
        }
    }
    print!("{}", crate::report::fstests::summary_lines(report));
}

/// Kernel complaints in the guest consoles (warnings, lockdep, KASAN, BUGs), for the end of
/// a campaign: nothing when there are none, else a count and the first few.
fn kernel_log_lines(log: &crate::runs::kernel_log::KernelLog) -> String {
    if log.total == 0 {
        return String::new();
    }
    let mut s = format!(
        "  KERNEL {} complaint(s) in the guest console logs (warnings, lockdep, KASAN, BUG; no verdict changed); first:\n",
        log.total
    );
    for c in log.complaints.iter().take(5) {
        s.push_str(&format!("    {}:{}: {}\n", c.console, c.line, c.text));
    }
    s
}
