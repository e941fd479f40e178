//! Durable file writes: a file replaced atomically and its directory fsync'd, and whether an
//! I/O error means the disk is full.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `path` through a temporary file in the same directory and a rename, then fsync the
/// directory: a reader never sees half a file, and a crash leaves the old one or the new
/// one. The parent directory is created if needed. The temporary file has a random name
/// and is created exclusively, so a planted file or symlink is never followed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".powercut-")
        .suffix(".tmp")
        .tempfile_in(&parent)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fsync_dir(&parent)
}

/// fsync a directory, so the names created in it survive a crash.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Is `e` ENOSPC or EDQUOT?
pub fn is_disk_full_io(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(libc::ENOSPC)
        || e.raw_os_error() == Some(libc::EDQUOT)
}
