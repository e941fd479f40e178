//! The snapshot crash model: boot a workload VM on a copy of the golden pmem, mount with
//! DAX, load the mutant, stream the workload through the agent, and at each planned point
//! pause the guest (QMP `stop`), copy the pmem file as a crash image, and resume (`cont`).
//! Every store the guest made is in the image, as if the CPU caches were persistent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use workloads::oracle::{file_names, CrashPoint, Observed};
use workloads::protocol::{AgentMsg, HostMsg};
use workloads::Workload;

use super::plan::CrashPlan;
use super::start::{start_workload_vm, StartMode, WorkVm};
use super::{CrashImage, Driven, RunResult, TrialSetup, VmFigures};
use crate::host::blocks::sparse_copy;
use crate::image::golden::mount_dax;
use crate::image::user_modules::{load_command, ModuleRecord};
use crate::image::Filesystem;
use crate::vm::agent::{next_msg, read_files, start_agent, Patterns, GUEST_DIR};
use crate::vm::{AgentChannel, Vm, VmError};
use workloads::content::Source;

/// Run `workload` in a fresh workload VM whose files live in `dir`, cutting power per `plan`.
pub fn run_workload(
    setup: &TrialSetup,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    name: &str,
) -> Result<RunResult, VmError> {
    let cov = setup.coverage.as_ref();
    let plugin = cov.map_or_else(Vec::new, |c| c.coverage_only_args(dir));
    let WorkVm {
        mut vm,
        pmem,
        started,
        ..
    } = start_workload_vm(setup, dir, name, plugin)?;
    let res = drive(&mut vm, setup, workload, plan, dir, pmem.path(), started);
    let figures = VmFigures::of(&vm, started);
    // A run that failed ends as before (killed at once); its coverage would be partial.
    let Some(cov) = cov.filter(|_| res.is_ok()) else {
        vm.kill();
        let (driven, images, _) = res?;
        return Ok(RunResult::of(driven, images, figures));
    };
    // The plugin writes its blocks at exit: a clean quit (the crash images are taken).
    let quit = vm.quit(super::cache_run::QUIT_TIMEOUT);
    let (driven, images, kallsyms) = res?;
    let coverage = match quit {
        Ok(()) => cov.finish(dir, kallsyms.as_deref()),
        Err(e) => {
            cov.warn(&format!("QEMU did not quit: {}", super::first_line(&e)));
            None
        }
    };
    let mut result = RunResult::of(driven, images, figures);
    result.coverage = coverage;
    Ok(result)
}

/// Mount the workload file system with DAX (ext4: the long `commit=` so a skipped fsync
/// commit is not hidden by the periodic one), load the user's modules and the mutant if
/// any, start the agent.
pub fn prepare_workload_vm(vm: &mut Vm, setup: &TrialSetup) -> Result<AgentChannel, VmError> {
    let fs = setup.golden.fs;
    let opts = match fs {
        Filesystem::Ext4 => format!("commit={}", setup.ext4_commit_secs),
        Filesystem::Xfs => String::new(),
    };
    mount_dax(vm, fs, "/mnt", &opts)?;
    for m in &setup.image.user_modules {
        load_user_module(vm, m)?;
    }
    if let Some(m) = &setup.mutant {
        if !setup.image.has_mutant_module {
            return Err(VmError::Guest(format!(
                "--mutant {m}: the image of kernel {} has no mutant module: it needs linux-headers-{} \
                 (ci/setup; `powercut kernel list` says why a cached kernel has none) or a build \
                 tree with Module.symvers, and CONFIG_KPROBES",
                setup.image.kernel_version,
                setup.image.kernel_version
            )));
        }
        vm.run(&format!(
            "insmod /lib/modules/powercut_mutant.ko mutants={m}"
        ))?;
    }
    start_agent(vm)
}

/// Load one of the user's modules; a failure is [`VmError::ModuleLoad`] with `insmod`'s
/// output and the kernel log lines it caused.
fn load_user_module(vm: &mut Vm, m: &ModuleRecord) -> Result<(), VmError> {
    let out = vm.ssh().exec(&load_command(m))?;
    if out.status == 0 {
        return Ok(());
    }
    vm.check_alive(&format!("while loading module {}", m.name))?;
    let detail = format!("{}{}", out.stdout, out.stderr)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    Err(VmError::ModuleLoad {
        name: m.name.clone(),
        detail,
    })
}

/// After `finished`: read the workload's files back from the live file system and end the
/// agent session.
pub fn read_live(
    agent: &mut AgentChannel,
    workload: &Workload,
) -> Result<BTreeMap<String, Observed>, VmError> {
    let names = file_names(workload)
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The patterns where the ops wrote them (data a collapse or insert range moved comes
    // back as literal bytes: the same bytes, only longer on the wire).
    let sources: Vec<Source> = workload
        .ops
        .iter()
        .enumerate()
        .filter_map(|(k, op)| op.pattern_id(k))
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .map(Source::at_home)
        .collect();
    let patterns = Patterns {
        seed: workload.seed,
        sources: &sources,
    };
    let live = read_files(agent, GUEST_DIR, names, patterns)?;
    // The VM is killed next; a lost `quit` changes nothing.
    agent.send(&HostMsg::Quit).ok();
    Ok(live)
}

/// The deadline of a run's ops (`None` if `timeout` is too large to add to now).
pub fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Take one crash image of `vm`'s pmem file into `dest`: stop, sparse copy, cont.
/// Returns how long the guest was paused.
pub fn take(vm: &mut Vm, pmem: &Path, dest: &Path) -> Result<Duration, VmError> {
    let start = Instant::now();
    vm.qmp().stop()?;
    let copied = sparse_copy(pmem, dest);
    let resumed = vm.qmp().cont();
    copied.map_err(|source| VmError::HostIo {
        what: format!("copying {} to {}", pmem.display(), dest.display()),
        source,
    })?;
    resumed?;
    Ok(start.elapsed())
}

/// What [`drive`] returns: the agent's report, the crash images, and the VM's kallsyms
/// when coverage is recorded.
type Drove = (Driven, Vec<CrashImage>, Option<String>);

fn drive(
    vm: &mut Vm,
    setup: &TrialSetup,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    pmem: &Path,
    started: StartMode,
) -> Result<Drove, VmError> {
    let mut agent = prepare_workload_vm(vm, setup)?;
    // Set-up, before the first op's marker: nothing of it counts as the ops' coverage.
    let kallsyms = setup
        .coverage
        .as_ref()
        .and_then(|c| c.kallsyms(vm, &setup.image.hash, started));
    let ready = vm.since_start();
    let ops_started = Instant::now();
    agent.send(&HostMsg::Run {
        dir: GUEST_DIR.into(),
        workload: workload.clone(),
        barriers: plan.barriers(),
        // The op markers bound the coverage's ops phase (a `cpuid` each; TCG only).
        markers: setup.coverage.is_some(),
    })?;
    let deadline = deadline(setup.timeout);
    let secs = setup.timeout.as_secs();
    let mut outcomes = vec![None; workload.ops.len()];
    let mut images = Vec::new();
    let inside_delays: BTreeMap<usize, u64> = plan
        .inside
        .iter()
        .copied()
        .zip(plan.inside_delay_us.iter().copied())
        .collect();
    let mut cut = |vm: &mut Vm, point: CrashPoint, label: String| -> Result<(), VmError> {
        let path = dir.join(format!("crash-{label}.{}", super::CRASH_IMAGE_EXT));
        let paused = take(vm, pmem, &path);
        // Owned from here on: deleted on every path, even when the copy failed half-way.
        let mut image = CrashImage {
            point,
            path,
            model: "snapshot".into(),
            pause_ms: 0,
            cache_cut: None,
        };
        image.pause_ms = u64::try_from(paused?.as_millis()).unwrap_or(u64::MAX);
        images.push(image);
        Ok(())
    };
    let op_micros = loop {
        match next_msg(&mut agent, vm, deadline, secs)? {
            AgentMsg::OpStarted { k } => {
                if let Some(&us) = inside_delays.get(&k) {
                    std::thread::sleep(Duration::from_micros(us));
                    cut(vm, CrashPoint::InsideOp(k), format!("{k:04}-inside"))?;
                }
            }
            AgentMsg::OpDone { k, outcome } => {
                if let Some(slot) = outcomes.get_mut(k) {
                    *slot = Some(outcome);
                }
            }
            AgentMsg::Barrier { k } => {
                if plan.after.contains(&k) {
                    cut(vm, CrashPoint::AfterOp(k), format!("{k:04}-after"))?;
                }
                agent.send(&HostMsg::Continue)?;
            }
            AgentMsg::Finished { micros, .. } => break micros,
            AgentMsg::Error { message } => {
                return Err(VmError::Guest(format!("agent error: {message}")))
            }
            other => {
                return Err(VmError::Guest(format!(
                    "unexpected agent message {other:?}"
                )))
            }
        }
    };
    let ops = ops_started.elapsed();
    let live = read_live(&mut agent, workload)?;
    Ok((
        Driven {
            outcomes,
            live,
            op_micros,
            ready,
            ops,
        },
        images,
        kallsyms,
    ))
}
