//! Running a host tool to completion: under a [`ChildGuard`] (its own process group, killed
//! with powercut and on every error path), bounded by [`TOOL_TIMEOUT`], its output's tail
//! quoted on failure.

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
    let tool = |detail: String| ToolError {
        tool: what.to_owned(),
        detail,
    };
    let mut out = tempfile::tempfile().map_err(|e| tool(e.to_string()))?;
    let err = out.try_clone().map_err(|e| tool(e.to_string()))?;
    let outc = out.try_clone().map_err(|e| tool(e.to_string()))?;
    let mut child =
        ChildGuard::spawn_with(cmd, outc.into(), err.into()).map_err(|e| tool(e.to_string()))?;
    let status = child.wait_timeout(TOOL_TIMEOUT);
    let mut bytes = Vec::new();
    let _ = out.rewind();
    let _ = out.take(64 << 10).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(tool(format!("{s}: {}", text.trim()))),
        None => {
            child.kill();
            Err(tool(format!(
                "did not finish within {} s; killed: {}",
                TOOL_TIMEOUT.as_secs(),
                text.trim()
            )))
        }
    }
}
