//! Taking in a file the user (or a package) hands over: a regular file only, bounded in
//! size, checked on the open descriptor before a byte is read. A symlink to `/dev/zero`, a
//! FIFO, a directory or a device is refused at once (never an endless read or a hang).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A file that cannot be taken in.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not a regular file (a directory, FIFO, socket or device).
    #[error("{path}: is a {kind}, not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than the bound for its kind.
    #[error("{path}: {len} bytes, more than the {max} a {what} may have")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The bound.
        max: u64,
        /// What kind of file it was taken as.
        what: &'static str,
    },
    /// It could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl InputError {
    /// Is this a missing file?
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Open `path` for reading without blocking on a FIFO, and check it is a regular file of at
/// most `max` bytes (`what` names the kind of file in the error). Returns the file and its
/// size; reads through it are bounded by that size.
pub fn open_regular(path: &Path, max: u64, what: &'static str) -> Result<(File, u64), InputError> {
    let io = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    // O_NONBLOCK: opening a FIFO for reading does not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let ty = meta.file_type();
    if !ty.is_file() {
        let kind = if ty.is_dir() {
            "directory"
        } else if ty.is_fifo() {
            "FIFO"
        } else if ty.is_char_device() {
            "character device"
        } else if ty.is_block_device() {
            "block device"
        } else if ty.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(InputError::NotRegular {
            path: path.to_owned(),
            kind,
        });
    }
    if meta.len() > max {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
            max,
            what,
        });
    }
    Ok((file, meta.len()))
}

/// Check `path` is a regular file of at most `max` bytes; returns its size.
pub fn check_regular(path: &Path, max: u64, what: &'static str) -> Result<u64, InputError> {
    open_regular(path, max, what).map(|(_, len)| len)
}

/// Read all of `path`: a regular file of at most `max` bytes (a file that grows while it is
/// read is cut at `max`, and refused).
pub fn read(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let (file, len) = open_regular(path, max, what)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            len: bytes.len() as u64,
            max,
            what,
        });
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64, what: &'static str) -> Result<String, InputError> {
    let bytes = read(path, max, what)?;
    String::from_utf8(bytes).map_err(|e| InputError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("cstr");
        // SAFETY: mkfifo on a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let errs: Vec<String> = [zero.as_path(), fifo.as_path(), dir.path()]
            .iter()
            .map(|p| {
                read(p, 1 << 20, "test file")
                    .expect_err("refused")
                    .to_string()
            })
            .collect();

        assert!(errs[0].contains("character device"), "{}", errs[0]);
        assert!(errs[1].contains("FIFO"), "{}", errs[1]);
        assert!(errs[2].contains("directory"), "{}", errs[2]);
    }

    #[test]
    fn a_file_over_the_bound_is_refused_and_one_within_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").expect("write");

        let big = read(&p, 4, "test file").expect_err("too large").to_string();
        let ok = read(&p, 5, "test file").expect("within");
        let gone = read(&dir.path().join("gone"), 5, "test file").expect_err("missing");

        assert!(big.contains("5 bytes, more than the 4"), "{big}");
        assert_eq!(ok, b"12345");
        assert!(gone.is_not_found(), "{gone}");
    }
}
