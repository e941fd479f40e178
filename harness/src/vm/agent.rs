//! The host side of the guest agent: starting `powercut-agent serve` over SSH with its
//! protocol check, the next message of a running workload (with a deadline, and the VM's own
//! death preferred over the SSH error), and reading files back.

use std::collections::BTreeMap;
use std::time::Instant;

use workloads::oracle::Observed;
use workloads::protocol::{AgentMsg, HostMsg, PROTOCOL_VERSION};

use super::{AgentChannel, Vm, VmError};

/// Directory of the workload inside the guest's DAX mount (`/mnt`).
pub const GUEST_DIR: &str = "/mnt/w";

/// Start the agent in `vm` and check that it speaks this harness's protocol.
pub fn start_agent(vm: &Vm) -> Result<AgentChannel, VmError> {
    let mut agent = vm.ssh().agent("powercut-agent serve")?;
    match agent.recv()? {
        AgentMsg::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => Ok(agent),
        other => Err(VmError::Guest(format!(
            "agent speaks {other:?}, harness protocol {PROTOCOL_VERSION}: rebuild the image (powercut image build)"
        ))),
    }
}

/// The agent's next message during a run: a timeout once `deadline` (`None`: none) has
/// passed, and when the channel fails, the VM's own death (panic, QEMU exit) in preference
/// to the SSH error.
pub fn next_msg(
    agent: &mut AgentChannel,
    vm: &mut Vm,
    deadline: Option<Instant>,
    timeout_secs: u64,
) -> Result<AgentMsg, VmError> {
    if deadline.is_some_and(|d| Instant::now() > d) {
        return Err(VmError::Guest(format!(
            "run did not finish within {timeout_secs} s (timeout)"
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

/// Ask the agent for the named files in `dir`.
pub fn read_files(
    agent: &mut AgentChannel,
    dir: &str,
    names: Vec<String>,
) -> Result<BTreeMap<String, Observed>, VmError> {
    let asked = names.len();
    agent.send(&HostMsg::ReadFiles {
        dir: dir.to_owned(),
        names,
    })?;
    match agent.recv()? {
        AgentMsg::Files { files } if files.len() == asked => {
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
        AgentMsg::Files { files } => Err(VmError::Guest(format!(
            "agent answered {} files for {asked} names",
            files.len()
        ))),
        other => Err(VmError::Guest(format!(
            "agent answered ReadFiles with {other:?}"
        ))),
    }
}

/// Ask the agent where the named files in `dir` lie on the block device (FIEMAP).
pub fn file_extents(
    agent: &mut AgentChannel,
    dir: &str,
    names: Vec<String>,
) -> Result<Vec<workloads::protocol::FileExtents>, VmError> {
    let asked = names.len();
    agent.send(&HostMsg::Extents {
        dir: dir.to_owned(),
        names,
    })?;
    match agent.recv()? {
        AgentMsg::Extents { files } if files.len() == asked => Ok(files),
        AgentMsg::Extents { files } => Err(VmError::Guest(format!(
            "agent answered extents of {} files for {asked} names",
            files.len()
        ))),
        other => Err(VmError::Guest(format!(
            "agent answered Extents with {other:?}"
        ))),
    }
}
