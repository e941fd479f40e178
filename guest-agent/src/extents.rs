//! Answers `Extents`: where each named file's bytes lie on the block device, through the
//! `FS_IOC_FIEMAP` ioctl (no sync flag: DAX file systems allocate at write or fault time,
//! and a sync here would add cache flushes to a traced run).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use workloads::protocol::{Extent, FileExtents};

/// `FS_IOC_FIEMAP` = `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
/// Extents asked for per call.
const BATCH: usize = 256;
/// Most extents reported per file (a workload file has a handful).
const MAX_EXTENTS: usize = 65_536;
/// `FIEMAP_EXTENT_LAST`.
const EXTENT_LAST: u32 = 0x1;

/// `struct fiemap_extent` (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// `struct fiemap` followed by room for [`BATCH`] extents.
#[repr(C)]
struct RawFiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [RawExtent; BATCH],
}

/// Report on each of `names` in `dir`.
pub fn extents(dir: &Path, names: &[String]) -> Vec<FileExtents> {
    names
        .iter()
        .map(|name| {
            // Only regular files have extents worth mapping (a symlink is not followed).
            let regular = std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file());
            let opened = if regular {
                File::open(dir.join(name))
            } else {
                Err(io::ErrorKind::NotFound.into())
            };
            let (extents, error) = match opened {
                Ok(f) => match fiemap(&f) {
                    Ok(x) => (x, None),
                    Err(e) => (Vec::new(), Some(format!("FIEMAP of {name}: {e}"))),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
                Err(e) => (Vec::new(), Some(format!("opening {name}: {e}"))),
            };
            FileExtents {
                name: name.clone(),
                extents,
                error,
            }
        })
        .collect()
}

fn fiemap(f: &File) -> io::Result<Vec<Extent>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let mut req = Box::new(RawFiemap {
            start,
            length: u64::MAX - start,
            flags: 0,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
            extents: [RawExtent::default(); BATCH],
        });
        // SAFETY: `req` is a valid, writable `struct fiemap` with room for `extent_count`
        // extents, as the ioctl requires; it lives across the call.
        let ret = unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut *req as *mut RawFiemap) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (req.mapped_extents as usize).min(BATCH);
        if n == 0 {
            return Ok(out);
        }
        let mut last = false;
        for e in &req.extents[..n] {
            out.push(Extent {
                logical: e.logical,
                physical: e.physical,
                length: e.length,
                flags: e.flags,
            });
            last |= e.flags & EXTENT_LAST != 0;
            start = e.logical.saturating_add(e.length);
        }
        if last || out.len() >= MAX_EXTENTS {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<RawExtent>(), 56);
        assert_eq!(std::mem::size_of::<RawFiemap>(), 32 + 56 * BATCH);
    }

    #[test]
    fn a_written_file_has_extents_covering_its_data_and_a_missing_one_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f0"), vec![7u8; 3 * 4096]).expect("write");
        File::open(dir.path().join("f0"))
            .and_then(|f| f.sync_all())
            .expect("sync");

        let got = extents(dir.path(), &["f0".into(), "nope".into()]);

        assert_eq!(got.len(), 2);
        // tmpfs has no FIEMAP: then the error is reported, never a panic.
        if got[0].error.is_none() {
            let covered: u64 = got[0].extents.iter().map(|e| e.length).sum();
            assert!(covered >= 3 * 4096, "{:?}", got[0]);
        }
        assert!(got[1].extents.is_empty() && got[1].error.is_none());
    }
}
