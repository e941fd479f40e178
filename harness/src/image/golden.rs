//! Golden pmem images: one freshly formatted fsdax NVDIMM backing file per (image, file
//! system, size), built once in a VM and copied for every run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{GuestImage, ImageError};
use crate::vm::{Accel, Vm, VmError, VmSpec};

/// File systems powercut tests on DAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    /// ext4 (4 KiB blocks, journal).
    Ext4,
    /// XFS (reflink off: not with DAX).
    Xfs,
}

impl Filesystem {
    /// Name as in mount(8).
    pub fn name(self) -> &'static str {
        match self {
            Filesystem::Ext4 => "ext4",
            Filesystem::Xfs => "xfs",
        }
    }

    /// Smallest pmem mkfs accepts (xfsprogs 6.1 refuses file systems under 300 MB).
    pub fn min_bytes(self) -> u64 {
        match self {
            Filesystem::Ext4 => 16 << 20,
            Filesystem::Xfs => 512 << 20,
        }
    }

    /// The guest command that formats `/dev/pmem0`. ext4 zeroes inode tables and journal
    /// now (lazy init changes pmem traffic 100× between identical runs) and needs 4 KiB
    /// blocks for DAX.
    pub fn mkfs_command(self) -> &'static str {
        match self {
            Filesystem::Ext4 => {
                "/sbin/mke2fs -F -q -t ext4 -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /dev/pmem0"
            }
            Filesystem::Xfs => "/sbin/mkfs.xfs -f -q -m reflink=0 /dev/pmem0",
        }
    }
}

impl std::fmt::Display for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A formatted, verified pmem backing file in the cache.
#[derive(Debug, Clone)]
pub struct GoldenImage {
    /// The file (never written to: copy it).
    pub path: PathBuf,
    /// File system on it.
    pub fs: Filesystem,
    /// Size in bytes.
    pub bytes: u64,
}

/// A scratch copy of a golden image (a VM's pmem backing file), deleted when dropped.
#[derive(Debug)]
pub struct GoldenCopy {
    path: PathBuf,
}

impl GoldenCopy {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for GoldenCopy {
    fn drop(&mut self) {
        // Scratch: a file that is already gone changes nothing.
        std::fs::remove_file(&self.path).ok();
    }
}

impl GoldenImage {
    /// A scratch copy at `to`, deleted when the returned value is dropped (also when the
    /// copy fails half-way).
    pub fn scratch_copy(&self, to: &Path) -> Result<GoldenCopy, ImageError> {
        scratch_pmem(&self.path, to)
    }

    /// Copy the golden image to `to` keeping holes (reflink where the file system can).
    pub fn copy_to(&self, to: &Path) -> Result<(), ImageError> {
        copy_pmem(&self.path, to)
    }
}

/// Copy a pmem file `from` to `to` keeping holes (reflink where the file system can).
pub fn copy_pmem(from: &Path, to: &Path) -> Result<(), ImageError> {
    super::kernel::run(
        std::process::Command::new("cp")
            .args(["--reflink=auto", "--sparse=always"])
            .arg(from)
            .arg(to),
        "cp pmem image",
    )
}

/// A scratch copy of the pmem file `from` at `to` (a golden image, a booted state's base),
/// deleted when the returned value is dropped (also when the copy fails half-way).
pub fn scratch_pmem(from: &Path, to: &Path) -> Result<GoldenCopy, ImageError> {
    let copy = GoldenCopy {
        path: to.to_owned(),
    };
    copy_pmem(from, to)?;
    Ok(copy)
}

/// The guest check that `/dev/pmem0` is mounted at `mnt` with DAX on: its `/proc/mounts`
/// line must carry `dax` (`dax=always` on 6.12, `dax` on older kernels).
pub fn dax_mount_check(mounts: &str, mnt: &str) -> Result<String, String> {
    let line = mounts
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("/dev/pmem0") && w.next() == Some(mnt)
        })
        .ok_or_else(|| format!("/dev/pmem0 is not mounted on {mnt}"))?;
    let opts = line.split_whitespace().nth(3).unwrap_or("");
    if opts.split(',').any(|o| o == "dax" || o == "dax=always") {
        Ok(line.to_owned())
    } else {
        Err(format!(
            "/dev/pmem0 on {mnt} is mounted without DAX: {line}"
        ))
    }
}

/// Mount `/dev/pmem0` on `mnt` with `-o dax` plus `extra` options and check the result.
pub fn mount_dax(vm: &mut Vm, fs: Filesystem, mnt: &str, extra: &str) -> Result<String, VmError> {
    let opts = if extra.is_empty() {
        "dax".to_owned()
    } else {
        format!("dax,{extra}")
    };
    vm.run(&format!(
        "mkdir -p {mnt} && mount -t {} -o {opts} /dev/pmem0 {mnt}",
        fs.name()
    ))?;
    let mounts = vm.run("cat /proc/mounts")?;
    dax_mount_check(&mounts, mnt).map_err(VmError::Guest)
}

/// Find or build the golden image for (`image`, `fs`, `bytes`).
pub fn golden_image(
    image: &GuestImage,
    fs: Filesystem,
    bytes: u64,
    accel: Accel,
    cache: &Path,
    debug: bool,
) -> Result<GoldenImage, ImageError> {
    let dir = cache.join("golden");
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let path = dir.join(format!("{}-{}-{}M.pmem", image.hash, fs, bytes >> 20));
    if bytes < fs.min_bytes() {
        return Err(ImageError::Golden {
            fs: fs.name().into(),
            cause: Box::new(VmError::Guest(format!(
                "{fs} needs a pmem of at least {} MiB (mkfs refuses smaller); use --pmem-mib {}",
                fs.min_bytes() >> 20,
                fs.min_bytes() >> 20
            ))),
        });
    }
    let golden = GoldenImage { path, fs, bytes };
    if golden.path.exists() {
        return Ok(golden);
    }
    // Named after this process: one left by a killed powercut is removed at the next start.
    crate::cache_dir::stale::sweep_dead_owners(&dir, ".golden-");
    let work = tempfile::Builder::new()
        .prefix(&crate::cache_dir::stale::owned_prefix(".golden-"))
        .tempdir_in(&dir)
        .map_err(|e| ImageError::io(&dir, e))?;
    let pmem = work.path().join("pmem");
    std::fs::File::create(&pmem)
        .and_then(|f| f.set_len(bytes))
        .map_err(|e| ImageError::io(&pmem, e))?;
    let mut spec = VmSpec::new("golden", image, &pmem, accel, work.path());
    spec.debug = debug;
    let wrap = |e: VmError| ImageError::Golden {
        fs: fs.name().into(),
        cause: Box::new(e),
    };
    let mut vm = Vm::boot(&spec).map_err(wrap)?;
    if !image.kernel_config_checked {
        if let Err(e) = check_running_config(&mut vm, image, fs) {
            vm.kill();
            return Err(e);
        }
    }
    let res = (|| -> Result<(), VmError> {
        vm.run("test -b /dev/pmem0 || { echo 'no /dev/pmem0 (nd_pmem/pfn setup failed)' >&2; exit 1; }")?;
        vm.run(fs.mkfs_command())?;
        mount_dax(&mut vm, fs, "/mnt", "")?;
        vm.run("umount /mnt && sync")?;
        Ok(())
    })();
    if let Err(e) = res {
        let tail = vm.console_tail(20);
        vm.kill();
        return Err(wrap(VmError::Guest(format!(
            "{e}\n--- guest console ---\n{tail}"
        ))));
    }
    vm.shutdown().map_err(wrap)?;
    std::fs::rename(&pmem, &golden.path).map_err(|e| ImageError::io(&golden.path, e))?;
    Ok(golden)
}

/// The last resort for a kernel that came without its config: read the running guest's
/// `/proc/config.gz` (CONFIG_IKCONFIG_PROC) and check it like a config file.
fn check_running_config(vm: &mut Vm, image: &GuestImage, fs: Filesystem) -> Result<(), ImageError> {
    let text = vm
        .run("zcat /proc/config.gz 2>/dev/null || true")
        .map_err(|e| ImageError::Golden {
            fs: fs.name().into(),
            cause: Box::new(e),
        })?;
    let config = super::KernelConfig::parse(&text);
    if config.is_empty() {
        tracing::warn!(
            "kernel {} came without a config and has no /proc/config.gz: its options are not checked",
            image.kernel_version
        );
        return Ok(());
    }
    let wants = super::Wants {
        filesystems: vec![fs],
        mutants: false,
    };
    super::builder::check_kernel_config(&config, &wants, &image.kernel_version, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dax_option_is_required() {
        let ok = "/dev/pmem0 /mnt ext4 rw,relatime,dax=always 0 0\n";
        assert!(dax_mount_check(ok, "/mnt").is_ok());
        let no = "/dev/pmem0 /mnt ext4 rw,relatime 0 0\n";
        assert!(dax_mount_check(no, "/mnt")
            .unwrap_err()
            .contains("without DAX"));
        assert!(dax_mount_check("", "/mnt")
            .unwrap_err()
            .contains("not mounted"));
    }
}
