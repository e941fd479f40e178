//! The host side of the guest agent: starting `powercut-agent serve` over SSH with its
//! protocol check, the next message of a running workload (with a deadline, and the VM's own
//! death preferred over the SSH error), reading files back (their runs decoded: the guest is
//! untrusted), and checking a crash image in one request.

use std::collections::BTreeMap;
use std::time::Instant;

use workloads::content::decode;
pub use workloads::content::Patterns;
use workloads::oracle::Observed;
use workloads::protocol::{
    AgentMsg, CheckTimings, FileReport, HostMsg, MAX_REPORTED_TARGET, PROTOCOL_VERSION,
};
use workloads::NodeKind;

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
    patterns: Patterns<'_>,
) -> Result<BTreeMap<String, Observed>, VmError> {
    let asked = names.len();
    agent.send(&HostMsg::ReadFiles {
        dir: dir.to_owned(),
        names,
        seed: patterns.seed,
        sources: patterns.sources.to_vec(),
    })?;
    match agent.recv()? {
        AgentMsg::Files { files } => observed(files, asked, patterns.seed),
        other => Err(VmError::Guest(format!(
            "agent answered ReadFiles with {other:?}"
        ))),
    }
}

/// What the agent saw of one crash image in one [`HostMsg::Check`] request.
#[derive(Debug)]
pub enum CheckedImage {
    /// The mount failed with this error; nothing was read.
    MountFailed(String),
    /// Mounted, read back and unmounted.
    Read(BTreeMap<String, Observed>),
}

/// A [`CheckedImage`] and the guest's timing of it.
#[derive(Debug)]
pub struct Checked {
    /// What the agent saw.
    pub image: CheckedImage,
    /// Where the time went in the guest.
    pub timings: CheckTimings,
}

/// Where a crash image lies in the guest and how to mount it.
#[derive(Debug, Clone, Copy)]
pub struct CheckPlace<'a> {
    /// Block device.
    pub device: &'a str,
    /// File system type.
    pub fs: &'a str,
    /// Mount point.
    pub mountpoint: &'a str,
    /// Directory of the files inside the mount.
    pub dir: &'a str,
}

/// Check the crash image on `place.device` in one request: mount, read `names` back,
/// unmount, drop the guest's caches of the device. An error of the unmount or of dropping
/// the caches is an error here (the checker VM is no longer fit for another image).
pub fn check_image(
    agent: &mut AgentChannel,
    place: CheckPlace<'_>,
    names: Vec<String>,
    patterns: Patterns<'_>,
) -> Result<Checked, VmError> {
    let asked = names.len();
    agent.send(&HostMsg::Check {
        device: place.device.to_owned(),
        fs: place.fs.to_owned(),
        mountpoint: place.mountpoint.to_owned(),
        dir: place.dir.to_owned(),
        names,
        seed: patterns.seed,
        sources: patterns.sources.to_vec(),
    })?;
    match agent.recv()? {
        AgentMsg::Checked {
            cleanup_error: Some(why),
            ..
        } => Err(VmError::Guest(format!(
            "the checker could not clean up after a crash image: {why}"
        ))),
        AgentMsg::Checked {
            mount_error: Some(why),
            timings,
            ..
        } => Ok(Checked {
            image: CheckedImage::MountFailed(why),
            timings,
        }),
        AgentMsg::Checked { files, timings, .. } => Ok(Checked {
            image: CheckedImage::Read(observed(files, asked, patterns.seed)?),
            timings,
        }),
        other => Err(VmError::Guest(format!(
            "agent answered Check with {other:?}"
        ))),
    }
}

/// The files of an agent's answer, their runs decoded; exactly `asked` of them.
fn observed(
    files: Vec<FileReport>,
    asked: usize,
    seed: u64,
) -> Result<BTreeMap<String, Observed>, VmError> {
    if files.len() != asked {
        return Err(VmError::Guest(format!(
            "agent answered {} files for {asked} names",
            files.len()
        )));
    }
    let mut out = BTreeMap::new();
    for f in files {
        if let Some(err) = f.error {
            return Err(VmError::Guest(format!(
                "agent could not read {}: {err}",
                f.name
            )));
        }
        if f.target
            .as_ref()
            .is_some_and(|t| t.len() > MAX_REPORTED_TARGET)
        {
            return Err(VmError::Guest(format!(
                "agent sent a symlink text of {} over {MAX_REPORTED_TARGET} bytes",
                f.name
            )));
        }
        let obs = if !f.exists {
            Observed::absent()
        } else if f.kind != NodeKind::File {
            Observed::node(f.kind, f.target)
        } else {
            let data = decode(&f.runs, seed, f.size).map_err(|e| {
                VmError::Guest(format!("agent sent a bad read-back of {}: {e}", f.name))
            })?;
            Observed {
                meta: f.meta,
                ino: f.ino,
                nlink: f.nlink,
                ..Observed::present(data)
            }
        };
        out.insert(f.name, obs);
    }
    Ok(out)
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
