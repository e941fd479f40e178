//! `minimize` with real runs: the "does it still fail?" test of [`super::minimize`] as a
//! workload VM run plus a check (a run counts as reproducing when a finding has the failure's
//! signature), and the outputs written into the failure directory: `minimal.yaml`,
//! `minimize.json`, `repro.c`, `repro.sh`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use workloads::oracle::{expectation, FsRules};
use workloads::{Op, OpOutcome, Workload};

use super::creproducer::{write_reproducer, CReproInput, CacheNote};
use super::minimize::{case_key, minimize, Case, Minimized};
use super::session::Session;
use super::TriageError;
use crate::rundir::failure::FailureDir;
use crate::trial::plan::single_point_plan;

/// After this many infrastructure errors in a row, minimization stops.
pub const MAX_INFRA_STREAK: usize = 3;

/// `minimize.json` schema version.
pub const MINIMIZE_SCHEMA: u32 = 1;

/// What `minimize` did, as written to `minimize.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MinimizeReport {
    /// Schema version ([`MINIMIZE_SCHEMA`]).
    pub schema: u32,
    /// The failure title.
    pub title: String,
    /// The signature a run had to show to count as reproducing.
    pub signature: String,
    /// Did the failure reproduce at all?
    pub reproduced: bool,
    /// Ops of `workload.yaml`.
    pub ops_before: usize,
    /// Ops after dropping those past the crash point.
    pub ops_truncated: usize,
    /// Ops of `minimal.yaml`.
    pub ops_after: usize,
    /// Crash point in `workload.yaml`.
    pub crash_point_before: String,
    /// Crash point in `minimal.yaml`.
    pub crash_point_after: String,
    /// The same, typed.
    pub crash_after: crate::records::finding::CrashLabel,
    /// VM runs used.
    pub runs_used: usize,
    /// The run budget.
    pub max_runs: usize,
    /// Candidates answered from the cache.
    pub cache_hits: usize,
    /// Candidates skipped as invalid workloads (not run).
    pub invalid_skipped: usize,
    /// The budget ran out before minimization finished.
    pub budget_exhausted: bool,
    /// Runs lost to infrastructure errors (counted as not reproducing).
    pub infra_errors: usize,
    /// Total wall time of the runs, seconds.
    pub secs_total: f64,
    /// Mean wall time of one run (workload VM + check), seconds.
    pub secs_per_run: f64,
}

/// The result of [`minimize_failure`].
pub struct MinimizeOutcome {
    /// The minimizer's result.
    pub minimized: Minimized,
    /// The report.
    pub report: MinimizeReport,
    /// Op outcomes of the run of the minimal case (for the reproducer's expectation).
    pub outcomes: Option<Vec<Option<OpOutcome>>>,
}

/// Minimize the failure of `fd` with at most `max_runs` VM runs (`delay_us` for an inside-op
/// crash point). `progress` gets one line per run.
pub fn minimize_failure(
    session: &mut Session,
    fd: &FailureDir,
    max_runs: usize,
    delay_us: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<MinimizeOutcome, TriageError> {
    let target = fd.record.signature.clone();
    let input = Case {
        workload: fd.workload.clone(),
        point: fd.record.crash.point,
    };
    let mut outcomes: HashMap<String, Vec<Option<OpOutcome>>> = HashMap::new();
    let mut streak = 0usize;
    let mut infra = 0usize;
    let mut elapsed = Duration::ZERO;
    let mut timed = 0usize;
    // The minimizer and the test both print; they never run at the same time.
    let progress = RefCell::new(progress);
    let say = |l: &str| (progress.borrow_mut())(l);
    let mut test = |case: &Case| -> Result<Option<bool>, TriageError> {
        let mut plan = single_point_plan(case.point, delay_us);
        // Cache model: every cut at the (renumbered) point, the recorded variant.
        plan.cache = fd.record.cache_selector(case.point, false);
        match session.attempt(&case.workload, &plan) {
            Ok(a) => {
                streak = 0;
                elapsed += a.elapsed;
                timed += 1;
                let hit = a
                    .checks
                    .iter()
                    .flat_map(|c| c.failures.iter())
                    .any(|f| f.signature == target);
                let titles = a.titles();
                say(&format!(
                    "    {:.1} s; {}",
                    a.elapsed.as_secs_f64(),
                    titles.first().map_or("check passed", String::as_str)
                ));
                if hit {
                    outcomes.insert(case_key(case), a.outcomes);
                }
                Ok(Some(hit))
            }
            Err(e) => {
                streak += 1;
                infra += 1;
                let line = e.to_string().lines().next().unwrap_or("").to_owned();
                if streak >= MAX_INFRA_STREAK {
                    return Err(TriageError::Infra {
                        count: streak,
                        last: line,
                    });
                }
                say(&format!("    infrastructure error: {line}"));
                Ok(None)
            }
        }
    };
    let minimized = minimize(&input, max_runs, &mut test, &mut |l| say(l))?;
    let outcomes = outcomes.remove(&case_key(&minimized.case));
    let report = MinimizeReport {
        schema: MINIMIZE_SCHEMA,
        title: fd.record.title.clone(),
        signature: target.to_string(),
        reproduced: minimized.reproduced,
        ops_before: minimized.ops_before,
        ops_truncated: minimized.ops_truncated,
        ops_after: minimized.ops_after,
        crash_point_before: fd.record.crash.to_string(),
        crash_point_after: minimized.case.label(),
        crash_after: crate::records::finding::CrashLabel::in_workload(
            minimized.case.point,
            &minimized.case.workload,
        ),
        runs_used: minimized.stats.runs,
        max_runs,
        cache_hits: minimized.stats.cache_hits,
        invalid_skipped: minimized.stats.invalid,
        budget_exhausted: minimized.stats.exhausted,
        infra_errors: infra,
        secs_total: elapsed.as_secs_f64(),
        secs_per_run: if timed > 0 {
            elapsed.as_secs_f64() / timed as f64
        } else {
            0.0
        },
    };
    Ok(MinimizeOutcome {
        minimized,
        report,
        outcomes,
    })
}

/// The name of the minimal workload (`<workload>-min`), also its spec file's stem.
pub fn minimal_name(fd: &FailureDir) -> String {
    format!("{}-min", fd.workload.name)
}

/// The one command that adds a failure directory's `minimal.yaml` to the regression specs in
/// `specs` (as `<name>.yaml`, the file stem matching the workload name; `cp -n` never
/// overwrites a spec).
pub fn add_spec_command(minimal: &std::path::Path, name: &str, specs: &std::path::Path) -> String {
    let q = |p: &std::path::Path| crate::host::shell_quote(&p.to_string_lossy());
    format!(
        "cp -n {} {}",
        q(minimal),
        q(&specs.join(format!("{name}.yaml")))
    )
}

/// The minimal workload's YAML, with a comment saying where it came from.
pub fn minimal_yaml(fd: &FailureDir, m: &Minimized) -> Result<String, TriageError> {
    let mut w: Workload = m.case.workload.clone();
    w.name = minimal_name(fd);
    let yaml = serde_yaml::to_string(&w)
        .map_err(|e| TriageError::io(&fd.dir.join("minimal.yaml"), std::io::Error::other(e)))?;
    Ok(format!(
        "# Minimized by `powercut minimize` from workload.yaml ({} → {} ops).\n\
         # Failure: {}\n# Crash point: {}\n{}",
        m.ops_before,
        m.ops_after,
        fd.record.title,
        m.case.label(),
        yaml
    ))
}

/// Outcomes as the agent reports them when every op succeeds (used when the minimal case's
/// own run outcomes are not known).
fn assumed_outcomes(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| {
            Some(match op {
                Op::Pwrite { len, .. } => OpOutcome::ok(i64::try_from(*len).unwrap_or(i64::MAX)),
                _ => OpOutcome::ok(0),
            })
        })
        .collect()
}

/// Where the reproducer came from: file system, mutant and kernel of the runs.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// File system name.
    pub fs: &'a str,
    /// Mutant, if any.
    pub mutant: Option<&'a str>,
    /// Guest kernel release.
    pub kernel: &'a str,
}

/// Write `minimize.json`, and when the failure reproduced `minimal.yaml`, `repro.c` and
/// `repro.sh`, into the failure directory.
pub fn write_outputs(
    fd: &FailureDir,
    out: &MinimizeOutcome,
    ctx: &RunContext<'_>,
) -> Result<(), TriageError> {
    let path = fd.dir.join("minimize.json");
    let json = serde_json::to_string_pretty(&out.report)
        .map_err(|e| TriageError::io(&path, std::io::Error::other(e)))?;
    super::write_file(&path, &json)?;
    if !out.minimized.reproduced {
        return Ok(());
    }
    let m = &out.minimized;
    super::write_file(&fd.dir.join("minimal.yaml"), &minimal_yaml(fd, m)?)?;
    let outcomes = out
        .outcomes
        .clone()
        .unwrap_or_else(|| assumed_outcomes(&m.case.workload));
    let exp = expectation(
        &m.case.workload,
        &outcomes,
        m.case.point,
        &FsRules::for_fs(&fd.record.filesystem),
    );
    let note = cache_note(fd, &m.case);
    write_reproducer(
        &fd.dir,
        &CReproInput {
            title: &fd.record.title,
            workload: &m.case.workload,
            point: m.case.point,
            outcomes: &outcomes,
            expectation: &exp,
            fs: ctx.fs,
            mutant: ctx.mutant,
            kernel: ctx.kernel,
            cache: note.as_ref(),
        },
    )
}

/// A cache-model failure's note for the reproducer: where the cut falls in the minimal
/// workload, and what the original crash state lost.
fn cache_note(fd: &FailureDir, case: &Case) -> Option<CacheNote> {
    let cut = fd.record.cache_cut?;
    let label = crate::records::finding::CrashLabel::in_workload(case.point, &case.workload);
    Some(CacheNote {
        cut: CacheNote::cut_words(case.point, &label.kind, cut.at),
        lost: fd
            .lost
            .as_ref()
            .map(|l| l.sentences.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_add_spec_command_is_one_quoted_copy_named_after_the_workload() {
        let cmd = add_spec_command(
            std::path::Path::new("/runs/a b/failures/x/minimal.yaml"),
            "seed-3-min",
            std::path::Path::new("/src/workloads/specs"),
        );

        assert_eq!(
            cmd,
            "cp -n '/runs/a b/failures/x/minimal.yaml' /src/workloads/specs/seed-3-min.yaml"
        );
    }
}
