//! Building the static guest agent binary from this workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageError;

/// The target the agent is built for. Naming it with `--target` (even though it is the
/// host's) makes cargo apply `RUSTFLAGS` to the agent only, not to host artifacts such as
/// proc-macros and build scripts, which cannot be linked statically.
pub const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The flags that make the glibc build static (a static-pie with no ELF interpreter).
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// Build `powercut-agent` as a static glibc binary (one build path on every machine: no
/// extra rust target needed) and return the path of the binary, checked to have no ELF
/// interpreter.
pub fn build_agent(workspace: &Path) -> Result<PathBuf, ImageError> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    // A separate target dir so the crt-static flags do not invalidate the host build.
    let static_dir = target_dir.join("agent-static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "--quiet", "-p", "guest-agent"])
        .args(["--target", AGENT_TARGET])
        .arg("--target-dir")
        .arg(&static_dir)
        // CARGO_ENCODED_RUSTFLAGS would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .output()
        .map_err(|e| ImageError::Agent(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(ImageError::Agent(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let bin = static_dir.join(AGENT_TARGET).join("release/powercut-agent");
    let bytes = std::fs::read(&bin).map_err(|e| {
        ImageError::Agent(format!(
            "cargo succeeded but {} is unreadable: {e}",
            bin.display()
        ))
    })?;
    match has_interpreter(&bytes) {
        Ok(false) => Ok(bin),
        Ok(true) => Err(ImageError::Agent(format!(
            "{} is dynamically linked (it has an ELF interpreter) although it was built with \
             {STATIC_RUSTFLAGS}; the guest has no dynamic loader",
            bin.display()
        ))),
        Err(why) => Err(ImageError::Agent(format!("{}: {why}", bin.display()))),
    }
}

/// Whether the 64-bit little-endian ELF file `elf` names a program interpreter (a
/// `PT_INTERP` program header): dynamically linked executables do, static ones do not.
pub fn has_interpreter(elf: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    if elf.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let truncated = || "truncated ELF header".to_string();
    let u16_at = |off: usize| -> Result<usize, String> {
        let b = elf.get(off..off + 2).ok_or_else(truncated)?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let phoff = elf
        .get(0x20..0x28)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(truncated)?;
    let phentsize = u16_at(0x36)?;
    let phnum = u16_at(0x38)?;
    if phentsize < 4 {
        return Err(format!("program header entries of {phentsize} bytes"));
    }
    for i in 0..phnum {
        let start = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(truncated)?;
        let p_type = start
            .checked_add(4)
            .and_then(|end| elf.get(start..end))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| "truncated program headers".to_string())?;
        if p_type == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with program headers of the given types.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&u16::try_from(types.len()).expect("few").to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn an_interpreter_header_means_dynamic() {
        let dynamic = elf(&[6, 3, 1, 2]);
        let static_pie = elf(&[6, 1, 2, 0x6474_e551]);

        assert_eq!(has_interpreter(&dynamic), Ok(true));
        assert_eq!(has_interpreter(&static_pie), Ok(false));
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let mut truncated = elf(&[1, 3]);
        truncated.truncate(64 + 56 + 2);
        let mut huge_offset = elf(&[1]);
        huge_offset[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());

        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        assert!(has_interpreter(&elf(&[])[..0x30]).is_err());
        assert!(has_interpreter(&truncated).is_err());
        assert!(has_interpreter(&huge_offset).is_err());
    }

    #[test]
    fn the_host_shell_is_dynamic() {
        let sh = std::fs::read("/bin/sh").expect("read /bin/sh");

        assert_eq!(has_interpreter(&sh), Ok(true));
    }
}
