//! One QEMU guest: boot with an NVDIMM, wait for SSH, run commands, talk QMP, shut down.
//! The QEMU process is owned by a guard that kills and reaps it on drop.

pub mod accel;
pub mod agent;
pub mod cmdline;
mod launch;
pub mod qmp;
pub mod restore;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use accel::{resolve_accel, AccelChoice};
pub use cmdline::{Accel, QemuConfig};
pub use qmp::{NvdimmRange, QmpClient};
pub use ssh::{AgentChannel, SshSession};

use crate::host::logtail::{console_tail, ConsoleStreamer};
use crate::host::process::ChildGuard;

/// From QEMU start to SSH login, under TCG (≈10 s measured; generous for a loaded machine).
/// `$POWERCUT_BOOT_TIMEOUT` replaces it ([`boot_timeout`]).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Environment variable: seconds from QEMU start to SSH login, for guests that boot slower
/// than [`BOOT_TIMEOUT`] allows (a kernel with KASAN and lockdep under TCG on a loaded host
/// took more than 120 s to build a golden image).
pub const BOOT_TIMEOUT_ENV: &str = "POWERCUT_BOOT_TIMEOUT";
/// Bounds of `$POWERCUT_BOOT_TIMEOUT`, in seconds.
pub const BOOT_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 10..=3600;

/// The boot timeout: `$POWERCUT_BOOT_TIMEOUT` (whole seconds in [`BOOT_TIMEOUT_RANGE`]) or
/// [`BOOT_TIMEOUT`]. An unusable value is an error naming the variable; the binary checks it
/// before any command runs, so [`VmSpec::new`] can fall back to the default.
pub fn boot_timeout() -> Result<Duration, String> {
    let raw = match std::env::var(BOOT_TIMEOUT_ENV) {
        Err(std::env::VarError::NotPresent) => return Ok(BOOT_TIMEOUT),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{BOOT_TIMEOUT_ENV} is not UTF-8"))
        }
        Ok(v) => v,
    };
    match raw.trim().parse::<u64>() {
        Ok(s) if BOOT_TIMEOUT_RANGE.contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(format!(
            "{BOOT_TIMEOUT_ENV}={:?}: want whole seconds from {} to {}",
            raw.chars().take(40).collect::<String>(),
            BOOT_TIMEOUT_RANGE.start(),
            BOOT_TIMEOUT_RANGE.end()
        )),
    }
}
/// Timeout of one SSH call (a command or one agent message).
pub const COMMUNICATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a clean `poweroff` may take before QEMU is killed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Console lines included in error messages.
const TAIL_LINES: usize = 25;

/// Errors of a VM's life.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// QEMU is not installed.
    #[error(
        "{qemu} not found: install QEMU 10.x with `ci/setup` (bookworm-backports qemu-system-x86)"
    )]
    QemuMissing {
        /// The binary looked for.
        qemu: String,
    },
    /// The pmem backing file is missing or too small.
    #[error("pmem backing file {path}: {detail}")]
    Pmem {
        /// File.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Spawning QEMU failed.
    #[error("cannot start QEMU: {0}")]
    Spawn(std::io::Error),
    /// QEMU exited during boot or while in use.
    #[error("QEMU exited ({status}) {when}{}\n--- QEMU output ---\n{qemu_log}\n--- guest console (last lines) ---\n{console}", debug_hint())]
    QemuDied {
        /// Exit status.
        status: String,
        /// "during boot", …
        when: String,
        /// QEMU's stderr.
        qemu_log: String,
        /// Console tail.
        console: String,
    },
    /// The guest kernel panicked.
    #[error("guest kernel panicked {when}\n--- guest console (last lines) ---\n{console}")]
    GuestPanic {
        /// When.
        when: String,
        /// Console tail.
        console: String,
    },
    /// The guest's init reported a problem it cannot boot past (`powercut: fatal: …`).
    #[error(
        "guest init failed during boot: {line}\n--- guest console (last lines) ---\n{console}"
    )]
    GuestFatal {
        /// The console line, without its `powercut: fatal: ` prefix.
        line: String,
        /// Console tail.
        console: String,
    },
    /// The guest never answered SSH.
    #[error("guest did not answer SSH within {secs} s (last error: {last}){}\n--- guest console (last lines) ---\n{console}", debug_hint())]
    BootTimeout {
        /// Deadline in seconds.
        secs: u64,
        /// Last SSH error.
        last: String,
        /// Console tail.
        console: String,
    },
    /// QMP failed.
    #[error(transparent)]
    Qmp(#[from] qmp::QmpError),
    /// SSH failed.
    #[error(transparent)]
    Ssh(#[from] ssh::SshError),
    /// A host file operation a run depends on failed (copying the pmem file, writing a
    /// crash image).
    #[error("{what}: {source}")]
    HostIo {
        /// What was being done, with the path.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A user's module (`--module`) failed to load in the guest: an infrastructure
    /// problem. One line (it becomes the journal's `problem`): `insmod`'s output and the
    /// kernel log lines it caused.
    #[error("module {name} failed to load in the guest: {detail}")]
    ModuleLoad {
        /// The module.
        name: String,
        /// `insmod`'s output and the guest's dmesg lines, joined with ` | `.
        detail: String,
    },
    /// A guest-side check failed.
    #[error("{0}")]
    Guest(String),
}

impl VmError {
    /// Did this fail because the host's disk is full? Then nothing more can be recorded
    /// either, and a campaign must stop rather than blame the seed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            VmError::HostIo { source, .. } | VmError::Spawn(source) => {
                crate::host::is_disk_full_io(source)
            }
            other => other.to_string().contains("No space left on device"),
        }
    }
}

fn debug_hint() -> &'static str {
    "\n(run with --debug to see the QEMU command line and the guest console)"
}

/// The files a guest boots from: what `vm` needs of a guest image (built by
/// [`crate::image`], which converts its `GuestImage` into this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBoot {
    /// A stable name of these files (the image's content hash): the KVM probe's cache key.
    pub id: String,
    /// Kernel image to boot.
    pub bzimage: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// Private SSH key accepted by the guest's dropbear (as root).
    pub ssh_key: PathBuf,
}

/// Everything needed to boot one guest.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// Name used in logs and file names (`work-0`, `checker-1`, …).
    pub name: String,
    /// The files the guest boots from.
    pub image: GuestBoot,
    /// NVDIMM backing file (the VM writes to it).
    pub pmem: PathBuf,
    /// Accelerator (already resolved, see [`resolve_accel`]).
    pub accel: Accel,
    /// Directory for the console log, QEMU output and QMP socket.
    pub dir: PathBuf,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// Extra QEMU arguments (TCG plugin, …).
    pub extra_args: Vec<String>,
    /// SSH deadline.
    pub boot_timeout: Duration,
    /// Print the QEMU command line and stream the guest console (`--debug`).
    pub debug: bool,
}

impl VmSpec {
    /// A spec with the defaults (512 MiB RAM, [`BOOT_TIMEOUT`]).
    pub fn new(
        name: &str,
        image: impl Into<GuestBoot>,
        pmem: &Path,
        accel: Accel,
        dir: &Path,
    ) -> Self {
        VmSpec {
            name: name.to_owned(),
            image: image.into(),
            pmem: pmem.to_owned(),
            accel,
            dir: dir.to_owned(),
            memory_mib: 512,
            append: Vec::new(),
            extra_args: Vec::new(),
            boot_timeout: boot_timeout().unwrap_or(BOOT_TIMEOUT),
            debug: false,
        }
    }
}

/// The QEMU binary: `$POWERCUT_QEMU` or `qemu-system-x86_64` on the PATH.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("POWERCUT_QEMU").map_or_else(|| "qemu-system-x86_64".into(), PathBuf::from)
}

/// The version word of `qemu-system-x86_64 --version` (`10.0.2`), `unknown` if it does not
/// say.
pub fn qemu_version() -> String {
    Command::new(qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .map(|v| {
                    v.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                        .collect()
                })
        })
        .unwrap_or_else(|| "unknown".into())
}

fn find_in_path(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.exists().then(|| bin.to_owned());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}

/// A free TCP port on 127.0.0.1 (bind to port 0, read it back, release it).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// A booted guest with SSH and QMP connected.
pub struct Vm {
    name: String,
    ssh: SshSession,
    qmp: QmpClient,
    console: PathBuf,
    qemu_log: PathBuf,
    boot_time: Duration,
    started: Instant,
    accel: Accel,
    _streamer: Option<ConsoleStreamer>,
    _sock_dir: tempfile::TempDir,
    // Last field: dropped last, after SSH and QMP are closed.
    guard: ChildGuard,
}

impl Vm {
    /// Boot a guest and wait until it accepts SSH.
    pub fn boot(spec: &VmSpec) -> Result<Vm, VmError> {
        let span = tracing::info_span!("vm", name = %spec.name);
        let _e = span.enter();
        let mut l = launch::launch(spec, false)?;
        let (port, console, qemu_log) = (l.port, l.console.clone(), l.qemu_log.clone());
        let deadline = l.start + spec.boot_timeout;
        let mut last = String::from("not tried");
        let ssh = loop {
            if let Some(err) = l.died("during boot") {
                return Err(err);
            }
            if log_has(&qemu_log, "internal error") {
                // KVM stops the VM on an internal error instead of exiting.
                l.guard.kill();
                return Err(VmError::QemuDied {
                    status: "vCPU stopped".into(),
                    when: "during boot".into(),
                    qemu_log: console_tail(&qemu_log, TAIL_LINES),
                    console: console_tail(&console, TAIL_LINES),
                });
            }
            if Instant::now() >= deadline {
                return Err(VmError::BootTimeout {
                    secs: spec.boot_timeout.as_secs(),
                    last,
                    console: console_tail(&console, TAIL_LINES),
                });
            }
            if let Some(line) = fatal_line(&console) {
                l.guard.kill();
                return Err(VmError::GuestFatal {
                    line,
                    console: console_tail(&console, TAIL_LINES),
                });
            }
            if console_says_ready(&console) {
                match SshSession::connect(port, &spec.image.ssh_key, COMMUNICATION_TIMEOUT) {
                    Ok(s) => break s,
                    Err(e) => last = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let boot_time = l.start.elapsed();
        tracing::info!(secs = boot_time.as_secs_f64(), accel = %spec.accel, "guest up");
        Ok(Vm::of(l, ssh, spec, boot_time))
    }

    fn of(l: launch::Launched, ssh: SshSession, spec: &VmSpec, boot_time: Duration) -> Vm {
        Vm {
            name: spec.name.clone(),
            ssh,
            qmp: l.qmp,
            console: l.console,
            qemu_log: l.qemu_log,
            boot_time,
            started: l.start,
            accel: spec.accel,
            _streamer: l.streamer,
            _sock_dir: l.sock_dir,
            guard: l.guard,
        }
    }

    /// Time from QEMU start to SSH login (boot or restore).
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// Time since QEMU started.
    pub fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    /// Accelerator this VM runs with.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SSH session.
    pub fn ssh(&self) -> &SshSession {
        &self.ssh
    }

    /// The QMP session.
    pub fn qmp(&mut self) -> &mut QmpClient {
        &mut self.qmp
    }

    /// Last lines of the guest console.
    pub fn console_tail(&self, lines: usize) -> String {
        console_tail(&self.console, lines)
    }

    /// Path of the console log.
    pub fn console_path(&self) -> &Path {
        &self.console
    }

    /// If QEMU has exited, the error describing it.
    pub fn check_alive(&mut self, when: &str) -> Result<(), VmError> {
        match self.guard.try_exit() {
            None => Ok(()),
            Some(st) => Err(exit_error(st, when, &self.qemu_log, &self.console)),
        }
    }

    /// Run a guest command that must succeed; returns its stdout.
    pub fn run(&mut self, command: &str) -> Result<String, VmError> {
        match self.ssh.run_ok(command) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.check_alive(&format!("while running `{command}`"))?;
                Err(e.into())
            }
        }
    }

    /// Power off cleanly (sync, poweroff), falling back to QMP quit and then SIGKILL.
    /// Returns how QEMU ended.
    pub fn shutdown(mut self) -> Result<(), VmError> {
        // The command does not return: the connection drops when the guest powers off.
        let _ = self
            .ssh
            .exec("sync; (sleep 0.2; poweroff -f) >/dev/null 2>&1 &");
        if self.guard.wait_timeout(SHUTDOWN_TIMEOUT).is_some() {
            return Ok(());
        }
        tracing::warn!(vm = %self.name, "poweroff timed out; QMP quit");
        let _ = self.qmp.quit();
        if self.guard.wait_timeout(Duration::from_secs(5)).is_some() {
            return Ok(());
        }
        self.guard.kill();
        Err(VmError::Guest(format!(
            "{} did not power off within {} s; killed",
            self.name,
            SHUTDOWN_TIMEOUT.as_secs()
        )))
    }

    /// Ask QEMU to exit through QMP `quit` and wait up to `timeout` for it, so that exit
    /// handlers run (the cache model's TCG plugin finishes its trace there); killed after.
    pub fn quit(mut self, timeout: Duration) -> Result<(), VmError> {
        let asked = self.qmp.quit();
        if self.guard.wait_timeout(timeout).is_some() {
            return Ok(());
        }
        self.guard.kill();
        asked?;
        Err(VmError::Guest(format!(
            "{} did not exit within {} s of QMP quit; killed",
            self.name,
            timeout.as_secs()
        )))
    }

    /// Kill QEMU at once (a power cut, as far as the guest is concerned).
    pub fn kill(mut self) {
        self.guard.kill();
    }
}

fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

fn console_says_ready(console: &Path) -> bool {
    log_has(console, "powercut: ready")
}

/// What init.sh prints before a problem the guest cannot boot past.
pub const FATAL_PREFIX: &str = "powercut: fatal: ";

/// The first `powercut: fatal:` line of the console, without the prefix.
fn fatal_line(console: &Path) -> Option<String> {
    let bytes = std::fs::read(console).ok()?;
    first_fatal(&String::from_utf8_lossy(&bytes))
}

/// The first `powercut: fatal:` line of console text, without the prefix (pure).
pub fn first_fatal(console: &str) -> Option<String> {
    console.lines().find_map(|l| {
        let at = l.find(FATAL_PREFIX)?;
        Some(l[at + FATAL_PREFIX.len()..].trim().to_owned())
    })
}

fn exit_error(
    status: std::process::ExitStatus,
    when: &str,
    qemu_log: &Path,
    console: &Path,
) -> VmError {
    let console_text = console_tail(console, TAIL_LINES);
    // The panic line comes before its (long) call trace: search the whole console, and put
    // the panic line first so the message says why.
    let full = std::fs::read(console).unwrap_or_default();
    let full = String::from_utf8_lossy(&full);
    if let Some(panic_line) = full.lines().find(|l| l.contains("Kernel panic")) {
        return VmError::GuestPanic {
            when: when.to_owned(),
            console: format!("{}\n...\n{console_text}", panic_line.trim()),
        };
    }
    VmError::QemuDied {
        status: status.to_string(),
        when: when.to_owned(),
        qemu_log: console_tail(qemu_log, TAIL_LINES),
        console: console_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fatal_line_is_found_without_its_prefix() {
        let console = "[    1.2] nfit ACPI0012:00: probe\n\
powercut: pmem0 dax=1\n\
ip: can't find device 'eth0'\n\
powercut: fatal: no network device eth0 (virtio_net and virtio_pci?)\n\
powercut: fatal: second\n\
powercut: ready\n";

        assert_eq!(
            first_fatal(console).as_deref(),
            Some("no network device eth0 (virtio_net and virtio_pci?)")
        );
        assert_eq!(
            first_fatal("powercut: ready\npowercut: insmod x failed\n"),
            None
        );
    }
}
