//! One workload run under the cache crash model: boot the workload VM (TCG) with the
//! tracing plugin, run the workload with op markers and no barriers, quit QEMU so the plugin
//! finishes its trace, check the trace against the final pmem file, then build crash states
//! ([`crate::cache_model`]) and write them as crash images the campaign checks like
//! snapshot images. Each image gets a `*.lost-lines.txt` and `*.lost-lines.json` beside it
//! naming the cache lines the state lost, the file bytes they hold, the code that stored them
//! and the missing flush or fence ([`super::cache_lost`]; copied into the failure directory
//! on a failure). A triage run builds only the states its plan's [`CutSelector`] names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use workloads::oracle::{file_names, Observed};
use workloads::protocol::{AgentMsg, HostMsg};
use workloads::Workload;

use super::cache_env::CacheEnv;
use super::cache_lost::{self, GuestFacts};
use super::plan::CrashPlan;
use super::snapshot::{deadline, prepare_workload_vm, read_live};
use super::start::{start_workload_vm, WorkVm};
use super::{CrashImage, Driven, RunResult, TrialSetup, VmFigures};
use crate::cache_model::{
    build_selected, build_states, plan_cuts, BuildSummary, CrashState, CutSelector, LineData,
    StateBounds, Trace,
};
use crate::image::golden::copy_pmem;
use crate::records::CacheModelConfig;
use crate::vm::agent::{file_extents, next_msg, GUEST_DIR};
use crate::vm::{Accel, Vm, VmError};

/// Summary of a traced run (also written as `cache-run.json` in the seed directory).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceSummary {
    /// Trace file size.
    pub trace_bytes: usize,
    /// The plugin's statistics.
    pub plugin: serde_json::Value,
    /// Fences in op context (cut candidates).
    pub candidates: usize,
    /// Cuts planned.
    pub cuts: usize,
    /// Crash states written.
    pub states: usize,
    /// Duplicates dropped.
    pub duplicates: usize,
    /// (cut, variant) pairs dropped by `max_states_per_run`.
    pub over_bound: usize,
    /// Lines the trace touched.
    pub lines_touched: usize,
    /// Seconds spent building and writing the states.
    pub build_secs: f64,
}

/// Path of the lost-lines report beside a crash image.
pub fn lost_lines_path(image: &Path) -> PathBuf {
    image.with_extension("lost-lines.txt")
}

fn guest(msg: String) -> VmError {
    VmError::Guest(msg)
}

/// Run `workload` traced; `cache` is the campaign's [`CacheEnv`]; `plan.cache`, when set,
/// selects the crash states to build (else every planned cut's).
pub fn run_workload(
    setup: &TrialSetup,
    cache: &CacheEnv,
    cfg: &CacheModelConfig,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    name: &str,
) -> Result<RunResult, VmError> {
    if setup.accel != Accel::Tcg {
        return Err(guest(
            "the cache crash model needs TCG (the tracing plugin does not run under KVM)".into(),
        ));
    }
    let trace_path = dir.join("trace.bin");
    let mut arg = cache.plugin_arg(&trace_path);
    if setup.coverage.is_some() {
        arg.push_str(&super::coverage_run::CoverageSetup::plugin_suffix(dir));
    }
    let plugin = vec!["-plugin".into(), arg];
    let WorkVm {
        mut vm,
        pmem: work,
        base,
        started,
    } = start_workload_vm(setup, dir, name, plugin)?;
    let pmem = work.path().to_owned();
    let res = drive(&mut vm, setup, cache, workload);
    let figures = VmFigures::of(&vm, started);
    let images_started = Instant::now();
    let quit = vm.quit(QUIT_TIMEOUT);
    let built = res.and_then(|(driven, facts)| {
        quit?;
        let coverage = setup
            .coverage
            .as_ref()
            .and_then(|c| c.finish(dir, facts.kallsyms.as_deref()));
        let images = build_images(
            &base,
            cfg,
            &Traced {
                workload,
                selector: plan.cache.as_ref(),
                live: &driven.live,
                facts,
            },
            dir,
            &pmem,
            &trace_path,
        )?;
        Ok((driven, images, coverage))
    });
    drop(work);
    // The trace stays when something went wrong (it explains what the plugin saw).
    let (driven, images, coverage) = built?;
    let images_took = images_started.elapsed();
    // A trace that is already gone changes nothing.
    std::fs::remove_file(&trace_path).ok();
    let mut result = RunResult::of(driven, images, figures);
    result.phases.images_us = crate::records::phases::micros(images_took);
    result.coverage = coverage;
    Ok(result)
}

fn drive(
    vm: &mut Vm,
    setup: &TrialSetup,
    cache: &CacheEnv,
    workload: &Workload,
) -> Result<(Driven, GuestFacts), VmError> {
    let seen = vm.qmp().nvdimm("nv0")?;
    if seen != cache.nvdimm {
        return Err(guest(format!(
            "the NVDIMM sits at {:#x}+{:#x} in this VM, the plugin traces {:#x}+{:#x}",
            seen.base, seen.size, cache.nvdimm.base, cache.nvdimm.size
        )));
    }
    let mut agent = prepare_workload_vm(vm, setup)?;
    let ready = vm.since_start();
    let ops_started = Instant::now();
    let mut facts = cache_lost::collect(vm, cache.nvdimm.base, &setup.image.hash);
    agent.send(&HostMsg::Run {
        dir: GUEST_DIR.into(),
        workload: workload.clone(),
        barriers: Vec::new(),
        markers: true,
    })?;
    let deadline = deadline(setup.timeout);
    let mut outcomes = vec![None; workload.ops.len()];
    let op_micros = loop {
        match next_msg(&mut agent, vm, deadline, setup.timeout.as_secs())? {
            AgentMsg::OpStarted { .. } => {}
            AgentMsg::OpDone { k, outcome } => {
                if let Some(slot) = outcomes.get_mut(k) {
                    *slot = Some(outcome);
                }
            }
            AgentMsg::Finished { micros, .. } => break micros,
            AgentMsg::Error { message } => return Err(guest(format!("agent error: {message}"))),
            other => return Err(guest(format!("unexpected agent message {other:?}"))),
        }
    };
    let ops = ops_started.elapsed();
    let names = file_names(workload)
        .into_iter()
        .map(str::to_owned)
        .collect();
    facts.add_extents(file_extents(&mut agent, GUEST_DIR, names)?);
    let live = read_live(&mut agent, workload)?;
    Ok((
        Driven {
            outcomes,
            live,
            op_micros,
            ready,
            ops,
        },
        facts,
    ))
}

/// What the traced run knows besides its trace.
struct Traced<'a> {
    workload: &'a Workload,
    /// Triage: the states to build.
    selector: Option<&'a CutSelector>,
    /// The files read back after the last op.
    live: &'a BTreeMap<String, Observed>,
    /// Extents, symbols.
    facts: GuestFacts,
}

/// Most states a triage selector builds per run.
const MAX_SELECTED_STATES: usize = 8;

fn read_all(path: &Path) -> Result<Vec<u8>, VmError> {
    let mut v = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut v))
        .map_err(|e| guest(format!("reading {}: {e}", path.display())))?;
    Ok(v)
}

/// Parse the trace, check it against the final pmem, write the crash images. `base` is
/// what the pmem file held when the VM came up (the golden image, or the booted state's
/// base): the trace's stores apply to it.
fn build_images(
    base_image: &Path,
    cfg: &CacheModelConfig,
    run: &Traced<'_>,
    dir: &Path,
    pmem: &Path,
    trace_path: &Path,
) -> Result<Vec<CrashImage>, VmError> {
    let started = Instant::now();
    let workload = run.workload;
    let trace = Trace::parse(read_all(trace_path)?)
        .map_err(|e| guest(format!("{}: {e}", trace_path.display())))?;
    let golden = read_all(base_image)?;
    let points = workload.crash_point_after();
    let is_durability = |k: usize| points.get(k).copied().unwrap_or(false);
    // A selector looks at every candidate cut, not a sample.
    let sampled = if run.selector.is_some() {
        usize::MAX
    } else {
        cfg.sampled_cuts
    };
    let plan = plan_cuts(trace.events(), is_durability, sampled, workload.seed);
    let mut facts = run.facts.clone();
    if let Some(map) = facts.map.take() {
        let f = File::open(pmem).map_err(|e| guest(format!("{}: {e}", pmem.display())))?;
        let mut at = |off: u64, len: usize| {
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, off).ok().map(|()| buf)
        };
        match cache_lost::checked_map(map, run.live, &mut at) {
            Ok(m) => facts.map = Some(m),
            Err(note) => facts.notes.push(note),
        }
    }
    let base = trace.header.base;
    let mut images = Vec::new();
    let mut sink = |state: CrashState| {
        let report = cache_lost::report(&state, &facts, workload);
        images.push(write_state(base_image, dir, base, &state, &report)?);
        Ok::<(), VmError>(())
    };
    let summary = match run.selector {
        Some(sel) => build_selected(
            golden.as_slice(),
            &trace,
            &plan,
            sel,
            workload.seed,
            MAX_SELECTED_STATES,
            &mut sink,
        )?,
        None => {
            let bounds = StateBounds {
                subsets_per_cut: cfg.subsets_per_cut,
                max_states: cfg.max_states_per_run,
                seed: workload.seed,
            };
            build_states(golden.as_slice(), &trace, &plan, &bounds, &mut sink)?
        }
    };
    verify_final(&golden, pmem, &summary)?;
    let info = TraceSummary {
        trace_bytes: trace.bytes,
        plugin: trace.stats.clone(),
        candidates: plan.candidates,
        cuts: plan.cuts.len(),
        states: summary.states,
        duplicates: summary.duplicates,
        over_bound: summary.over_bound,
        lines_touched: summary.lines_touched,
        build_secs: started.elapsed().as_secs_f64(),
    };
    tracing::info!(?info, "crash states built");
    let json = serde_json::to_string_pretty(&info)
        .map_err(|e| guest(format!("serializing cache-run.json: {e}")))?;
    std::fs::write(dir.join("cache-run.json"), json).map_err(|source| VmError::HostIo {
        what: format!("writing {}", dir.join("cache-run.json").display()),
        source,
    })?;
    Ok(images)
}

/// The trace must explain the final pmem file exactly: golden + every traced store. A
/// difference means stores the plugin missed, and crash states built from it could accuse
/// a correct kernel: refuse.
fn verify_final(golden: &[u8], pmem: &Path, summary: &BuildSummary) -> Result<(), VmError> {
    let f = File::open(pmem).map_err(|e| guest(format!("{}: {e}", pmem.display())))?;
    const BLOCK: usize = 1 << 20;
    let mut buf = vec![0u8; BLOCK];
    let mut expect = vec![0u8; BLOCK];
    let mut bad: Vec<u64> = Vec::new();
    let mut bad_count = 0usize;
    for (i, chunk) in golden.chunks(BLOCK).enumerate() {
        let start = (i * BLOCK) as u64;
        let n = chunk.len();
        f.read_exact_at(&mut buf[..n], start)
            .map_err(|e| guest(format!("reading {}: {e}", pmem.display())))?;
        expect[..n].copy_from_slice(chunk);
        let first = start / 64;
        let last = (start + n as u64) / 64;
        for (idx, data) in summary.final_lines.range(first..last) {
            let o = (idx * 64 - start) as usize;
            expect[o..o + 64].copy_from_slice(data);
        }
        if buf[..n] != expect[..n] {
            for l in 0..n / 64 {
                if buf[l * 64..l * 64 + 64] != expect[l * 64..l * 64 + 64] {
                    bad_count += 1;
                    if bad.len() < 8 {
                        bad.push(start + (l * 64) as u64);
                    }
                }
            }
        }
    }
    if bad_count > 0 {
        return Err(guest(format!(
            "the trace does not explain the final pmem: {bad_count} lines differ (first at pmem offsets {}); stores were missed, no crash states built",
            bad.iter().map(|o| format!("{o:#x}")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

/// Write one crash state as an image (copy of the base image + patched lines) and its
/// lost-lines file.
fn write_state(
    base_image: &Path,
    dir: &Path,
    base: u64,
    state: &CrashState,
    report: &cache_lost::LostReport,
) -> Result<CrashImage, VmError> {
    let path = dir.join(format!(
        "crash-{:09}-{}.{}",
        state.cut.seq,
        state.variant,
        super::CRASH_IMAGE_EXT
    ));
    // Owned from the start: a half-written image is deleted with it.
    let image = CrashImage {
        point: state.point(),
        path: path.clone(),
        model: format!("cache:{}", state.variant),
        pause_ms: 0,
        cache_cut: Some(state.cache_cut()),
    };
    let io = |source: std::io::Error| VmError::HostIo {
        what: format!("writing crash image {}", path.display()),
        source,
    };
    copy_pmem(base_image, &path).map_err(|e| guest(format!("copying the base pmem image: {e}")))?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io)?;
    // Coalesce adjacent lines into one write.
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = 0u64;
    let mut next_idx = u64::MAX;
    let flush = |run: &mut Vec<u8>, start: u64| -> std::io::Result<()> {
        if !run.is_empty() {
            f.write_all_at(run, start * 64)?;
            run.clear();
        }
        Ok(())
    };
    for (idx, data) in &state.patches {
        if *idx != next_idx {
            flush(&mut run, run_start).map_err(io)?;
            run_start = *idx;
        }
        run.extend_from_slice(data as &LineData);
        next_idx = idx + 1;
    }
    flush(&mut run, run_start).map_err(io)?;
    cache_lost::write(&path, report, base)?;
    Ok(image)
}

/// Deadline for QEMU to write the trace's end and exit after QMP `quit`.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lost_lines_report_sits_beside_its_image() {
        assert_eq!(
            lost_lines_path(Path::new("/r/crash-000000900-worst.img")),
            Path::new("/r/crash-000000900-worst.lost-lines.txt")
        );
        assert_eq!(
            cache_lost::json_path(Path::new("/r/crash-000000900-worst.img")),
            Path::new("/r/crash-000000900-worst.lost-lines.json")
        );
    }
}
