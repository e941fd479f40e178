//! Inode metadata: the metadata ops (`fchmod`, `fsetxattr`, `fremovexattr`, `futimens` on
//! an open descriptor) and reading a file's mode, times and `user.` xattrs back, bounded.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use workloads::meta::{
    FileMeta, Timestamp, Xattr, MAX_XATTRS, MAX_XATTR_NAME, MAX_XATTR_VALUE, XATTR_PREFIX,
};

use crate::sys::{check, check_size, Errno};

/// `user.<name>` as a C string (`EINVAL` for a NUL byte).
fn xattr_key(name: &str) -> Result<CString, Errno> {
    CString::new(format!("{XATTR_PREFIX}{name}")).map_err(|_| libc::EINVAL)
}

/// `fchmod(fd, mode)`.
pub fn chmod(fd: BorrowedFd<'_>, mode: u32) -> Result<i64, Errno> {
    // SAFETY: the descriptor is open for the call.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
}

/// `fsetxattr(fd, "user.<name>", value, 0)`: create or replace.
pub fn setxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> Result<i64, Errno> {
    let key = xattr_key(name)?;
    // SAFETY: `key` is NUL-terminated, `value` readable for its length; the descriptor is open.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// `fremovexattr(fd, "user.<name>")` (`ENODATA` when it is not set).
pub fn removexattr(fd: BorrowedFd<'_>, name: &str) -> Result<i64, Errno> {
    let key = xattr_key(name)?;
    // SAFETY: `key` is NUL-terminated; the descriptor is open.
    check(unsafe { libc::fremovexattr(fd.as_raw_fd(), key.as_ptr()) })
}

/// `futimens(fd, {t, t})`: access and modification time both `sec.nsec`.
pub fn set_times(fd: BorrowedFd<'_>, sec: u64, nsec: u32) -> Result<i64, Errno> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(sec).map_err(|_| libc::EINVAL)?,
        tv_nsec: libc::c_long::from(nsec),
    };
    let times = [ts, ts];
    // SAFETY: `times` holds two timespecs; the descriptor is open.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })
}

/// The mode, times and `user.` xattrs of the file at `path` (not following a symlink),
/// bounded: at most [`MAX_XATTRS`] xattrs of at most [`MAX_XATTR_VALUE`] bytes each, or an
/// error saying what was over.
pub fn read_meta(path: &Path) -> Result<FileMeta, String> {
    let st =
        std::fs::symlink_metadata(path).map_err(|e| format!("lstat {}: {e}", path.display()))?;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", path.display()))?;
    let time = |sec: i64, nsec: i64| Timestamp {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(u32::MAX),
    };
    Ok(FileMeta {
        mode: st.mode() & 0o7777,
        atime: time(st.atime(), st.atime_nsec()),
        mtime: time(st.mtime(), st.mtime_nsec()),
        xattrs: user_xattrs(&c).map_err(|e| format!("xattrs of {}: {e}", path.display()))?,
    })
}

fn user_xattrs(path: &CString) -> Result<Vec<Xattr>, String> {
    // Room for MAX_XATTRS names of the longest length plus other namespaces' names.
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: `names` is writable for its length; `path` is NUL-terminated.
    let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let n = check_size(n).map_err(|e| format!("llistxattr: errno {e}"))?;
    names.truncate(usize::try_from(n).unwrap_or(0));
    let mut out = Vec::new();
    for raw in names.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Some(name) = raw.strip_prefix(XATTR_PREFIX.as_bytes()) else {
            continue;
        };
        if out.len() == MAX_XATTRS {
            return Err(format!("more than {MAX_XATTRS} user. xattrs"));
        }
        if name.len() > MAX_XATTR_NAME {
            return Err(format!("an xattr name of {} bytes", name.len()));
        }
        let name = String::from_utf8_lossy(name).into_owned();
        out.push(Xattr {
            value: get_value(path, raw).map_err(|e| format!("user.{name}: {e}"))?,
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn get_value(path: &CString, key: &[u8]) -> Result<Vec<u8>, String> {
    let key = CString::new(key).map_err(|_| "a NUL byte in the name".to_string())?;
    let mut buf = vec![0u8; usize::try_from(MAX_XATTR_VALUE).unwrap_or(0) + 1];
    // SAFETY: `buf` is writable for its length; both strings are NUL-terminated.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = match check_size(n) {
        Ok(n) => n,
        Err(libc::ERANGE) => return Err(format!("over {MAX_XATTR_VALUE} bytes")),
        Err(e) => return Err(format!("lgetxattr: errno {e}")),
    };
    if n > MAX_XATTR_VALUE {
        return Err(format!("{n} bytes, over {MAX_XATTR_VALUE}"));
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    #[test]
    fn metadata_ops_are_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let f = File::create(&path).expect("create");
        chmod(f.as_fd(), 0o640).expect("chmod");
        set_times(f.as_fd(), 1_000_000_000, 123_456_789).expect("futimens");
        let m = read_meta(&path).expect("meta");
        assert_eq!(m.mode, 0o640);
        assert_eq!(
            m.mtime,
            Timestamp {
                sec: 1_000_000_000,
                nsec: 123_456_789
            }
        );
        assert_eq!(m.atime, m.mtime);
        // tmpfs and some file systems refuse user xattrs: then only check the errno path.
        match setxattr(f.as_fd(), "a", b"xyz") {
            Ok(_) => {
                let m = read_meta(&path).expect("meta");
                assert_eq!(
                    m.xattrs,
                    vec![Xattr {
                        name: "a".into(),
                        value: b"xyz".to_vec()
                    }]
                );
                removexattr(f.as_fd(), "a").expect("remove");
                assert_eq!(removexattr(f.as_fd(), "a"), Err(libc::ENODATA));
                assert!(read_meta(&path).expect("meta").xattrs.is_empty());
            }
            Err(e) => assert!(e == libc::EOPNOTSUPP || e == libc::EPERM, "errno {e}"),
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = read_meta(Path::new("/nonexistent/x")).unwrap_err();
        assert!(e.contains("/nonexistent/x"), "{e}");
    }
}
