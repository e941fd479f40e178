//! `powercut minimize <failure-dir>`: shrink the failure's workload with VM runs and write
//! `minimal.yaml`, `minimize.json` and the standalone reproducer into the failure directory.

use std::path::PathBuf;

use anyhow::Context;

use super::exit;
use super::repro_cmd::TriageOptions;
use crate::error::Error;
use crate::prepare::triage::{load_failure_dir, prepare};
use crate::triage::driver::{minimize_failure, write_outputs, MinimizeOutcome, RunContext};
use crate::triage::session::Session;

/// `minimize` options.
#[derive(Debug, Clone, clap::Args)]
pub struct MinimizeArgs {
    /// Failure directory (`<run>/failures/<slug>/`).
    pub failure_dir: PathBuf,
    /// Most VM runs to spend (each is a workload VM run plus a check, ≈10–15 s under TCG).
    #[arg(long, default_value_t = 40)]
    pub max_runs: usize,
    /// Environment.
    #[command(flatten)]
    pub env: TriageOptions,
}

/// `powercut minimize`: exit 1 when the failure reproduced and a minimal reproducer was
/// written (the bug is real, as for `repro`), 0 when it did not reproduce (flaky; only
/// minimize.json is written), 69 on repeated infrastructure errors.
pub fn minimize(args: &MinimizeArgs, debug: bool) -> Result<i32, Error> {
    if args.max_runs == 0 {
        return Err(Error::Usage("--max-runs must be at least 1".into()));
    }
    let req = args.env.request(debug)?;
    let fd = load_failure_dir(&args.failure_dir)?;
    let p = prepare(&req, Some(&fd))?;
    eprintln!(
        "minimize: {}\n  signature {}; workload {} ops, crash {}, mutant {}, at most {} runs",
        fd.record.title,
        fd.record.signature,
        fd.workload.ops.len(),
        fd.record.crash,
        p.mutant.as_deref().unwrap_or("none"),
        args.max_runs
    );
    let delay = p.inside_delay(&fd);
    let mut session = Session::new(p.env.clone());
    let result = minimize_failure(&mut session, &fd, args.max_runs, delay, &mut |l| {
        eprintln!("{l}");
    });
    session.stop();
    let out = result.context("minimizing")?;
    write_outputs(
        &fd,
        &out,
        &RunContext {
            fs: p.fs.name(),
            mutant: p.mutant.as_deref(),
            kernel: &p.kernel,
        },
    )
    .with_context(|| format!("writing results into {}", fd.dir.display()))?;
    Ok(print_result(&fd, &out))
}

/// Say what minimizing gave; the exit code (1: reproduced and minimized, 0: flaky).
fn print_result(fd: &crate::rundir::failure::FailureDir, out: &MinimizeOutcome) -> i32 {
    let r = &out.report;
    if !r.reproduced {
        println!(
            "not reproduced (flaky): nothing to minimize ({} runs); see {}",
            r.runs_used,
            fd.dir.join("minimize.json").display()
        );
        return exit::PASS;
    }
    println!(
        "minimized: {} → {} ops (crash {} → {}), {} runs of {}{}, {:.1} s per run",
        r.ops_before,
        r.ops_after,
        r.crash_point_before,
        r.crash_point_after,
        r.runs_used,
        r.max_runs,
        if r.budget_exhausted {
            " (budget spent: the result may not be minimal)"
        } else {
            ""
        },
        r.secs_per_run
    );
    println!(
        "wrote {0}/minimal.yaml, minimize.json, repro.c, repro.sh\n\
         standalone reproducer: see the comment at the top of {0}/repro.c",
        fd.dir.display()
    );
    println!(
        "keep it as a regression spec (ci/regression.yaml crash-tests every spec):\n  {}",
        crate::triage::driver::add_spec_command(
            &fd.dir.join("minimal.yaml"),
            &crate::triage::driver::minimal_name(fd),
            &crate::cache_dir::workspace_root().join("workloads/specs"),
        )
    );
    exit::FAILURE
}
