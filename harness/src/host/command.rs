//! Running a host tool to completion: under a [`ChildGuard`] (its own process group, killed
//! with powercut and on every error path), bounded by [`TOOL_TIMEOUT`] (or a shorter
//! timeout), its output's tail quoted on failure; [`output`] also returns its standard
//! output, bounded.

use std::io::{Read, Seek};
use std::process::Command;
use std::time::Duration;

use super::process::ChildGuard;

/// Longest a helper tool (`dpkg-deb`, `depmod`, `make` of a module, `ssh-keygen`) may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A host tool that could not be started, failed or ran too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool}: {detail}")]
pub struct ToolError {
    /// What ran (`cpio`, `mkfs.ext4`, `make`, …).
    pub tool: String,
    /// Why it failed: the spawn error, or the status and the output's tail.
    pub detail: String,
}

/// Run `cmd` (called `what` in errors) to completion under a [`ChildGuard`], bounded by
/// [`TOOL_TIMEOUT`]. Its output goes to an unnamed temporary file (nothing is left behind),
/// whose tail is the error's detail.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), ToolError> {
    run_inner(cmd, what, TOOL_TIMEOUT, None).map(drop)
}

/// Run `cmd` like [`run`] within `timeout`, and return its standard output (at most `max`
/// bytes: more is an error). Its standard error is the error's detail on failure.
pub fn output(
    cmd: &mut Command,
    what: &str,
    timeout: Duration,
    max: u64,
) -> Result<Vec<u8>, ToolError> {
    run_inner(cmd, what, timeout, Some(max))
}

fn run_inner(
    cmd: &mut Command,
    what: &str,
    timeout: Duration,
    stdout_max: Option<u64>,
) -> Result<Vec<u8>, ToolError> {
    let tool = |detail: String| ToolError {
        tool: what.to_owned(),
        detail,
    };
    // `out` holds what the error quotes (both streams for `run`, standard error for
    // `output`); `stdout` the output `output` returns.
    let mut out = tempfile::tempfile().map_err(|e| tool(e.to_string()))?;
    let err = out.try_clone().map_err(|e| tool(e.to_string()))?;
    let mut stdout = match stdout_max {
        Some(_) => tempfile::tempfile().map_err(|e| tool(e.to_string()))?,
        None => out.try_clone().map_err(|e| tool(e.to_string()))?,
    };
    let outc = stdout.try_clone().map_err(|e| tool(e.to_string()))?;
    let mut child =
        ChildGuard::spawn_with(cmd, outc.into(), err.into()).map_err(|e| tool(e.to_string()))?;
    let status = child.wait_timeout(timeout);
    let mut bytes = Vec::new();
    let _ = out.rewind();
    let _ = out.take(64 << 10).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    match status {
        Some(s) if s.success() => match stdout_max {
            None => Ok(Vec::new()),
            Some(max) => {
                let mut got = Vec::new();
                let _ = stdout.rewind();
                stdout
                    .take(max.saturating_add(1))
                    .read_to_end(&mut got)
                    .map_err(|e| tool(e.to_string()))?;
                if got.len() as u64 > max {
                    return Err(tool(format!("printed more than the {max} bytes accepted")));
                }
                Ok(got)
            }
        },
        Some(s) => Err(tool(format!("{s}: {}", text.trim()))),
        None => {
            child.kill();
            Err(tool(format!(
                "did not finish within {} s; killed: {}",
                timeout.as_secs(),
                text.trim()
            )))
        }
    }
}
