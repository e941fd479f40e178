//! The namespace ops on real directories: `mkdir`, `rmdir`, `link`, `symlink`,
//! `renameat2` and `fsync_dir` of a subdirectory, all relative to the workload directory's
//! descriptor. Every path is checked again here ([`check_path`]): a path that could leave the
//! workload directory fails the op with `EINVAL` before any system call.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use workloads::namespace::{check_path, check_target};
use workloads::RenameFlag;

use super::Executor;
use crate::sys::{c_name, check, Errno};

/// Mode bits of directories made by `Mkdir`.
const DIR_MODE: libc::mode_t = 0o755;

/// `path` as a C string, if it is a path below the workload directory.
pub(super) fn c_path(path: &str) -> Result<CString, Errno> {
    check_path(path).map_err(|_| libc::EINVAL)?;
    c_name(path)
}

/// The `RENAME_*` bit of a flag.
fn rename_bits(flags: RenameFlag) -> libc::c_uint {
    match flags {
        RenameFlag::Exchange => libc::RENAME_EXCHANGE,
        RenameFlag::Noreplace => libc::RENAME_NOREPLACE,
        RenameFlag::Whiteout => libc::RENAME_WHITEOUT,
    }
}

impl Executor {
    /// `Mkdir`: `mkdirat(dir, path, 0755)`.
    pub(super) fn mkdir(&self, dir: &str) -> Result<i64, Errno> {
        let c = c_path(dir)?;
        // SAFETY: `dir_fd` is open for the life of `self` and `c` is NUL-terminated.
        check(unsafe { libc::mkdirat(self.dir_fd.as_raw_fd(), c.as_ptr(), DIR_MODE) })
    }

    /// `Rmdir`: `unlinkat(dir, path, AT_REMOVEDIR)`.
    pub(super) fn rmdir(&self, dir: &str) -> Result<i64, Errno> {
        let c = c_path(dir)?;
        // SAFETY: as for `mkdir`.
        check(unsafe { libc::unlinkat(self.dir_fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
    }

    /// `Link`: `linkat(dir, from, dir, to, 0)` (a symlink is not followed).
    pub(super) fn link(&self, from: &str, to: &str) -> Result<i64, Errno> {
        let (a, b) = (c_path(from)?, c_path(to)?);
        let d = self.dir_fd.as_raw_fd();
        // SAFETY: `d` is open for the life of `self`; both paths are NUL-terminated.
        check(unsafe { libc::linkat(d, a.as_ptr(), d, b.as_ptr(), 0) })
    }

    /// `Symlink`: `symlinkat(target, dir, link)`.
    pub(super) fn symlink(&self, target: &str, link: &str) -> Result<i64, Errno> {
        check_target(target).map_err(|_| libc::EINVAL)?;
        let (t, l) = (c_name(target)?, c_path(link)?);
        // SAFETY: `dir_fd` is open for the life of `self`; both strings are NUL-terminated.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.dir_fd.as_raw_fd(), l.as_ptr()) })
    }

    /// `Renameat2`: what is held under `to` is closed first unless the names swap; on
    /// success the descriptors and mappings follow their files (both ways for an exchange).
    /// A file system that refuses the flag fails the op with its errno (EINVAL).
    pub(super) fn renameat2(
        &mut self,
        from: &str,
        to: &str,
        flags: RenameFlag,
    ) -> Result<i64, Errno> {
        let (a, b) = (c_path(from)?, c_path(to)?);
        let exchange = flags == RenameFlag::Exchange;
        if !exchange && from != to {
            drop(self.files.remove(to));
        }
        let d = self.dir_fd.as_raw_fd();
        // SAFETY: `d` is open for the life of `self`; both paths are NUL-terminated.
        check(unsafe { libc::renameat2(d, a.as_ptr(), d, b.as_ptr(), rename_bits(flags)) })?;
        if from != to {
            let moved = self.files.remove(from);
            let back = if exchange {
                self.files.remove(to)
            } else {
                None
            };
            if let Some(e) = moved {
                self.files.insert(to.to_owned(), e);
            }
            if let Some(e) = back {
                self.files.insert(from.to_owned(), e);
            }
        }
        Ok(0)
    }

    /// `FsyncDir` of a subdirectory: `openat(dir, path, O_RDONLY | O_DIRECTORY)`, `fsync`,
    /// `close`.
    pub(super) fn fsync_subdir(&self, dir: &str) -> Result<i64, Errno> {
        let c = c_path(dir)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        // SAFETY: `dir_fd` is open for the life of `self` and `c` is NUL-terminated.
        let raw = unsafe { libc::openat(self.dir_fd.as_raw_fd(), c.as_ptr(), flags) };
        check(raw)?;
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is open until it is dropped at the end of this function.
        check(unsafe { libc::fsync(fd.as_raw_fd()) })
    }
}
