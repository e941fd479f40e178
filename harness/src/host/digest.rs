//! Content digests of pmem files (crash images): SHA-256 over the length and every non-zero
//! 64 KiB block with its offset. Zero blocks (holes or written zeros) do not enter it, so two
//! files with the same bytes have the same digest whatever their allocation, and reading
//! only the allocated extents ([`Scan::Extents`], `SEEK_DATA`/`SEEK_HOLE`) gives the same
//! digest as reading every byte ([`Scan::Whole`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::blocks::{block_starts, data_blocks, BLOCK};

/// A crash image's content digest.
pub type ImageDigest = [u8; 32];

/// How much of the file a digest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Only the allocated extents (holes read as zeros without being read).
    Extents,
    /// Every byte.
    Whole,
}

/// The content digest of the file at `path`.
pub fn image_digest(path: &Path, scan: Scan) -> std::io::Result<ImageDigest> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = vec![0u8; BLOCK];
    let extents = match scan {
        Scan::Extents => data_blocks(&f, len)?,
        Scan::Whole => vec![(0, len)],
    };
    // Whole blocks at aligned offsets, each once: a block straddling two extents is hashed
    // as in a whole scan.
    for pos in block_starts(extents, len) {
        let n = usize::try_from((len - pos).min(BLOCK as u64)).unwrap_or(BLOCK);
        f.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            h.update(pos.to_le_bytes());
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    fn sparse(dir: &Path, name: &str, len: u64, writes: &[(u64, &[u8])]) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).expect("create");
        f.set_len(len).expect("len");
        for (off, bytes) in writes {
            f.seek(SeekFrom::Start(*off)).expect("seek");
            f.write_all(bytes).expect("write");
        }
        p
    }

    #[test]
    fn the_same_bytes_give_the_same_digest_whatever_the_allocation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = 16 * BLOCK as u64 + 100;
        let a = sparse(
            dir.path(),
            "a",
            len,
            &[(5, b"x"), (3 * BLOCK as u64 + 9, b"yz")],
        );
        // The same bytes, with explicitly written zero blocks around them.
        let zeros = vec![0u8; 2 * BLOCK];
        let b = sparse(
            dir.path(),
            "b",
            len,
            &[(0, &zeros), (5, b"x"), (3 * BLOCK as u64 + 9, b"yz")],
        );

        let da = image_digest(&a, Scan::Extents).expect("a");
        let db = image_digest(&b, Scan::Extents).expect("b");
        let wa = image_digest(&a, Scan::Whole).expect("a whole");

        assert_eq!(da, db);
        assert_eq!(da, wa);
    }

    #[test]
    fn one_changed_byte_or_length_changes_the_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = 8 * BLOCK as u64;
        let a = sparse(dir.path(), "a", len, &[(7 * BLOCK as u64 + 1, b"q")]);
        let b = sparse(dir.path(), "b", len, &[(7 * BLOCK as u64 + 1, b"r")]);
        // Same byte, other block: the offset is part of the digest.
        let c = sparse(dir.path(), "c", len, &[(6 * BLOCK as u64 + 1, b"q")]);
        let d = sparse(dir.path(), "d", len + 1, &[(7 * BLOCK as u64 + 1, b"q")]);

        let digests: Vec<ImageDigest> = [&a, &b, &c, &d]
            .iter()
            .map(|p| image_digest(p, Scan::Extents).expect("digest"))
            .collect();

        for i in 0..digests.len() {
            for j in i + 1..digests.len() {
                assert_ne!(digests[i], digests[j], "{i} vs {j}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        assert!(image_digest(Path::new("/nonexistent/x.img"), Scan::Whole).is_err());
    }
}
