//! The command line, the top floor: argument types (clap) and one function per subcommand
//! that parses, calls the use case, prints and returns the outcome's exit code (or a
//! [`crate::error::Error`], whose [`exit_code`](crate::error::Error::exit_code) `main` uses).

mod bench_cmd;
mod bench_coverage;
mod bench_seeds;
mod bench_trace;
mod campaign_cmd;
mod coverage_cmd;
mod image_cmd;
mod kernel_cmd;
mod minimize_cmd;
mod report_cmd;
mod repro_cmd;
mod vm_cmd;
mod workload_cmd;
mod workload_mix;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use bench_cmd::bench_checker;
pub use bench_coverage::{bench_coverage, BenchCoverageArgs};
pub use bench_seeds::{bench_seeds, BenchSeedsArgs};
pub use bench_trace::{bench_trace, BenchTraceArgs};
pub use campaign_cmd::{campaign, CampaignArgs};
pub use coverage_cmd::{coverage, CoverageArgs};
pub use image_cmd::image_build;
pub use kernel_cmd::{kernel_kconfig, kernel_list};
pub use minimize_cmd::{minimize, MinimizeArgs};
pub use report_cmd::{report, ReportArgs};
pub use repro_cmd::{repro, ReproArgs, TriageOptions};
pub use vm_cmd::{vm_exec, vm_smoke};
pub use workload_cmd::{run_one, workload_check, workload_gen, workload_mix, RunArgs};

use crate::image::kernel::KernelSpecError;
use crate::image::{Filesystem, KernelSpec};
use crate::vm::AccelChoice;

/// A `--mutant` argument: `none` (or empty) is the stock kernel.
pub(crate) fn mutant_arg(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "none").then(|| s.to_owned())
}

pub use crate::error::exit;

/// Check the environment variables powercut reads before any command runs
/// (`POWERCUT_BOOT_TIMEOUT`): a bad value is a usage error naming the variable.
pub fn check_environment() -> Result<(), String> {
    crate::vm::boot_timeout().map(|_| ())
}

/// powercut: does every byte fsync promised survive a power cut on DAX?
#[derive(Debug, Parser)]
#[command(name = "powercut", version, about)]
pub struct Cli {
    /// Print the full QEMU command lines and stream guest consoles.
    #[arg(long, global = true)]
    pub debug: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Guest images.
    Image {
        /// What to do.
        #[command(subcommand)]
        action: ImageAction,
    },
    /// VM checks.
    Vm {
        /// What to do.
        #[command(subcommand)]
        action: VmAction,
    },
    /// Run a crash campaign (default config ci/smoke.yaml).
    Campaign(Box<CampaignArgs>),
    /// Run one workload in a VM and compare the live files with the oracle (no crash).
    Run(RunArgs),
    /// Write a run directory's reports again (report.json, report.html, JUnit XML).
    Report(ReportArgs),
    /// Kernel coverage of run directories (merged per kernel): subsystems, functions with
    /// blocks reached / blocks, never-reached functions.
    Coverage(CoverageArgs),
    /// Re-run a failure (its workload and crash point) or a seed; exit 1 if it comes back.
    Repro(ReproArgs),
    /// Shrink a failure's workload; write minimal.yaml and a standalone C reproducer.
    Minimize(MinimizeArgs),
    /// Benchmarks (figures printed, nothing asserted).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        action: BenchAction,
    },
    /// Workload files and the generator.
    Workload {
        /// What to do.
        #[command(subcommand)]
        action: WorkloadAction,
    },
    /// Kernels: the cached ones, and preparing a build tree's config.
    Kernel {
        /// What to do.
        #[command(subcommand)]
        action: KernelAction,
    },
}

/// `kernel` subcommands.
#[derive(Debug, Subcommand)]
pub enum KernelAction {
    /// List the cached kernels: release, where it came from, headers (mutants) yes/no.
    List,
    /// Turn on in a build tree's .config every option powercut needs (through the tree's
    /// scripts/config), then `make olddefconfig`; then build it and pass it to --kernel.
    Kconfig {
        /// The kernel source/build tree (with a .config).
        tree: PathBuf,
    },
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Build the guest image (and the golden pmem images) into the cache.
    Build(ImageArgs),
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchAction {
    /// Crash images checked per minute by one checker VM; snapshot time of the pmem.
    Checker {
        /// Number of checks.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Image options.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Cache crash model cost: plugin slowdown, trace bytes per op, crash states per run
    /// and per minute.
    Trace(BenchTraceArgs),
    /// Seeds per hour and VM-ready time of one seed list run two ways in one invocation:
    /// every image checked against dedupe (`--compare check`), cold boot against restore
    /// (`start`), without kernel coverage against with it (`coverage`).
    Seeds(BenchSeedsArgs),
    /// Random against coverage-guided generation for the same wall time (two campaigns on
    /// the same kernel, file system and crash model): target-subsystem blocks reached by
    /// each and their ratio.
    Coverage(BenchCoverageArgs),
}

/// `workload` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkloadAction {
    /// Print the workload the generator makes for a seed, as YAML.
    Gen {
        /// Seed.
        #[arg(long)]
        seed: u64,
        /// Profile: smoke, default, deep.
        #[arg(long, default_value = "default")]
        profile: String,
    },
    /// Validate a workload YAML file.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Per op kind: how often the generator makes it and how many crash points the
    /// campaign puts right after it (and inside it).
    Mix {
        /// Profile: smoke, default, deep.
        #[arg(long, default_value = "default")]
        profile: String,
        /// Seeds: a count N (seeds 1 to N) or a list (`1..5`, `1..=100`, `1,2,7`).
        #[arg(long, default_value = "100")]
        seeds: String,
        /// Take the crash-point settings (`crash_points:`) from this campaign config.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `vm` subcommands.
#[derive(Debug, Subcommand)]
pub enum VmAction {
    /// Boot the image, check the DAX mount over SSH, run the agent, shut down.
    Smoke(ImageArgs),
    /// Boot the image on a fresh golden pmem, mount it `-o dax` on /mnt, copy files in, run
    /// one shell command as root (debugfs is mounted: ftrace works), print its output, shut
    /// down. Exits with the command's status.
    Exec(VmExecArgs),
}

/// `vm exec` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct VmExecArgs {
    /// Image options (the first --fs is mounted on /mnt).
    #[command(flatten)]
    pub image: ImageArgs,
    /// Copy this host file into the guest's /root/ (same name, executable); repeatable.
    #[arg(long = "put", value_name = "FILE")]
    pub put: Vec<PathBuf>,
    /// Deadline of the command, seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,
    /// The command, run by the guest's `sh -c` in /root after the mount.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--kernel SPEC` and `--modules DIR`: the kernel under test.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KernelArgs {
    /// The kernel to test: a Debian .deb (classic, or the split linux-binary +
    /// linux-modules packages: repeat --kernel or separate them with commas), a directory of
    /// .deb files, a kernel build tree, a bzImage (with --modules), or the release of a
    /// kernel `ci/setup --kernels` cached (`powercut kernel list`). Default: the newest
    /// linux-image .deb in the cache's kernel/ directory. `--kernel-deb` is an alias.
    #[arg(long = "kernel", alias = "kernel-deb", value_name = "SPEC")]
    pub kernel: Vec<String>,
    /// The installed modules of a --kernel bzImage or build tree: lib/modules/<release>,
    /// or the INSTALL_MOD_PATH holding it. Without it, a build tree's modules are installed
    /// into the cache with `make modules_install`.
    #[arg(long = "modules", value_name = "DIR")]
    pub modules: Option<PathBuf>,
}

impl KernelArgs {
    /// The spec the flags give, if any.
    pub fn spec(&self) -> Result<Option<KernelSpec>, KernelSpecError> {
        let spec = match (self.kernel.is_empty(), &self.modules) {
            (true, None) => return Ok(None),
            (true, Some(dir)) => {
                return Err(KernelSpecError {
                    spec: format!("--modules {}", dir.display()),
                    why: "--modules needs --kernel (a bzImage or a build tree)".into(),
                })
            }
            (false, _) => KernelSpec::parse(&self.kernel.join(","))?,
        };
        match &self.modules {
            Some(dir) => spec.with_modules(dir.clone()).map(Some),
            None => Ok(Some(spec)),
        }
    }
}

/// Options shared by commands that need a guest image.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// The kernel.
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Accelerator.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// File systems for golden pmem images.
    #[arg(long = "fs", value_enum, default_values = ["ext4"])]
    pub filesystems: Vec<Filesystem>,
    /// pmem size in MiB: even, 16 to 16384.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=16_384))]
    pub pmem_mib: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_flags_make_one_spec() {
        let args = KernelArgs {
            kernel: vec!["/k/a.deb".into(), "/k/b.deb".into()],
            modules: None,
        };
        let modules_alone = KernelArgs {
            kernel: Vec::new(),
            modules: Some("/m".into()),
        };

        let spec = args.spec().expect("parses").expect("given");
        let err = modules_alone.spec().expect_err("needs --kernel");

        assert_eq!(spec.to_string(), "/k/a.deb,/k/b.deb");
        assert!(
            err.to_string().contains("--modules needs --kernel"),
            "{err}"
        );
        assert_eq!(KernelArgs::default().spec(), Ok(None));
    }
}
