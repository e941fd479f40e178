//! One shared mapping of a workload file: `mmap`/`munmap`, the bounds, end-of-file and
//! prefault checks that keep the agent from dying of SIGBUS, pattern stores through plain
//! CPU stores, user-space cache flushes and `msync` of a range.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};

use workloads::Pattern;

use crate::cpu::FlushInsn;
use crate::sys::{self, check, last_errno, Errno};

/// `MAP_SHARED_VALIDATE` (linux/mman.h): reject unknown flags instead of ignoring them.
pub const MAP_SHARED_VALIDATE: libc::c_int = 0x03;
/// `MAP_SYNC` (asm-generic/mman-common.h): file metadata is durable before a page fault on
/// a DAX mapping returns, so user-space flushes alone make stores durable.
pub const MAP_SYNC: libc::c_int = 0x8_0000;

/// A live `MAP_SHARED` (or `MAP_SHARED_VALIDATE | MAP_SYNC`) read-write mapping of a file
/// from offset 0; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    addr: NonNull<u8>,
    len: usize,
    sync: bool,
}

impl Mapping {
    /// Map the first `len` bytes of `fd`, rounded up to whole pages, read-write and shared.
    /// With `sync`, use `MAP_SHARED_VALIDATE | MAP_SYNC` (EOPNOTSUPP off DAX).
    pub fn new(fd: BorrowedFd<'_>, len: u64, sync: bool) -> Result<Mapping, Errno> {
        let rounded = sys::page_round_up(len).ok_or(libc::ENOMEM)?;
        let rounded = usize::try_from(rounded).map_err(|_| libc::ENOMEM)?;
        let flags = if sync {
            MAP_SHARED_VALIDATE | MAP_SYNC
        } else {
            libc::MAP_SHARED
        };
        // SAFETY: no MAP_FIXED and a NULL hint, so the kernel picks unused address space and
        // no existing Rust object is affected; `fd` is open for the duration of the call.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                rounded,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_errno());
        }
        let addr = NonNull::new(p.cast::<u8>()).ok_or(libc::ENOMEM)?;
        Ok(Mapping {
            addr,
            len: rounded,
            sync,
        })
    }

    /// Mapped length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a mapping is at least one page (kept for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Was it mapped with `MAP_SYNC`?
    pub fn is_sync(&self) -> bool {
        self.sync
    }

    /// `munmap(2)` now, reporting its error.
    pub fn unmap(self) -> Result<(), Errno> {
        let me = ManuallyDrop::new(self);
        // SAFETY: the region was returned by mmap with this length and is unmapped only
        // here or in Drop, which `ManuallyDrop` suppresses; no references into it outlive
        // `self`.
        check(unsafe { libc::munmap(me.addr.as_ptr().cast(), me.len) }).map(drop)
    }

    /// Store the bytes of `pattern` for file offsets `[off, off + len)` through the mapping.
    ///
    /// Fails with `EFAULT`, before touching memory, when the range is not inside the mapping
    /// or reaches into a page wholly past `file_size` (a store there raises SIGBUS; stores in
    /// the tail of the last partial page are allowed by the kernel, and lost). Aligned words
    /// are written with 8-byte `mov`s (the pmem atomic unit), ragged ends byte by byte: plain
    /// cached stores, never non-temporal ones.
    ///
    /// The pages are write-faulted first (`madvise(MADV_POPULATE_WRITE)`), so a fault the
    /// kernel cannot satisfy (no block left to allocate, EIO) fails the op instead of killing
    /// the agent with SIGBUS.
    pub fn store(
        &self,
        off: u64,
        len: u64,
        file_size: u64,
        pattern: &Pattern,
    ) -> Result<(), Errno> {
        self.check_access(off, len, file_size)?;
        self.prefault(off, len, libc::MADV_POPULATE_WRITE)?;
        let base = self.addr.as_ptr();
        let end = off + len; // no overflow: checked by check_access
        let mut pos = off;
        while pos < end {
            let word_index = pos / 8;
            let word = pattern.word(word_index);
            let within = (pos % 8) as usize;
            if within == 0 && end - pos >= 8 {
                // SAFETY: `pos..pos + 8` is inside the checked range, so inside the mapping
                // and in pages backed by the file; `base` is page aligned and `pos` a multiple
                // of 8, so the pointer is aligned for u64. Nothing else in this process holds
                // a reference into the mapping.
                unsafe {
                    ptr::write_volatile(
                        base.add(pos as usize).cast::<u64>(),
                        u64::from_le_bytes(word),
                    )
                };
                pos += 8;
            } else {
                // SAFETY: `pos` is inside the checked range (see above); u8 needs no alignment.
                unsafe { ptr::write_volatile(base.add(pos as usize), word[within]) };
                pos += 1;
            }
        }
        Ok(())
    }

    /// Write back every cache line of `[off, off + len)` with `insn`, then `sfence`.
    /// Same checks as [`Mapping::store`] (a flush faults like a load), with read faults.
    pub fn flush(&self, off: u64, len: u64, file_size: u64, insn: FlushInsn) -> Result<(), Errno> {
        self.check_access(off, len, file_size)?;
        self.prefault(off, len, libc::MADV_POPULATE_READ)?;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the range is inside this live mapping and in pages backed by the file
            // (check_access) that are faulted in (prefault), so no line of it faults; the
            // offset fits in usize because it is below `self.len`.
            unsafe {
                crate::cpu::flush_range(insn, self.addr.as_ptr().add(off as usize), len as usize)
            };
            Ok(())
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = insn;
            Err(libc::ENOSYS)
        }
    }

    /// `msync(MS_SYNC)` of `[page_floor(off), off + len)`. `ENOMEM` (as msync(2) says of
    /// unmapped addresses) when the range leaves the mapping, so no other mapping of the
    /// process is ever synced.
    pub fn msync(&self, off: u64, len: u64) -> Result<(), Errno> {
        self.msync_flags(off, len, libc::MS_SYNC)
    }

    /// `msync(flags)` of `[page_floor(off), off + len)` (`MS_SYNC`, `MS_ASYNC` or
    /// `MS_INVALIDATE`); `ENOMEM` outside the mapping.
    pub fn msync_flags(&self, off: u64, len: u64, flags: libc::c_int) -> Result<(), Errno> {
        let end = off.checked_add(len).ok_or(libc::ENOMEM)?;
        if end > self.len as u64 {
            return Err(libc::ENOMEM);
        }
        let start = sys::page_round_down(off);
        // SAFETY: `[start, end)` lies inside this live mapping (start <= off <= end <= len);
        // msync reads no memory through Rust references.
        check(unsafe {
            libc::msync(
                self.addr.as_ptr().add(start as usize).cast(),
                (end - start) as usize,
                flags,
            )
        })
        .map(drop)
    }

    /// Fault in the pages of `[off, off + len)` with `madvise(advice)`
    /// (`MADV_POPULATE_WRITE` or `MADV_POPULATE_READ`, Linux >= 5.14): the kernel takes the
    /// same faults the stores or flushes would, but reports failure as an errno (`EFAULT`
    /// where an access would raise SIGBUS, `ENOMEM`, `EHWPOISON`) instead of a signal.
    /// `EINVAL` (a kernel without the advice) is ignored. Call after `check_access`.
    fn prefault(&self, off: u64, len: u64, advice: libc::c_int) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let start = sys::page_round_down(off);
        // No overflow: `off + len <= self.len`, a page multiple (check_access).
        let end = sys::page_round_up(off + len).unwrap_or(self.len as u64);
        // SAFETY: `[start, end)` is page aligned and inside this live mapping; madvise with a
        // populate advice only faults pages in and changes no memory Rust code can observe.
        let ret = unsafe {
            libc::madvise(
                self.addr.as_ptr().add(start as usize).cast(),
                (end - start) as usize,
                advice,
            )
        };
        match check(ret) {
            Ok(_) => Ok(()),
            Err(libc::EINVAL) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `Ok` when `[off, off + len)` is inside the mapping and inside the pages that back the
    /// file (`round_up(file_size, page)`), else `EFAULT`.
    fn check_access(&self, off: u64, len: u64, file_size: u64) -> Result<(), Errno> {
        let end = off.checked_add(len).ok_or(libc::EFAULT)?;
        let backed = sys::page_round_up(file_size).unwrap_or(u64::MAX);
        if end > self.len as u64 || end > backed {
            return Err(libc::EFAULT);
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the region was returned by mmap with this length and has not been unmapped
        // (`unmap` consumes self without running Drop); it is not used after this.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn prefault_reports_efault_where_a_store_would_raise_sigbus() {
        let file = tempfile::tempfile().expect("tempfile");
        file.set_len(100).expect("set_len");
        let map = Mapping::new(file.as_fd(), 3 * 4096, false).expect("mmap");

        let inside = map.prefault(0, 100, libc::MADV_POPULATE_WRITE);
        let past_eof = map.prefault(4096, 8, libc::MADV_POPULATE_WRITE);
        let past_eof_read = map.prefault(8192, 8, libc::MADV_POPULATE_READ);

        assert_eq!(inside, Ok(()));
        assert_eq!(past_eof, Err(libc::EFAULT));
        assert_eq!(past_eof_read, Err(libc::EFAULT));
        assert_eq!(map.unmap(), Ok(()));
    }
}
