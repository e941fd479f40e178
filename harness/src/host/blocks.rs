//! Block-wise copies of pmem files: a sparse copy (crash images from the live pmem file) and
//! a sync that writes only the blocks that differ (crash images into the checker's pmem).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Copy granularity: crash images are compared and written in blocks of this size.
pub const BLOCK: usize = 64 * 1024;

/// Copy `from` to `to`, leaving all-zero blocks as holes. Returns the bytes written.
pub fn sparse_copy(from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut src = File::open(from)?;
    let len = src.metadata()?.len();
    let mut dst = File::create(to)?;
    let mut buf = vec![0u8; BLOCK];
    let mut pos = 0u64;
    let mut written = 0u64;
    while pos < len {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            dst.seek(SeekFrom::Start(pos))?;
            dst.write_all(&buf[..n])?;
            written += n as u64;
        }
        pos += n as u64;
    }
    dst.set_len(len)?;
    Ok(written)
}

/// Make `target` byte-identical to `source` (same length) by writing only the blocks that
/// differ. Returns the number of bytes written.
pub fn sync_blocks(source: &Path, target: &Path) -> std::io::Result<u64> {
    let mut src = File::open(source)?;
    let mut dst = std::fs::OpenOptions::new()
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
    let mut a = vec![0u8; BLOCK];
    let mut b = vec![0u8; BLOCK];
    let mut pos = 0u64;
    let mut written = 0u64;
    while pos < len {
        let n = read_full(&mut src, &mut a)?;
        if n == 0 {
            break;
        }
        dst.seek(SeekFrom::Start(pos))?;
        let m = read_full(&mut dst, &mut b[..n])?;
        if m != n || a[..n] != b[..n] {
            dst.seek(SeekFrom::Start(pos))?;
            dst.write_all(&a[..n])?;
            written += n as u64;
        }
        pos += n as u64;
    }
    Ok(written)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
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
    fn size_mismatch_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, [1u8; 10]).expect("write");
        std::fs::write(&b, [1u8; 11]).expect("write");
        assert!(sync_blocks(&a, &b).is_err());
    }
}
