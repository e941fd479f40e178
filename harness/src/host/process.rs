//! The child process guard (QEMU and every helper tool: dpkg-deb, make, depmod, fsck): own
//! process group, SIGINT ignored (so a terminal Ctrl-C does not kill it before an orderly
//! stop), killed with us (PR_SET_PDEATHSIG), and killed and reaped on drop.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Process groups of every live guarded child, for the emergency stop (second Ctrl-C).
static LIVE: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// SIGKILL every live guarded child's process group (used on the second Ctrl-C, just
/// before exiting; the guards cannot run their drops then).
pub fn kill_all() {
    let pids = LIVE.lock().map(|v| v.clone()).unwrap_or_default();
    for pid in pids {
        // SAFETY: kill(2) on our own children's process groups.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Make `cmd` run in its own process group (so a guard can kill it with every helper it
/// starts) with SIGINT ignored, and die with this process even when it is SIGKILLed (no
/// destructor runs then): PR_SET_PDEATHSIG. It fires when the spawning *thread* exits:
/// guards are dropped on the thread that created them, so that is never earlier than the
/// guard's own drop.
pub fn die_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure only calls async-signal-safe functions (signal, prctl, getppid,
    // _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                // The parent died before prctl took effect.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// How long to wait for a killed QEMU to be reaped before giving up on it.
pub const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running child process that is killed (whole process group) and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    pid: i32,
    exit: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawn `cmd` in its own process group with SIGINT ignored, stdin closed and
    /// stdout+stderr appended to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> std::io::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        Self::spawn_with(cmd, Stdio::from(out), Stdio::from(err))
    }

    /// Spawn `cmd` like [`ChildGuard::spawn`], with its stdout and stderr as given (e.g. a
    /// pipe for stdout, taken with [`ChildGuard::take_stdout`]).
    pub fn spawn_with(cmd: &mut Command, stdout: Stdio, stderr: Stdio) -> std::io::Result<Self> {
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        die_with_parent(cmd);
        let child = cmd.spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        if let Ok(mut live) = LIVE.lock() {
            live.push(pid);
        }
        Ok(ChildGuard {
            child: Some(child),
            pid,
            exit: None,
        })
    }

    /// The child's stdout, if it was spawned with a pipe there (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Process id.
    #[cfg(test)]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The exit status if the process has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.exit = Some(st);
                }
            }
        }
        self.exit
    }

    /// Wait up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_exit() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the process group and reap the child (bounded by [`REAP_TIMEOUT`]).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.try_exit().is_none() {
            // SAFETY: kill(2) with a negative pid signals our child's own process group.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            self.wait_timeout(REAP_TIMEOUT);
        }
        // The group may still hold helpers the child started; make sure they die too.
        // SAFETY: as above.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
        self.exit
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.kill();
        }
        if self.exit.is_none() {
            tracing::warn!(pid = self.pid, "child did not exit after SIGKILL");
        }
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|&p| p != self.pid);
        }
        self.child.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_kills_and_reaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = ChildGuard::spawn(Command::new("sleep").arg("1000"), &dir.path().join("log"))
            .expect("spawn sleep");
        let pid = g.pid();
        drop(g);
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "pid {pid} still exists after drop");
    }

    #[test]
    fn exit_status_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut g = ChildGuard::spawn(
            Command::new("sh").args(["-c", "echo hi; exit 3"]),
            &dir.path().join("log"),
        )
        .expect("spawn sh");
        let st = g.wait_timeout(Duration::from_secs(10)).expect("exits");
        assert_eq!(st.code(), Some(3));
        let log = std::fs::read_to_string(dir.path().join("log")).expect("log");
        assert_eq!(log.trim(), "hi");
    }
}
