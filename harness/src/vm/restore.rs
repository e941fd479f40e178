//! Saving a booted guest and starting another from it: QEMU's own migration to a `file:`
//! URI with `x-ignore-shared`, so the NVDIMM's shared file backend stays out of the state
//! and the restored QEMU maps whatever pmem file its command line names (it must hold what
//! the guest had at save time). The user-mode network and its SSH forward come from the new
//! command line. After a restore the guest's clock is set from the host's and host entropy
//! is mixed into its random pool, so that nothing per-run is baked into the saved state.

use std::path::Path;
use std::time::{Duration, Instant};

use qapi::qmp::{MigrationStatus, RunState};

use super::launch::{self, Places};
use super::{SshSession, Vm, VmError, VmSpec, COMMUNICATION_TIMEOUT};

/// From `migrate` to a completed state file (≈1 s measured for 512 MiB of guest RAM).
pub const SAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// From QEMU start to SSH login on a restored guest (≈0.7 s measured; generous for a
/// loaded machine, and far below [`super::BOOT_TIMEOUT`] so a broken restore falls back
/// to a cold boot quickly).
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the guest gets to close the SSH connection before it is saved.
const SSH_CLOSE_GRACE: Duration = Duration::from_millis(200);
/// How often migration progress is polled.
const POLL: Duration = Duration::from_millis(20);

/// The argument vector of `spec`'s QEMU with every per-run place (pmem file, ports,
/// sockets, logs) replaced by a placeholder: what a saved state depends on.
pub fn machine_args(spec: &VmSpec) -> Vec<String> {
    let places = Places {
        qemu: super::qemu_binary(),
        pmem_bytes: 0,
        port: 0,
        qmp_socket: "QMP".into(),
        console: "CONSOLE".into(),
    };
    let mut spec = spec.clone();
    spec.pmem = "PMEM".into();
    launch::config(&spec, &places, false).args()
}

/// The `file:` URI of a state file; `None` if QEMU could not parse it back (a comma
/// starts the URI's options).
pub fn file_uri(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    (!s.contains(',')).then(|| format!("file:{s}"))
}

/// The guest command run right after a restore: set the clock to `epoch_secs` (host time)
/// and mix `entropy` into the random pool. Pure, so it is unit tested.
pub fn refresh_command(epoch_secs: u64, entropy: &[u8]) -> String {
    format!(
        "date -u -s @{epoch_secs} >/dev/null && echo {} > /dev/urandom",
        hex::encode(entropy)
    )
}

fn uri_of(path: &Path) -> Result<String, VmError> {
    file_uri(path).ok_or_else(|| {
        VmError::Guest(format!(
            "state file {} has a comma or is not UTF-8: QEMU cannot name it in a file: URI",
            path.display()
        ))
    })
}

impl Vm {
    /// Save this guest's state to `state` and end QEMU. The SSH session is closed first
    /// (no connection is baked into the state); the guest is stopped before the save, so
    /// its pmem file holds, once this returns, exactly what the saved guest had. Returns
    /// how long the save took.
    pub fn save_state(self, state: &Path) -> Result<Duration, VmError> {
        let uri = uri_of(state)?;
        let Vm {
            ssh,
            mut qmp,
            mut guard,
            qemu_log,
            console,
            ..
        } = self;
        drop(ssh);
        std::thread::sleep(SSH_CLOSE_GRACE);
        let started = Instant::now();
        qmp.ignore_shared_memory()?;
        qmp.stop()?;
        qmp.migrate(&uri)?;
        let deadline = started + SAVE_TIMEOUT;
        loop {
            let (status, error) = qmp.migration_status()?;
            match status {
                Some(MigrationStatus::completed) => break,
                Some(MigrationStatus::failed | MigrationStatus::cancelled) => {
                    return Err(VmError::Guest(format!(
                        "saving the VM to {} failed: {}",
                        state.display(),
                        error.unwrap_or_else(|| "QEMU gave no reason".into())
                    )))
                }
                _ if Instant::now() >= deadline => {
                    return Err(VmError::Guest(format!(
                        "saving the VM to {} did not finish within {} s",
                        state.display(),
                        SAVE_TIMEOUT.as_secs()
                    )))
                }
                _ => std::thread::sleep(POLL),
            }
        }
        let took = started.elapsed();
        // QEMU is done with the guest; a lost `quit` only means it is killed below.
        qmp.quit().ok();
        if guard.wait_timeout(Duration::from_secs(5)).is_none() {
            guard.kill();
        }
        tracing::debug!(log = %qemu_log.display(), console = %console.display(), "saved VM");
        Ok(took)
    }

    /// Start a guest of `spec` from the saved `state` instead of booting it: QEMU waits for
    /// `migrate-incoming`, loads the state, runs; then SSH, the clock and the random pool.
    /// `spec.pmem` must hold what the saved guest's pmem held (a copy of its base).
    pub fn restore(spec: &VmSpec, state: &Path) -> Result<Vm, VmError> {
        let span = tracing::info_span!("vm", name = %spec.name);
        let _e = span.enter();
        let uri = uri_of(state)?;
        let mut spec = spec.clone();
        spec.boot_timeout = spec.boot_timeout.min(RESTORE_TIMEOUT);
        let mut l = launch::launch(&spec, true)?;
        let deadline = l.start + spec.boot_timeout;
        l.qmp.ignore_shared_memory()?;
        l.qmp.migrate_incoming(&uri)?;
        loop {
            if let Some(err) = l.died("while loading the saved state") {
                return Err(err);
            }
            let now = match l.qmp.run_state() {
                Ok(s) => s,
                Err(e) => {
                    // QEMU exits when the state does not load: its own message says why.
                    l.guard.wait_timeout(Duration::from_secs(2));
                    return Err(l.died("while loading the saved state").unwrap_or(e.into()));
                }
            };
            match now {
                RunState::inmigrate => {}
                RunState::running => break,
                RunState::paused | RunState::postmigrate | RunState::prelaunch => {
                    l.qmp.cont()?;
                    break;
                }
                other => {
                    return Err(VmError::Guest(format!(
                        "restoring {}: QEMU is in state {other:?} after loading it",
                        state.display()
                    )))
                }
            }
            if Instant::now() >= deadline {
                return Err(VmError::Guest(format!(
                    "restoring {}: the state did not load within {} s",
                    state.display(),
                    spec.boot_timeout.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
        let ssh = loop {
            if let Some(err) = l.died("after the restore") {
                return Err(err);
            }
            match SshSession::connect(l.port, &spec.image.ssh_key, COMMUNICATION_TIMEOUT) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(VmError::BootTimeout {
                        secs: spec.boot_timeout.as_secs(),
                        last: e.to_string(),
                        console: super::console_tail(&l.console, super::TAIL_LINES),
                    })
                }
                Err(_) => std::thread::sleep(POLL),
            }
        };
        let mut vm = Vm::of(l, ssh, &spec, Duration::ZERO);
        vm.run(&refresh_command(epoch_secs(), &host_entropy()?))?;
        vm.boot_time = vm.started.elapsed();
        tracing::info!(secs = vm.boot_time.as_secs_f64(), accel = %spec.accel, "guest restored");
        Ok(vm)
    }
}

fn epoch_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 32 bytes of the host's randomness.
fn host_entropy() -> Result<[u8; 32], VmError> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|source| VmError::HostIo {
            what: "reading /dev/urandom".into(),
            source,
        })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_are_named_by_a_file_uri_without_commas() {
        assert_eq!(
            file_uri(Path::new("/c/booted/k/vm.state")).as_deref(),
            Some("file:/c/booted/k/vm.state")
        );
        assert_eq!(file_uri(Path::new("/c/a,b/vm.state")), None);
    }

    #[test]
    fn a_restored_guest_gets_the_host_clock_and_fresh_entropy() {
        let cmd = refresh_command(1_764_000_000, &[0xab, 0x01]);

        assert_eq!(
            cmd,
            "date -u -s @1764000000 >/dev/null && echo ab01 > /dev/urandom"
        );
    }

    fn image() -> crate::vm::GuestBoot {
        crate::vm::GuestBoot {
            id: "h".into(),
            bzimage: "/c/images/h/bzImage".into(),
            initramfs: "/c/images/h/initramfs.cpio".into(),
            ssh_key: "/c/images/h/id_ed25519".into(),
        }
    }

    #[test]
    fn machine_args_hold_no_per_run_place() {
        let image = image();
        let tcg = crate::vm::Accel::Tcg;
        let a = VmSpec::new(
            "a",
            image.clone(),
            Path::new("/r/1/w.pmem"),
            tcg,
            Path::new("/r/1"),
        );
        let b = VmSpec::new(
            "b",
            image.clone(),
            Path::new("/r/2/w.pmem"),
            tcg,
            Path::new("/r/2"),
        );
        let mut more_ram = a.clone();
        more_ram.memory_mib = 1024;

        assert_eq!(machine_args(&a), machine_args(&b));
        assert_ne!(machine_args(&a), machine_args(&more_ram));
    }
}
