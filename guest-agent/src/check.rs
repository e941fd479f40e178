//! Answers `Check`: one crash image checked in one request, mount (`dax`), read-back,
//! unmount and dropping the caches of the device, so that a check costs the host one round
//! trip instead of one per step.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use workloads::protocol::{AgentMsg, CheckTimings};

use crate::readback::read_files;
use workloads::content::Patterns;

/// `BLKFLSBUF` (linux/fs.h `_IO(0x12, 97)`): what `blockdev --flushbufs` calls.
const BLKFLSBUF: libc::c_ulong = 0x1261;

/// Where and what to check.
#[derive(Debug, Clone, Copy)]
pub struct CheckRequest<'a> {
    /// Block device holding the crash image.
    pub device: &'a str,
    /// File system type.
    pub fs: &'a str,
    /// Mount point.
    pub mountpoint: &'a str,
    /// Directory of the files, inside the mount.
    pub dir: &'a str,
    /// Names to read back.
    pub names: &'a [String],
    /// Patterns the files may hold.
    pub patterns: Patterns<'a>,
}

/// Mount, read back, unmount, drop caches; every failure is reported in the answer.
pub fn check(req: &CheckRequest<'_>) -> AgentMsg {
    let mut timings = CheckTimings::default();
    let t = Instant::now();
    let mounted = mount(req.device, req.mountpoint, req.fs);
    timings.mount_us = micros(t);
    let (mount_error, files, cleanup) = match mounted {
        Ok(()) => {
            let t = Instant::now();
            let files = read_files(Path::new(req.dir), req.names, req.patterns);
            timings.read_us = micros(t);
            let t = Instant::now();
            let cleanup = umount(req.mountpoint).and_then(|()| drop_caches(req.device));
            timings.cleanup_us = micros(t);
            (None, files, cleanup)
        }
        Err(e) => {
            // A failed mount may still have read blocks of the device into the cache.
            let t = Instant::now();
            let cleanup = drop_caches(req.device);
            timings.cleanup_us = micros(t);
            (Some(e), Vec::new(), cleanup)
        }
    };
    AgentMsg::Checked {
        mount_error,
        files,
        cleanup_error: cleanup.err(),
        timings,
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn c_string(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} {s:?} holds a NUL byte"))
}

fn mount(device: &str, mountpoint: &str, fs: &str) -> Result<(), String> {
    let what = format!("mount -t {fs} -o dax {device} {mountpoint}");
    let dev = c_string("device", device)?;
    let mp = c_string("mount point", mountpoint)?;
    let fstype = c_string("file system type", fs)?;
    let options = c_string("options", "dax")?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::mount(
            dev.as_ptr(),
            mp.as_ptr(),
            fstype.as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {}", io::Error::last_os_error()))
    }
}

fn umount(mountpoint: &str) -> Result<(), String> {
    let mp = c_string("mount point", mountpoint)?;
    // SAFETY: a NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(mp.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "umount {mountpoint}: {}",
            io::Error::last_os_error()
        ))
    }
}

/// What `echo 3 > /proc/sys/vm/drop_caches; blockdev --flushbufs DEVICE` does.
fn drop_caches(device: &str) -> Result<(), String> {
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| format!("writing /proc/sys/vm/drop_caches: {e}"))?;
    let dev = File::open(device).map_err(|e| format!("opening {device}: {e}"))?;
    // SAFETY: BLKFLSBUF takes no argument; the descriptor is open for the whole call.
    if unsafe { libc::ioctl(dev.as_raw_fd(), BLKFLSBUF, 0) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "BLKFLSBUF on {device}: {}",
            io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_that_fails_says_what_it_tried_and_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mp = dir.path().to_string_lossy().into_owned();

        let why = mount("/nonexistent/pmem9", &mp, "ext4").unwrap_err();

        assert!(
            why.starts_with(&format!("mount -t ext4 -o dax /nonexistent/pmem9 {mp}: ")),
            "{why}"
        );
    }

    #[test]
    fn a_nul_byte_in_a_name_is_an_error_not_a_panic() {
        assert!(mount("/dev/pmem0\0x", "/mnt", "ext4")
            .unwrap_err()
            .contains("NUL"));
        assert!(umount("/mnt\0").unwrap_err().contains("NUL"));
    }
}
