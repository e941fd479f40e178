//! The initramfs tree: host programs with their shared libraries, kernel modules, the agent,
//! the init script, and packing it as a newc cpio archive.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ImageError;

/// Host programs copied into the guest (with their libraries), and where they go.
pub const GUEST_PROGRAMS: &[(&str, &str)] = &[
    ("/bin/busybox", "bin/busybox"),
    ("/usr/sbin/dropbear", "sbin/dropbear"),
    ("/usr/sbin/mke2fs", "sbin/mke2fs"),
    ("/usr/sbin/mkfs.xfs", "sbin/mkfs.xfs"),
];

/// Largest file copied into an initramfs (a module, a program, a library), in bytes.
pub const MAX_PART_BYTES: u64 = 256 << 20;

/// A staging directory being filled with the guest's root file system.
pub struct InitramfsTree {
    root: PathBuf,
    libs: BTreeSet<PathBuf>,
}

/// Shared libraries named in `ldd` output (absolute paths only).
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

impl InitramfsTree {
    /// Start an empty tree at `root` with the usual directories.
    pub fn new(root: &Path) -> Result<Self, ImageError> {
        for d in [
            "bin",
            "sbin",
            "etc/powercut",
            "proc",
            "sys",
            "dev",
            "tmp",
            "run",
            "mnt",
            "root/.ssh",
            "lib/modules",
            "usr/bin",
            "usr/sbin",
            "var/log",
        ] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| ImageError::io(&p, e))?;
        }
        Ok(InitramfsTree {
            root: root.to_owned(),
            libs: BTreeSet::new(),
        })
    }

    /// Copy a host file to `dest` (relative to the root) with mode `mode`. `src` must be a
    /// regular file of at most [`MAX_PART_BYTES`] (a module tree's `.ko` that is a symlink
    /// to `/dev/zero` is refused, never copied forever); `dest` a plain relative path.
    pub fn copy(&self, src: &Path, dest: &str, mode: u32) -> Result<(), ImageError> {
        crate::input::check_regular(src, MAX_PART_BYTES, "initramfs part").map_err(|e| {
            ImageError::KernelInput {
                path: src.to_owned(),
                why: e.to_string(),
            }
        })?;
        if dest.split('/').any(|c| c == ".." || c.is_empty()) || dest.starts_with('/') {
            return Err(ImageError::KernelInput {
                path: src.to_owned(),
                why: format!("`{dest}` is not a plain path inside the image"),
            });
        }
        let to = self.root.join(dest);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
        }
        std::fs::copy(src, &to).map_err(|e| ImageError::io(src, e))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ImageError::io(&to, e))
    }

    /// Write `contents` to `dest` with mode `mode`.
    pub fn write(&self, dest: &str, contents: &[u8], mode: u32) -> Result<(), ImageError> {
        let to = self.root.join(dest);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
        }
        std::fs::write(&to, contents).map_err(|e| ImageError::io(&to, e))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ImageError::io(&to, e))
    }

    /// Copy a dynamically linked host program and every library `ldd` says it needs.
    pub fn add_program(&mut self, src: &Path, dest: &str) -> Result<(), ImageError> {
        if !src.exists() {
            return Err(ImageError::HostProgramMissing {
                program: src.to_owned(),
            });
        }
        self.copy(src, dest, 0o755)?;
        let mut cmd = Command::new("ldd");
        cmd.arg(src);
        crate::host::process::die_with_parent(&mut cmd);
        let out = cmd.output().map_err(|e| ImageError::Tool {
            tool: "ldd".into(),
            detail: e.to_string(),
        })?;
        // A static binary makes ldd exit 1 ("not a dynamic executable"): no libraries.
        for lib in parse_ldd(&String::from_utf8_lossy(&out.stdout)) {
            if self.libs.insert(lib.clone()) {
                let dest = lib.to_string_lossy().trim_start_matches('/').to_owned();
                self.copy(&lib, &dest, 0o755)?;
            }
        }
        Ok(())
    }

    /// Pack the tree into a newc cpio archive at `out` (uncompressed: fastest to unpack
    /// under TCG).
    pub fn pack(&self, out: &Path) -> Result<(), ImageError> {
        let mut cmd = Command::new("find");
        cmd.arg(".").current_dir(&self.root);
        crate::host::process::die_with_parent(&mut cmd);
        let list = cmd.output().map_err(|e| ImageError::Tool {
            tool: "find".into(),
            detail: e.to_string(),
        })?;
        let file = std::fs::File::create(out).map_err(|e| ImageError::io(out, e))?;
        let mut cmd = Command::new("cpio");
        cmd.args(["-o", "-H", "newc", "-R", "0:0", "--quiet"])
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(file)
            .stderr(Stdio::piped());
        crate::host::process::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| ImageError::Tool {
            tool: "cpio (install it with ci/setup)".into(),
            detail: e.to_string(),
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(&list.stdout)
                .map_err(|e| ImageError::io(out, e))?;
        }
        let res = child
            .wait_with_output()
            .map_err(|e| ImageError::io(out, e))?;
        if !res.status.success() {
            return Err(ImageError::Tool {
                tool: "cpio".into(),
                detail: String::from_utf8_lossy(&res.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_absolute_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x7f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn static_binaries_need_no_libraries() {
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }
}
