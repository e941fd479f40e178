//! `powercut minimize <failure-dir>`: shrink the failure's workload with VM runs and write
//! `minimal.yaml`, `minimize.json` and the standalone reproducer into the failure directory.

use std::path::PathBuf;

use super::exit;
use super::repro_cmd::{load_failure_dir, prepare, TriageOptions};
use crate::triage::driver::{minimize_failure, write_outputs, RunContext};
use crate::triage::session::Session;
use crate::trial::finding::point_parts;
use crate::trial::plan::inside_delay_us;
use anyhow::Context;

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
pub fn minimize(args: &MinimizeArgs, debug: bool) -> anyhow::Result<i32> {
    if args.max_runs == 0 {
        eprintln!("error: --max-runs must be at least 1");
        return Ok(exit::USAGE);
    }
    let fd = match load_failure_dir(&args.failure_dir) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let p = match prepare(&args.env, Some(&fd), debug)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    eprintln!(
        "minimize: {}\n  signature {}; workload {} ops, crash {}, mutant {}, at most {} runs",
        fd.record.title,
        fd.record.signature,
        fd.workload.ops.len(),
        fd.record.crash,
        p.mutant.as_deref().unwrap_or("none"),
        args.max_runs
    );
    let (k, inside) = point_parts(fd.record.crash.point);
    let delay = if inside {
        inside_delay_us(&fd.workload, &p.cfg.crash_points, fd.record.seed, k)
    } else {
        0
    };
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
    let r = &out.report;
    if !r.reproduced {
        println!(
            "not reproduced (flaky): nothing to minimize ({} runs); see {}",
            r.runs_used,
            fd.dir.join("minimize.json").display()
        );
        return Ok(exit::PASS);
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
            &crate::triage::driver::minimal_name(&fd),
            &crate::cache::workspace_root().join("workloads/specs"),
        )
    );
    Ok(exit::FAILURE)
}
