//! Starting QEMU for one guest: the checks of its inputs, the command line, the process
//! guard and the QMP connection. What follows (a cold boot, or a restore of a saved state)
//! is the caller's: [`super::Vm::boot`] and [`super::Vm::restore`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Name prefix of a VM's control-socket directory in `$TMPDIR` (`powercut-<pid>-XXXX`).
pub const SOCKET_DIR_PREFIX: &str = "powercut-";

use super::VmSpec;
use super::{exit_error, find_in_path, free_port, qemu_binary, QemuConfig, QmpClient, VmError};
use crate::host::logtail::ConsoleStreamer;
use crate::host::process::ChildGuard;

/// A QEMU just started, with QMP connected; the guest may not be running yet.
pub(super) struct Launched {
    pub guard: ChildGuard,
    pub qmp: QmpClient,
    /// Host port forwarded to the guest's SSH.
    pub port: u16,
    pub console: PathBuf,
    pub qemu_log: PathBuf,
    pub sock_dir: tempfile::TempDir,
    pub streamer: Option<ConsoleStreamer>,
    /// When QEMU was spawned.
    pub start: Instant,
}

impl Launched {
    /// If QEMU has exited, the error describing it (`when`: "during boot", …).
    pub fn died(&mut self, when: &str) -> Option<VmError> {
        let status = self.guard.try_exit()?;
        Some(exit_error(status, when, &self.qemu_log, &self.console))
    }
}

/// The size of `spec`'s pmem file, checked: a multiple of 2 MiB of at least 16 MiB.
pub(super) fn pmem_bytes(pmem: &Path) -> Result<u64, VmError> {
    let bytes = std::fs::metadata(pmem)
        .map_err(|e| VmError::Pmem {
            path: pmem.to_owned(),
            detail: e.to_string(),
        })?
        .len();
    if bytes < 16 << 20 || !bytes.is_multiple_of(2 << 20) {
        return Err(VmError::Pmem {
            path: pmem.to_owned(),
            detail: format!("size {bytes} is not a multiple of 2 MiB of at least 16 MiB"),
        });
    }
    Ok(bytes)
}

/// Where a guest's QEMU finds and puts things besides its [`VmSpec`].
pub(super) struct Places {
    pub qemu: PathBuf,
    pub pmem_bytes: u64,
    pub port: u16,
    pub qmp_socket: PathBuf,
    pub console: PathBuf,
}

/// The QEMU configuration of `spec` at `places`; `incoming` for a restore.
pub(super) fn config(spec: &VmSpec, places: &Places, incoming: bool) -> QemuConfig {
    QemuConfig {
        qemu: places.qemu.clone(),
        accel: spec.accel,
        memory_mib: spec.memory_mib,
        kernel: spec.image.bzimage.clone(),
        initrd: spec.image.initramfs.clone(),
        append: spec.append.clone(),
        pmem: spec.pmem.clone(),
        pmem_bytes: places.pmem_bytes,
        ssh_port: places.port,
        qmp_socket: places.qmp_socket.clone(),
        serial_log: places.console.clone(),
        extra: spec.extra_args.clone(),
        incoming,
    }
}

/// Start QEMU for `spec` (paused, waiting for `migrate-incoming`, when `incoming`) and
/// connect QMP, within `spec.boot_timeout`.
pub(super) fn launch(spec: &VmSpec, incoming: bool) -> Result<Launched, VmError> {
    let qemu = qemu_binary();
    let qemu = find_in_path(&qemu).ok_or_else(|| VmError::QemuMissing {
        qemu: qemu.display().to_string(),
    })?;
    let pmem_bytes = pmem_bytes(&spec.pmem)?;
    std::fs::create_dir_all(&spec.dir).map_err(VmError::Spawn)?;
    // Unix socket paths are limited to 108 bytes: keep the socket in a short temp dir, named
    // after this process so that one left by a killed powercut is removed at the next start.
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        crate::cache_dir::stale::sweep_dead_owners(&std::env::temp_dir(), SOCKET_DIR_PREFIX);
    });
    let sock_dir = tempfile::Builder::new()
        .prefix(&crate::cache_dir::stale::owned_prefix(SOCKET_DIR_PREFIX))
        .tempdir()
        .map_err(VmError::Spawn)?;
    let console = spec.dir.join(format!("{}.console.log", spec.name));
    let qemu_log = spec.dir.join(format!("{}.qemu.log", spec.name));
    // Logs of an earlier VM of the same name: absent is as good as removed.
    std::fs::remove_file(&console).ok();
    std::fs::remove_file(&qemu_log).ok();
    let places = Places {
        qemu: qemu.clone(),
        pmem_bytes,
        port: free_port().map_err(VmError::Spawn)?,
        qmp_socket: sock_dir.path().join("qmp.sock"),
        console: console.clone(),
    };
    let cfg = config(spec, &places, incoming);
    if spec.debug {
        eprintln!("[{}] {}", spec.name, cfg.shell_line());
    }
    tracing::debug!(cmdline = %cfg.shell_line(), "starting QEMU");
    let start = Instant::now();
    let mut guard = ChildGuard::spawn(Command::new(&qemu).args(cfg.args()), &qemu_log)
        .map_err(VmError::Spawn)?;
    let streamer = spec
        .debug
        .then(|| ConsoleStreamer::start(&console, &spec.name));
    let deadline = start + spec.boot_timeout;
    let qmp = loop {
        match QmpClient::connect(&cfg.qmp_socket, Instant::now() + Duration::from_secs(2)) {
            Ok(q) => break q,
            Err(e) => {
                if let Some(status) = guard.try_exit() {
                    return Err(exit_error(status, "during startup", &qemu_log, &console));
                }
                if Instant::now() >= deadline {
                    return Err(e.into());
                }
            }
        }
    };
    Ok(Launched {
        guard,
        qmp,
        port: places.port,
        console,
        qemu_log,
        sock_dir,
        streamer,
        start,
    })
}
