//! Running a host tool to completion: its status checked, its stderr quoted on failure.

use std::process::Command;

/// A host tool that could not be started or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool}: {detail}")]
pub struct ToolError {
    /// What ran (`cpio`, `mkfs.ext4`, `make`, …).
    pub tool: String,
    /// Why it failed: the spawn error, or the status and stderr.
    pub detail: String,
}

/// Run `cmd` (called `what` in errors) to completion; an error names the status and stderr.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), ToolError> {
    let out = cmd.output().map_err(|e| ToolError {
        tool: what.to_owned(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ToolError {
            tool: what.to_owned(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}
