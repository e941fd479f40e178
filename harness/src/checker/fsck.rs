//! Host-side file system check of a recovered pmem image, read-only (`e2fsck -fn`,
//! `xfs_repair -n`), never mounting it on the host. The image is untrusted: each check runs
//! in its own process group under [`FSCK_TIMEOUT`] and is killed (with its group) past it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::host::process::ChildGuard;
use crate::image::Filesystem;

/// Longest the host check of one recovered image may take, all steps together (the
/// `dd` copy and `xfs_repair -n` for xfs). A healthy 256 MiB image takes well under a second.
pub const FSCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Most bytes of a checker's output kept for the verdict's detail.
const MAX_OUTPUT_BYTES: u64 = 64 << 10;

/// Why the host check of a recovered image did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsckError {
    /// The checker ran and found the file system damaged (or could not read it at all).
    #[error("{0}")]
    Corrupt(String),
    /// The check itself failed: a tool is missing, a copy failed, or it ran past its
    /// deadline. Nothing was decided about the image.
    #[error("{0}")]
    Infra(String),
}

/// What a bounded command did.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    /// Its stdout and stderr, interleaved, cut at [`MAX_OUTPUT_BYTES`].
    output: String,
}

/// Offset of the file system inside the pmem backing file: the fsdax namespace puts its pfn
/// info block first. Found by looking for the superblock magic at 4 KiB steps.
pub fn fs_offset(fs: Filesystem, pmem: &Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(pmem).ok()?;
    let mut buf = [0u8; 4096];
    for i in 0..4096u64 {
        let off = i * 4096;
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut buf).ok()?;
        let hit = match fs {
            Filesystem::Ext4 => buf[1024 + 56] == 0x53 && buf[1024 + 57] == 0xEF,
            Filesystem::Xfs => &buf[..4] == b"XFSB",
        };
        if hit {
            return Some(off);
        }
    }
    None
}

/// Check the file system in `pmem` within [`FSCK_TIMEOUT`].
pub fn check_image(fs: Filesystem, pmem: &Path) -> Result<(), FsckError> {
    let Some(off) = fs_offset(fs, pmem) else {
        return Err(FsckError::Corrupt(
            "no superblock found in the recovered image".into(),
        ));
    };
    let deadline = Instant::now()
        .checked_add(FSCK_TIMEOUT)
        .ok_or_else(|| FsckError::Infra("the clock cannot represent the fsck deadline".into()))?;
    let scratch = tempfile::tempdir()
        .map_err(|e| FsckError::Infra(format!("cannot create a temp dir for fsck: {e}")))?;
    let (what, done) = match fs {
        Filesystem::Ext4 => {
            let mut cmd = Command::new("e2fsck");
            cmd.arg("-fn")
                .arg(format!("{}?offset={off}", pmem.display()));
            (
                "e2fsck -fn",
                run_bounded(&mut cmd, deadline, scratch.path())?,
            )
        }
        Filesystem::Xfs => {
            let copy = tempfile::NamedTempFile::new().map_err(|e| {
                FsckError::Infra(format!("cannot create a temp file for xfs_repair: {e}"))
            })?;
            let mut dd = Command::new("dd");
            dd.arg(format!("if={}", pmem.display()))
                .arg(format!("of={}", copy.path().display()))
                .args(["bs=1M", "iflag=skip_bytes", "conv=sparse", "status=none"])
                .arg(format!("skip={off}"));
            let copied = run_bounded(&mut dd, deadline, scratch.path())?;
            if !copied.status.success() {
                return Err(FsckError::Infra(format!(
                    "copying the xfs region for xfs_repair failed ({}): {}",
                    copied.status, copied.output
                )));
            }
            let mut repair = Command::new("xfs_repair");
            repair.arg("-n").arg("-f").arg(copy.path());
            (
                "xfs_repair -n",
                run_bounded(&mut repair, deadline, scratch.path())?,
            )
        }
    };
    if done.status.success() {
        Ok(())
    } else {
        Err(FsckError::Corrupt(format!(
            "{what} (exit {}):\n{}",
            done.status.code().unwrap_or(-1),
            done.output
        )))
    }
}

/// Run `cmd` with stdin closed and stdout+stderr captured in a file under `scratch`, in its
/// own process group, until it exits or `deadline` passes; past it the group is killed and
/// reaped, and the error says so.
fn run_bounded(
    cmd: &mut Command,
    deadline: Instant,
    scratch: &Path,
) -> Result<Finished, FsckError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    // One log per program: `scratch` is fresh for each image.
    let log = scratch.join(format!("{}.log", program.replace('/', "_")));
    let mut child = ChildGuard::spawn(cmd, &log).map_err(|e| {
        FsckError::Infra(format!(
            "cannot run {program} (install e2fsprogs/xfsprogs with ci/setup): {e}"
        ))
    })?;
    let left = deadline.saturating_duration_since(Instant::now());
    let Some(status) = child.wait_timeout(left) else {
        drop(child);
        return Err(FsckError::Infra(format!(
            "{program} did not finish within the {} s fsck limit (killed); nothing was decided \
             about this image",
            FSCK_TIMEOUT.as_secs()
        )));
    };
    Ok(Finished {
        status,
        output: read_output(&log),
    })
}

/// The start of a captured output file, at most [`MAX_OUTPUT_BYTES`].
fn read_output(log: &Path) -> String {
    let mut bytes = Vec::new();
    let read =
        std::fs::File::open(log).and_then(|f| f.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return format!("(output unreadable: {e})");
    }
    let cut = u64::try_from(bytes.len()).is_ok_and(|n| n > MAX_OUTPUT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        text.push_str("\n… (output cut)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_secs(s: f64) -> Instant {
        Instant::now() + Duration::from_secs_f64(s)
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");

        let start = Instant::now();
        let r = run_bounded(&mut cmd, in_secs(0.3), dir.path());
        let took = start.elapsed();

        let err = r.expect_err("must time out");
        assert!(matches!(err, FsckError::Infra(_)), "{err:?}");
        assert!(
            err.to_string().contains("sleep did not finish within"),
            "{err}"
        );
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn the_whole_process_group_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("grandchild.pid");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("sleep 30 & echo $! > {}; wait", pidfile.display()));

        let r = run_bounded(&mut cmd, in_secs(0.5), dir.path());

        assert!(r.is_err());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        assert!(!running(pid), "grandchild {pid} survived");
    }

    /// Whether `pid` exists and is not a zombie (a killed orphan stays one until its new
    /// parent reaps it).
    fn running(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X'))
        })
    }

    #[test]
    fn output_and_exit_status_are_captured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo to-stdout; echo to-stderr >&2; exit 4"]);

        let done = run_bounded(&mut cmd, in_secs(10.0), dir.path()).expect("runs");

        assert_eq!(done.status.code(), Some(4));
        assert!(done.output.contains("to-stdout") && done.output.contains("to-stderr"));
    }

    #[test]
    fn huge_output_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "head -c 1000000 /dev/zero | tr '\\0' x"]);

        let done = run_bounded(&mut cmd, in_secs(10.0), dir.path()).expect("runs");

        assert!(done.output.len() < 70_000, "{}", done.output.len());
        assert!(done.output.ends_with("(output cut)"));
    }

    #[test]
    fn a_missing_tool_is_an_infrastructure_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("/nonexistent/e2fsck");

        let err = run_bounded(&mut cmd, in_secs(10.0), dir.path()).expect_err("missing");

        assert!(matches!(err, FsckError::Infra(_)), "{err:?}");
        assert!(err.to_string().contains("ci/setup"), "{err}");
    }
}
