//! The `powercut` binary: parse the command line, set up logging, run, map to exit codes.

use clap::Parser;
use powercut::cli::{
    self, BenchAction, Cli, Command, ImageAction, KernelAction, VmAction, WorkloadAction,
};
use powercut::error::Error;

fn main() {
    let cli = Cli::parse();
    let filter = if cli.debug {
        "powercut=debug"
    } else {
        "powercut=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    // A campaign's coordinator handles SIGINT and SIGTERM itself (an orderly stop).
    if !matches!(cli.command, Command::Campaign(_)) {
        powercut::signals::install();
    }
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> Result<i32, Error> {
    powercut::cli::check_environment().map_err(Error::Usage)?;
    Ok(match &cli.command {
        Command::Image {
            action: ImageAction::Build(args),
        } => cli::image_build(args, cli.debug).map(|()| cli::exit::PASS)?,
        Command::Vm {
            action: VmAction::Smoke(args),
        } => cli::vm_smoke(args, cli.debug).map(|()| cli::exit::PASS)?,
        Command::Vm {
            action: VmAction::Exec(args),
        } => cli::vm_exec(args, cli.debug)?,
        Command::Campaign(args) => cli::campaign(args, cli.debug)?,
        Command::Bench {
            action: BenchAction::Checker { rounds, image },
        } => cli::bench_checker(image, *rounds, cli.debug).map(|()| cli::exit::PASS)?,
        Command::Bench {
            action: BenchAction::Trace(args),
        } => cli::bench_trace(args, cli.debug).map(|()| cli::exit::PASS)?,
        Command::Bench {
            action: BenchAction::Seeds(args),
        } => cli::bench_seeds(args, cli.debug).map(|()| cli::exit::PASS)?,
        Command::Bench {
            action: BenchAction::Coverage(args),
        } => cli::bench_coverage(args, cli.debug)?,
        Command::Run(args) => cli::run_one(args, cli.debug)?,
        Command::Report(args) => cli::report(args)?,
        Command::Coverage(args) => cli::coverage(args)?,
        Command::Repro(args) => cli::repro(args, cli.debug)?,
        Command::Minimize(args) => cli::minimize(args, cli.debug)?,
        Command::Workload {
            action: WorkloadAction::Gen { seed, profile },
        } => cli::workload_gen(*seed, profile)?,
        Command::Workload {
            action: WorkloadAction::Check { file },
        } => cli::workload_check(file)?,
        Command::Workload {
            action:
                WorkloadAction::Mix {
                    profile,
                    seeds,
                    config,
                },
        } => cli::workload_mix(profile, seeds, config.as_deref())?,
        Command::Kernel {
            action: KernelAction::List,
        } => cli::kernel_list().map(|()| cli::exit::PASS)?,
        Command::Kernel {
            action: KernelAction::Kconfig { tree },
        } => cli::kernel_kconfig(tree).map(|()| cli::exit::PASS)?,
    })
}
