//! Host-side file system check of a recovered pmem image, read-only (`e2fsck -fn`,
//! `xfs_repair -n`), never mounting it on the host.

use std::path::Path;
use std::process::Command;

use crate::image::Filesystem;

/// Offset of the file system inside the pmem backing file: the fsdax namespace puts its pfn
/// info block first. Found by looking for the superblock magic at 4 KiB steps.
pub fn fs_offset(fs: Filesystem, pmem: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
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

/// Check the file system in `pmem`; `Err` carries the checker's output.
pub fn check(fs: Filesystem, pmem: &Path) -> Result<(), String> {
    let Some(off) = fs_offset(fs, pmem) else {
        return Err("no superblock found in the recovered image".into());
    };
    let out = match fs {
        Filesystem::Ext4 => Command::new("e2fsck")
            .arg("-fn")
            .arg(format!("{}?offset={off}", pmem.display()))
            .output(),
        Filesystem::Xfs => {
            let Ok(tmp) = tempfile::NamedTempFile::new() else {
                return Err("cannot create a temp file for xfs_repair".into());
            };
            let copy = Command::new("dd")
                .arg(format!("if={}", pmem.display()))
                .arg(format!("of={}", tmp.path().display()))
                .args(["bs=1M", "iflag=skip_bytes", "conv=sparse", "status=none"])
                .arg(format!("skip={off}"))
                .status();
            if !copy.is_ok_and(|s| s.success()) {
                return Err("copying the xfs region for xfs_repair failed".into());
            }
            Command::new("xfs_repair")
                .arg("-n")
                .arg("-f")
                .arg(tmp.path())
                .output()
        }
    };
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{} (exit {}):\n{}{}",
            match fs {
                Filesystem::Ext4 => "e2fsck -fn",
                Filesystem::Xfs => "xfs_repair -n",
            },
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!(
            "cannot run fsck (install e2fsprogs/xfsprogs with ci/setup): {e}"
        )),
    }
}
