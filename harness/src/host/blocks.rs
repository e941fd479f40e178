//! Block-wise copies of pmem files, visiting only allocated blocks (`SEEK_DATA`): a sparse
//! copy (crash images from the live pmem file) and a sync that writes only the blocks that
//! differ (crash images into the checker's pmem).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Copy granularity: crash images are compared and written in blocks of this size.
pub const BLOCK: usize = 64 * 1024;

/// Copy `from` to `to`, leaving all-zero blocks as holes; only the allocated blocks of
/// `from` are read (its holes are zeros). Returns the bytes written.
pub fn sparse_copy(from: &Path, to: &Path) -> std::io::Result<u64> {
    let src = File::open(from)?;
    let len = src.metadata()?.len();
    let dst = File::create(to)?;
    let mut buf = vec![0u8; BLOCK];
    let mut written = 0u64;
    for pos in block_starts(data_blocks(&src, len)?, len) {
        let n = usize::try_from((len - pos).min(BLOCK as u64)).unwrap_or(BLOCK);
        src.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], pos)?;
            written += n as u64;
        }
    }
    dst.set_len(len)?;
    Ok(written)
}

/// Make `target` byte-identical to `source` (same length) by writing only the blocks that
/// differ. Only blocks allocated in either file are compared: a block that is a hole in both
/// reads as zeros in both. Returns the number of bytes written.
pub fn sync_blocks(source: &Path, target: &Path) -> std::io::Result<u64> {
    let src = File::open(source)?;
    let dst = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)?;
    let len = src.metadata()?.len();
    if dst.metadata()?.len() != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "crash image {} is {} bytes, checker pmem {} is {}",
                source.display(),
                len,
                target.display(),
                dst.metadata()?.len()
            ),
        ));
    }
    let mut ranges = data_blocks(&src, len)?;
    ranges.extend(data_blocks(&dst, len)?);
    let mut a = vec![0u8; BLOCK];
    let mut b = vec![0u8; BLOCK];
    let mut written = 0u64;
    for pos in block_starts(ranges, len) {
        let n = usize::try_from((len - pos).min(BLOCK as u64)).unwrap_or(BLOCK);
        src.read_exact_at(&mut a[..n], pos)?;
        dst.read_exact_at(&mut b[..n], pos)?;
        if a[..n] != b[..n] {
            dst.write_all_at(&a[..n], pos)?;
            written += n as u64;
        }
    }
    Ok(written)
}

/// The start of every [`BLOCK`] that overlaps one of `ranges` (byte ranges, any order,
/// overlapping or not), below `len`, once each and in order.
pub fn block_starts(mut ranges: Vec<(u64, u64)>, len: u64) -> Vec<u64> {
    let block = BLOCK as u64;
    ranges.sort_unstable();
    let mut next = 0u64;
    let mut starts = Vec::new();
    for (start, end) in ranges {
        let mut pos = (start - start % block).max(next);
        while pos < end.min(len) {
            starts.push(pos);
            pos += block;
        }
        next = next.max(pos);
    }
    starts
}

/// The allocated byte ranges of `f` (length `len`), from `SEEK_DATA`/`SEEK_HOLE`, in order;
/// unallocated ranges read as zeros. A file system without `SEEK_DATA` reports the whole
/// file.
pub fn data_blocks(f: &File, len: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < len {
        let off = libc::off_t::try_from(pos).map_err(std::io::Error::other)?;
        // SAFETY: lseek on a descriptor `f` owns; no memory is touched.
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENXIO) => break,
                Some(libc::EINVAL) if out.is_empty() => return Ok(vec![(0, len)]),
                _ => return Err(e),
            }
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (data, hole) = (data as u64, (hole as u64).min(len));
        if hole <= data {
            break;
        }
        out.push((data, hole));
        pos = hole;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_copy_and_block_sync_reproduce_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let mut data = vec![0u8; 4 * BLOCK + 100];
        data[BLOCK + 5] = 7;
        data[4 * BLOCK + 99] = 9;
        std::fs::write(&a, &data).expect("write");
        let b = dir.path().join("b");
        let written = sparse_copy(&a, &b).expect("copy");
        assert_eq!(std::fs::read(&b).expect("read"), data);
        assert_eq!(written, (BLOCK + 100) as u64);

        let mut other = data.clone();
        other[2 * BLOCK] = 1;
        std::fs::write(&b, &other).expect("write");
        let w = sync_blocks(&a, &b).expect("sync");
        assert_eq!(w, BLOCK as u64);
        assert_eq!(std::fs::read(&b).expect("read"), data);
    }

    #[test]
    fn a_block_allocated_only_in_the_target_is_zeroed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = 8 * BLOCK as u64;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let f = File::create(&a).expect("a");
        f.set_len(len).expect("len");
        f.write_all_at(b"src", 1).expect("write");
        let g = File::create(&b).expect("b");
        g.set_len(len).expect("len");
        g.write_all_at(b"left by the last image", 5 * BLOCK as u64 + 3)
            .expect("write");

        let w = sync_blocks(&a, &b).expect("sync");

        assert_eq!(w, 2 * BLOCK as u64);
        assert_eq!(std::fs::read(&b).expect("b"), std::fs::read(&a).expect("a"));
        assert_eq!(sync_blocks(&a, &b).expect("again"), 0);
    }

    #[test]
    fn block_starts_cover_every_range_once() {
        let k = BLOCK as u64;
        let ranges = vec![
            (5 * k + 1, 5 * k + 2),
            (0, 1),
            (k - 1, 2 * k + 1),
            (5 * k, 6 * k),
            (9 * k + 7, 12 * k),
        ];

        let starts = block_starts(ranges, 10 * k);

        assert_eq!(starts, vec![0, k, 2 * k, 5 * k, 9 * k]);
    }

    #[test]
    fn size_mismatch_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, [1u8; 10]).expect("write");
        std::fs::write(&b, [1u8; 11]).expect("write");
        assert!(sync_blocks(&a, &b).is_err());
    }
}
