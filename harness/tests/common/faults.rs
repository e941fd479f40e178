//! Fault-injection kit for `tests/faults.rs`: drive the `powercut` binary as a black box,
//! find the QEMU processes it started, cut their SSH connections, give it a full disk, and
//! read back what its run directory recorded. Nothing here asserts; the tests do.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a one- or two-seed smoke campaign may take here (TCG, 2 cores: about 15 s per
/// seed, plus a checker boot) before a test gives up on it.
pub const CAMPAIGN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long QEMU may take to disappear after its harness exited or was SIGKILLed
/// (`PR_SET_PDEATHSIG` fires at once; the kernel still has to tear the process down).
pub const QEMU_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the watchers look at processes, sockets and files.
pub const POLL: Duration = Duration::from_millis(10);

/// A campaign config in the contract's YAML keys.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// `seeds:`, e.g. `"1..3"`.
    pub seeds: &'static str,
    /// `mutant:`, e.g. `Some("m5")`.
    pub mutant: Option<&'static str>,
    /// `min_free_mib:`; `None` leaves the key out (the engine's default).
    pub min_free_mib: Option<u64>,
    /// `workloads:`, paths relative to the checkout's root (written absolute).
    pub workloads: &'static [&'static str],
}

impl FaultConfig {
    /// Stock kernel, smoke profile, one worker, one checker, crash points after the
    /// durability ops only: no inside-op points (they depend on timing) and no random ones
    /// (fewer checks, a shorter test).
    pub fn smoke(seeds: &'static str) -> Self {
        FaultConfig {
            seeds,
            mutant: None,
            min_free_mib: None,
            workloads: &[],
        }
    }

    /// The YAML text.
    pub fn yaml(&self) -> String {
        let mut y = format!(
            "seeds: \"{}\"\nprofile: smoke\nworkers: 1\ncheckers: 1\nmutant: {}\n\
             crash_points:\n  after_durability_ops: true\n  random_after: 0\n  inside: 0\n",
            self.seeds,
            self.mutant.unwrap_or("null"),
        );
        if let Some(m) = self.min_free_mib {
            y.push_str(&format!("min_free_mib: {m}\n"));
        }
        if !self.workloads.is_empty() {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root");
            y.push_str("workloads:\n");
            for w in self.workloads {
                y.push_str(&format!("  - \"{}\"\n", root.join(w).display()));
            }
        }
        y
    }

    /// Write the YAML to `path` and return `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.yaml()).expect("write campaign config");
        path.to_owned()
    }
}

/// A `powercut campaign` child process; SIGKILLed and reaped if dropped while running (its
/// QEMU processes die with it).
pub struct Campaign {
    child: Child,
    log: PathBuf,
    started: Instant,
    status: Option<ExitStatus>,
}

/// How a campaign ended.
#[derive(Debug)]
pub struct Ended {
    /// Exit code; `None` if it did not finish within the timeout (it was then SIGKILLed) or
    /// died of a signal.
    pub code: Option<i32>,
    /// stdout and stderr, interleaved.
    pub output: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Campaign {
    /// Start `powercut campaign --config CONFIG --output DIR [--resume]`, its stdout and
    /// stderr going to `log` (keep `log` outside `DIR`: a full `DIR` must not lose it).
    pub fn start(config: &Path, dir: &Path, resume: bool, log: &Path) -> Campaign {
        let out = File::create(log).expect("create campaign log");
        let err = out.try_clone().expect("clone log handle");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_powercut"));
        cmd.arg("campaign")
            .arg("--config")
            .arg(config)
            .arg("--output")
            .arg(dir);
        if resume {
            cmd.arg("--resume");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn powercut campaign");
        Campaign {
            child,
            log: log.to_owned(),
            started: Instant::now(),
            status: None,
        }
    }

    /// Run a campaign to its end (or [`CAMPAIGN_TIMEOUT`]).
    pub fn run(config: &Path, dir: &Path, resume: bool, log: &Path) -> Ended {
        let mut c = Campaign::start(config, dir, resume, log);
        c.finish(CAMPAIGN_TIMEOUT)
    }

    /// Time since the harness was spawned.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Is the harness still running?
    pub fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait campaign");
        }
        self.status.is_none()
    }

    /// SIGKILL the harness (not its QEMU: those must die by themselves) and reap it.
    pub fn sigkill(&mut self) {
        if self.running() {
            self.child.kill().expect("SIGKILL campaign");
            self.status = Some(self.child.wait().expect("reap campaign"));
        }
    }

    /// Wait up to `timeout` for the harness to exit (SIGKILL it past that) and collect what
    /// it printed.
    pub fn finish(&mut self, timeout: Duration) -> Ended {
        while self.running() && self.started.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(50));
        }
        let timed_out = self.running();
        self.sigkill();
        let elapsed = self.started.elapsed();
        let mut output = std::fs::read_to_string(&self.log).unwrap_or_default();
        if timed_out {
            output.push_str(&format!(
                "\n[fault test: no exit within {} s; SIGKILLed]",
                timeout.as_secs()
            ));
        }
        Ended {
            code: if timed_out {
                None
            } else {
                self.status.and_then(|s| s.code())
            },
            output,
            elapsed,
        }
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// `powercut ARGS…` to completion: exit code and stdout+stderr.
pub fn powercut(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args(args)
        .output()
        .expect("run powercut");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A running QEMU process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// Process id.
    pub pid: i32,
    /// Its arguments joined by spaces.
    pub cmdline: String,
}

impl Qemu {
    /// The host port forwarded to the guest's SSH (`hostfwd=tcp:127.0.0.1:PORT-:22`).
    pub fn ssh_port(&self) -> Option<u16> {
        let rest = self.cmdline.split("hostfwd=tcp:127.0.0.1:").nth(1)?;
        rest.split('-').next()?.parse().ok()
    }

    /// SIGKILL this QEMU (a process the campaign under test started). False if it was gone.
    pub fn sigkill(&self) -> bool {
        // SAFETY: kill(2) on a pid we just read from /proc; at worst it is gone (ESRCH).
        unsafe { libc::kill(self.pid, libc::SIGKILL) == 0 }
    }
}

/// Live QEMU processes whose command line contains every one of `needles`. Read from
/// `/proc` directly (zombies have an empty command line and are not listed).
pub fn qemus_with(needles: &[&str]) -> Vec<Qemu> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_qemu = args.first().is_some_and(|a| a.contains("qemu-system"));
        let cmdline = args.join(" ");
        if is_qemu && needles.iter().all(|n| cmdline.contains(n)) {
            found.push(Qemu { pid, cmdline });
        }
    }
    found
}

/// Poll `probe` every [`POLL`] until it yields a value or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// QEMU processes still mentioning `dir` once [`QEMU_EXIT_TIMEOUT`] has passed (or at once
/// if there are none).
pub fn qemu_left_after_exit(dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + QEMU_EXIT_TIMEOUT;
    loop {
        let left = crate::common::qemu_processes_with(dir);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Cut every host-side TCP connection to `127.0.0.1:port` with `ss -K` (SOCK_DESTROY: the
/// local socket is aborted, the peer gets a reset). Returns how many sockets were cut.
pub fn cut_tcp_connections_to(port: u16) -> usize {
    let port = format!(":{port}");
    let out = Command::new("ss")
        .args(["-K", "-H", "-t", "dst", "127.0.0.1", "dport", "=", &port])
        .output()
        .expect("run ss -K");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Files under `dir` (recursively) whose name ends with `suffix`.
pub fn files_ending_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// `DIR/report.json`, parsed (JSON null if it is missing or unreadable).
pub fn report(dir: &Path) -> serde_json::Value {
    std::fs::read(dir.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `report.json` totals in the contract: `[seeds, checks, passed, failures, infra]` (null
/// where a field is missing).
pub fn totals(report: &serde_json::Value) -> [serde_json::Value; 5] {
    let t = &report["totals"];
    ["seeds", "checks", "passed", "failures", "infra"].map(|k| t[k].clone())
}

/// One `report.json` total as a number (0 if missing).
pub fn total(report: &serde_json::Value, key: &str) -> u64 {
    report["totals"][key].as_u64().unwrap_or(0)
}

/// Every failure of `report.json`: each bucket's id with the title of each of its
/// instances (`bucket | title`).
pub fn failure_titles(report: &serde_json::Value) -> BTreeSet<String> {
    report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| {
            let bucket = f["bucket"].as_str().unwrap_or("?").to_owned();
            f["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |i| i["title"].as_str().map(|t| format!("{bucket} | {t}")))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The journal of a run directory, as bytes (empty if there is none).
pub fn journal_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("journal.jsonl")).unwrap_or_default()
}

/// The journal's complete lines: everything up to and including its last newline (a torn
/// last line is left out).
pub fn complete_lines(journal: &[u8]) -> &[u8] {
    let end = journal
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    &journal[..end]
}

/// Journal lines that mention `event` (e.g. `seed_started`).
pub fn journal_events(dir: &Path, event: &str) -> usize {
    String::from_utf8_lossy(&journal_bytes(dir))
        .lines()
        .filter(|l| l.contains(&format!("\"{event}\"")))
        .count()
}

/// Copy a run directory (`cp -a`).
pub fn copy_run_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp")
        .success();
    if !ok {
        panic!("fixture: cp -a {} {} failed", from.display(), to.display());
    }
}

/// A tmpfs of a given size mounted on a fresh temporary directory (tests run as root).
/// Dropping it SIGKILLs any QEMU still using it (by pid: only the campaign under test can
/// have started one there) and unmounts it, also when the test failed.
pub struct Tmpfs {
    path: PathBuf,
    _mountpoint_parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a `size_mib` MiB tmpfs.
    pub fn mount(size_mib: u64) -> Tmpfs {
        let parent = tempfile::tempdir().expect("tempdir");
        let path = parent.path().join("tmpfs");
        std::fs::create_dir(&path).expect("mountpoint");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount")
            .success();
        if !ok {
            panic!(
                "fixture: mount -t tmpfs on {} failed (needs root)",
                path.display()
            );
        }
        Tmpfs {
            path,
            _mountpoint_parent: parent,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for q in qemus_with(&[&self.path.to_string_lossy()]) {
            q.sigkill();
        }
        wait_for(QEMU_EXIT_TIMEOUT, || {
            qemus_with(&[&self.path.to_string_lossy()])
                .is_empty()
                .then_some(())
        });
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        let lazily = || {
            Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !unmounted && !lazily() {
            eprintln!(
                "fault test: could not unmount the tmpfs {}",
                self.path.display()
            );
        }
    }
}
