//! io_uring ops: one ring per op (set up, one SQE at a time, torn down), so an op that the
//! kernel refuses (no io_uring, or `kernel.io_uring_disabled`) fails with its errno like any
//! other system call.

use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, types, IoUring};
use workloads::Pattern;

use crate::exec::PWRITE_CHUNK;
use crate::sys::Errno;

/// The errno of an `io::Error` (`EIO` when it has none).
fn errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Submit one SQE and wait for its CQE: the CQE's result, or its negated errno.
fn submit_one(ring: &mut IoUring, sqe: &io_uring::squeue::Entry) -> Result<i32, Errno> {
    // SAFETY: every buffer the SQE points to outlives this call, which waits for its CQE.
    unsafe { ring.submission().push(sqe) }.map_err(|_| libc::EBUSY)?;
    ring.submit_and_wait(1).map_err(|e| errno(&e))?;
    let cqe = ring.completion().next().ok_or(libc::EIO)?;
    match cqe.result() {
        r if r < 0 => Err(-r),
        r => Ok(r),
    }
}

fn ring() -> Result<IoUring, Errno> {
    IoUring::new(2).map_err(|e| errno(&e))
}

/// `IORING_OP_WRITE` of the pattern's bytes `[off, off + len)` in SQEs of at most
/// [`PWRITE_CHUNK`] bytes, `rw_flags` on each: the bytes written (a short write ends it; an
/// error after some bytes returns the count, like `pwrite`).
pub fn write(
    fd: BorrowedFd<'_>,
    off: u64,
    len: u64,
    pattern: &Pattern,
    rw_flags: libc::c_int,
) -> Result<i64, Errno> {
    let mut ring = ring()?;
    let chunk = usize::try_from(len).map_or(PWRITE_CHUNK, |l| l.min(PWRITE_CHUNK));
    let mut buf = vec![0u8; chunk];
    let mut done: u64 = 0;
    while done < len {
        let n = usize::try_from(len - done).map_or(chunk, |rest| rest.min(chunk));
        let pos = off.checked_add(done).ok_or(libc::EINVAL)?;
        pattern.fill(pos, &mut buf[..n]);
        let sqe = opcode::Write::new(
            types::Fd(fd.as_raw_fd()),
            buf.as_ptr(),
            u32::try_from(n).map_err(|_| libc::EINVAL)?,
        )
        .offset(pos)
        .rw_flags(rw_flags)
        .build();
        match submit_one(&mut ring, &sqe) {
            Ok(w) => {
                let w = u64::try_from(w).unwrap_or(0);
                done += w;
                if w < n as u64 {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    i64::try_from(done).map_err(|_| libc::EOVERFLOW)
}

/// `IORING_OP_FSYNC`, with `IORING_FSYNC_DATASYNC` when `datasync`.
pub fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> Result<i64, Errno> {
    let mut ring = ring()?;
    let mut op = opcode::Fsync::new(types::Fd(fd.as_raw_fd()));
    if datasync {
        op = op.flags(types::FsyncFlags::DATASYNC);
    }
    submit_one(&mut ring, &op.build()).map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::fd::AsFd;

    #[test]
    fn a_write_and_an_fsync_through_the_ring_or_the_refusal_as_an_errno() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let p = Pattern::new(3, 9);
        match write(f.as_fd(), 5, 10_000, &p, libc::RWF_DSYNC) {
            Ok(n) => {
                assert_eq!(n, 10_000);
                let data = std::fs::read(&path).expect("read");
                assert_eq!(&data[5..], &p.bytes(5, 10_000)[..]);
                assert_eq!(data[..5], [0; 5]);
                assert_eq!(fsync(f.as_fd(), true), Ok(0));
                assert_eq!(fsync(f.as_fd(), false), Ok(0));
            }
            // A host without io_uring (or with it disabled) refuses it with an errno.
            Err(e) => assert!([libc::ENOSYS, libc::EPERM].contains(&e), "errno {e}"),
        }
    }
}
