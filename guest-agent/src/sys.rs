//! Errno plumbing: turns libc return values into `Result<_, Errno>` and converts the names
//! and numbers of the op model into the C types the system calls take.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

/// An `errno` value, as recorded in [`workloads::OpOutcome::failed`].
pub type Errno = i32;

/// The page size the agent assumes (x86_64 base pages).
pub const PAGE_SIZE: u64 = 4096;

/// `errno` of the last failed libc call.
pub fn last_errno() -> Errno {
    errno_of(&io::Error::last_os_error())
}

/// The `errno` behind an I/O error (`EIO` when it carries none).
pub fn errno_of(err: &io::Error) -> Errno {
    err.raw_os_error().unwrap_or(libc::EIO)
}

/// `Ok(ret)` for a non-negative `int` return value, else the current `errno`.
pub fn check(ret: libc::c_int) -> Result<i64, Errno> {
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(i64::from(ret))
    }
}

/// `Ok(ret)` for a non-negative `ssize_t` return value, else the current `errno`.
pub fn check_size(ret: libc::ssize_t) -> Result<u64, Errno> {
    u64::try_from(ret).map_err(|_| last_errno())
}

/// A file name as a C string; `EINVAL` if it contains a NUL byte (the kernel never sees it).
pub fn c_name(name: &str) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| libc::EINVAL)
}

/// A file offset or length as `off_t`; `EINVAL` past `i64::MAX`, as the kernel answers for a
/// negative offset.
pub fn to_off(v: u64) -> Result<libc::off_t, Errno> {
    libc::off_t::try_from(v).map_err(|_| libc::EINVAL)
}

/// `v` rounded up to a multiple of the page size; `None` on overflow.
pub fn page_round_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(|x| x & !(PAGE_SIZE - 1))
}

/// `v` rounded down to a multiple of the page size.
pub fn page_round_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Current size of the open file `fd`, from `fstat(2)`.
pub fn file_size(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is an open descriptor for the duration of the borrow and `st` points to
    // writable memory of the size of `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat returned 0, so it filled in the whole struct.
    let st = unsafe { st.assume_init() };
    u64::try_from(st.st_size).map_err(|_| libc::EOVERFLOW)
}

/// `pwritev2(fd, [buf], pos, flags)`: the `ssize_t` it returns (negative on error, with
/// `errno` set).
pub fn pwritev2(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    pos: libc::off_t,
    flags: libc::c_int,
) -> libc::ssize_t {
    let iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, initialised and readable for the call (the kernel only
    // reads from it); `fd` is open for the duration of the borrow.
    unsafe { libc::pwritev2(fd.as_raw_fd(), &iov, 1, pos, flags) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_rounding() {
        assert_eq!(page_round_up(0), Some(0));
        assert_eq!(page_round_up(1), Some(4096));
        assert_eq!(page_round_up(4096), Some(4096));
        assert_eq!(page_round_up(u64::MAX), None);
        assert_eq!(page_round_down(8191), 4096);
    }

    #[test]
    fn conversions_reject_what_the_kernel_would() {
        assert_eq!(to_off(u64::MAX), Err(libc::EINVAL));
        assert_eq!(to_off(7), Ok(7));
        assert_eq!(c_name("a\0b").err(), Some(libc::EINVAL));
    }
}
