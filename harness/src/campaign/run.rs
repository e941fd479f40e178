//! One workload run: boot a workload VM on a copy of the golden pmem, mount with DAX, load
//! the mutant, stream the workload through the agent, and take snapshot crash images at the
//! planned points.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use workloads::oracle::{file_names, CrashPoint, Observed};
use workloads::protocol::{AgentMsg, HostMsg, PROTOCOL_VERSION};
use workloads::{OpOutcome, Workload};

use super::plan::CrashPlan;
use super::snapshot;
use crate::image::golden::mount_dax;
use crate::image::{Filesystem, GoldenImage, GuestImage};
use crate::vm::{Accel, AgentChannel, Vm, VmError, VmSpec};

/// Directory of the workload inside the DAX mount.
pub const GUEST_DIR: &str = "/mnt/w";

/// What a workload VM is set up with.
#[derive(Debug, Clone)]
pub struct RunSetup {
    /// Guest image.
    pub image: GuestImage,
    /// Golden pmem to start from.
    pub golden: GoldenImage,
    /// Accelerator.
    pub accel: Accel,
    /// Mutant to load (`m1`..`m5`).
    pub mutant: Option<String>,
    /// ext4 `commit=` seconds.
    pub ext4_commit_secs: u32,
    /// Deadline of the whole run.
    pub timeout: Duration,
    /// `--debug`.
    pub debug: bool,
}

/// One crash image taken during a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashImage {
    /// Where the power was cut.
    pub point: CrashPoint,
    /// The image file.
    pub path: PathBuf,
    /// Crash model that made it.
    pub model: String,
    /// How long the guest was paused to take it, ms.
    pub pause_ms: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Outcome of every op (`None` if it never ran).
    pub outcomes: Vec<Option<OpOutcome>>,
    /// Crash images, in the order taken.
    pub images: Vec<CrashImage>,
    /// What the live file system held after the last op.
    pub live: BTreeMap<String, Observed>,
    /// Op wall time in the guest, µs.
    pub op_micros: u64,
    /// Boot to SSH.
    pub boot: Duration,
    /// Guest console log.
    pub console: PathBuf,
}

/// Start the agent in `vm` and check its protocol version.
pub fn start_agent(vm: &Vm) -> Result<AgentChannel, VmError> {
    let mut agent = vm.ssh().agent("powercut-agent serve")?;
    match agent.recv()? {
        AgentMsg::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => Ok(agent),
        other => Err(VmError::Guest(format!(
            "agent speaks {other:?}, harness protocol {PROTOCOL_VERSION}: rebuild the image (powercut image build)"
        ))),
    }
}

/// Ask the agent for the named files.
pub fn read_files(
    agent: &mut AgentChannel,
    dir: &str,
    names: Vec<String>,
) -> Result<BTreeMap<String, Observed>, VmError> {
    agent.send(&HostMsg::ReadFiles {
        dir: dir.to_owned(),
        names,
    })?;
    match agent.recv()? {
        AgentMsg::Files { files } => {
            let mut out = BTreeMap::new();
            for f in files {
                if let Some(err) = f.error {
                    return Err(VmError::Guest(format!(
                        "agent could not read {}: {err}",
                        f.name
                    )));
                }
                let data = hex::decode(&f.data_hex).map_err(|e| {
                    VmError::Guest(format!("agent sent bad hex for {}: {e}", f.name))
                })?;
                let obs = if f.exists {
                    Observed::present(data)
                } else {
                    Observed::absent()
                };
                out.insert(f.name, obs);
            }
            Ok(out)
        }
        other => Err(VmError::Guest(format!(
            "agent answered ReadFiles with {other:?}"
        ))),
    }
}

/// Run `workload` in a fresh workload VM whose files live in `dir`, cutting power per `plan`.
pub fn run_workload(
    setup: &RunSetup,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    name: &str,
) -> Result<RunResult, VmError> {
    std::fs::create_dir_all(dir).map_err(VmError::Spawn)?;
    let pmem = dir.join("work.pmem");
    setup
        .golden
        .copy_to(&pmem)
        .map_err(|e| VmError::Guest(e.to_string()))?;
    let mut spec = VmSpec::new(name, &setup.image, &pmem, setup.accel, dir);
    spec.debug = setup.debug;
    let mut vm = Vm::boot(&spec)?;
    let res = drive(&mut vm, setup, workload, plan, dir, &pmem);
    let console = vm.console_path().to_owned();
    let boot = vm.boot_time();
    vm.kill();
    let _ = std::fs::remove_file(&pmem);
    let (outcomes, images, live, op_micros) = res?;
    Ok(RunResult {
        outcomes,
        images,
        live,
        op_micros,
        boot,
        console,
    })
}

/// The agent's next message during a run: a timeout past `deadline`, and when the channel
/// fails, the VM's own death (panic, QEMU exit) in preference to the SSH error.
pub fn next_agent_msg(
    agent: &mut AgentChannel,
    vm: &mut Vm,
    deadline: Instant,
    timeout: Duration,
) -> Result<AgentMsg, VmError> {
    if Instant::now() > deadline {
        return Err(VmError::Guest(format!(
            "run did not finish within {} s (timeout)",
            timeout.as_secs()
        )));
    }
    match agent.recv() {
        Ok(m) => Ok(m),
        Err(e) => {
            vm.check_alive("while the workload ran")?;
            Err(e.into())
        }
    }
}

/// Mount the workload file system with DAX (ext4: the long `commit=` so a skipped fsync
/// commit is not hidden by the periodic one), load the mutant if any, start the agent.
pub fn prepare_workload_vm(vm: &mut Vm, setup: &RunSetup) -> Result<AgentChannel, VmError> {
    let fs = setup.golden.fs;
    let opts = match fs {
        Filesystem::Ext4 => format!("commit={}", setup.ext4_commit_secs),
        Filesystem::Xfs => String::new(),
    };
    mount_dax(vm, fs, "/mnt", &opts)?;
    if let Some(m) = &setup.mutant {
        if !setup.image.has_mutant_module {
            return Err(VmError::Guest(format!(
                "--mutant {m}: the image has no mutant module; install linux-headers-{} (ci/setup) and rebuild",
                setup.image.kernel_version
            )));
        }
        vm.run(&format!(
            "insmod /lib/modules/powercut_mutant.ko mutants={m}"
        ))?;
    }
    start_agent(vm)
}

type Driven = (
    Vec<Option<OpOutcome>>,
    Vec<CrashImage>,
    BTreeMap<String, Observed>,
    u64,
);

fn drive(
    vm: &mut Vm,
    setup: &RunSetup,
    workload: &Workload,
    plan: &CrashPlan,
    dir: &Path,
    pmem: &Path,
) -> Result<Driven, VmError> {
    let mut agent = prepare_workload_vm(vm, setup)?;
    agent.send(&HostMsg::Run {
        dir: GUEST_DIR.into(),
        workload: workload.clone(),
        barriers: plan.barriers(),
        markers: false,
    })?;
    let deadline = Instant::now() + setup.timeout;
    let mut outcomes = vec![None; workload.ops.len()];
    let mut images = Vec::new();
    let inside_delays: BTreeMap<usize, u64> = plan
        .inside
        .iter()
        .copied()
        .zip(plan.inside_delay_us.iter().copied())
        .collect();
    let mut take = |vm: &mut Vm, point: CrashPoint, label: String| -> Result<(), VmError> {
        let path = dir.join(format!("crash-{label}.img"));
        let paused = snapshot::take(vm, pmem, &path)?;
        images.push(CrashImage {
            point,
            path,
            model: "snapshot".into(),
            pause_ms: paused.as_millis() as u64,
        });
        Ok(())
    };
    let op_micros = loop {
        match next_agent_msg(&mut agent, vm, deadline, setup.timeout)? {
            AgentMsg::OpStarted { k } => {
                if let Some(&us) = inside_delays.get(&k) {
                    std::thread::sleep(Duration::from_micros(us));
                    take(vm, CrashPoint::InsideOp(k), format!("{k:04}-inside"))?;
                }
            }
            AgentMsg::OpDone { k, outcome } => {
                if let Some(slot) = outcomes.get_mut(k) {
                    *slot = Some(outcome);
                }
            }
            AgentMsg::Barrier { k } => {
                if plan.after.contains(&k) {
                    take(vm, CrashPoint::AfterOp(k), format!("{k:04}-after"))?;
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
    let names = file_names(workload)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let live = read_files(&mut agent, GUEST_DIR, names)?;
    let _ = agent.send(&HostMsg::Quit);
    Ok((outcomes, images, live, op_micros))
}
