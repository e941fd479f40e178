//! Building the static guest agent binary from this workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageError;

/// The musl target, used when `rustup target add x86_64-unknown-linux-musl` has been done.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Build `powercut-agent` statically (musl if its std is installed, else glibc with
/// `+crt-static`) and return the path of the binary.
pub fn build_agent(workspace: &Path) -> Result<PathBuf, ImageError> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let musl = musl_installed();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--quiet", "-p", "guest-agent"]);
    let bin = if musl {
        cmd.args(["--target", MUSL_TARGET]);
        target_dir.join(MUSL_TARGET).join("release/powercut-agent")
    } else {
        // A separate target dir so the crt-static flags do not invalidate the host build.
        let static_dir = target_dir.join("agent-static");
        cmd.arg("--target-dir").arg(&static_dir);
        cmd.args(["--target", "x86_64-unknown-linux-gnu"]);
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
        static_dir.join("x86_64-unknown-linux-gnu/release/powercut-agent")
    };
    let out = cmd
        .output()
        .map_err(|e| ImageError::Agent(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(ImageError::Agent(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    if !bin.exists() {
        return Err(ImageError::Agent(format!(
            "cargo succeeded but {} is missing",
            bin.display()
        )));
    }
    Ok(bin)
}

fn musl_installed() -> bool {
    Command::new("rustc")
        .args(["--print", "target-libdir", "--target", MUSL_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| {
            std::fs::read_dir(dir)
                .map(|mut d| {
                    d.any(|e| {
                        e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
                    })
                })
                .unwrap_or(false)
        })
}
