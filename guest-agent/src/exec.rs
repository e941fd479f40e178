//! Executes workload ops against real files in one directory: the per-name table of open
//! descriptors and mappings, and one method per op kind that turns the system call's result
//! into an [`OpOutcome`]. A failing call is an outcome, never an error of the agent.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use workloads::{FallocMode, Op, OpOutcome, OpenSync, Pattern, RwfFlag, Workload};

use crate::cpu::FlushInsn;
use crate::mapping::Mapping;
use crate::meta;
use crate::sys::{self, check, check_size, errno_of, to_off, Errno};
use crate::uring;

mod namespace;

/// Largest single `pwrite(2)`: a longer `Pwrite` op is issued as several calls of at most
/// this many bytes, so a huge length never needs a huge buffer.
pub const PWRITE_CHUNK: usize = 8 << 20;

/// Mode bits of files made by `Create`.
const CREATE_MODE: libc::c_uint = 0o644;

/// The `RWF_*` bits of a `pwritev2` flag.
fn rwf_bits(flag: RwfFlag) -> libc::c_int {
    match flag {
        RwfFlag::Dsync => libc::RWF_DSYNC,
        RwfFlag::Sync => libc::RWF_SYNC,
    }
}

/// The `O_*` bits of an open flag (`O_SYNC` includes `O_DSYNC`'s bit, as in the kernel).
fn open_sync_bits(sync: OpenSync) -> libc::c_int {
    match sync {
        OpenSync::None => 0,
        OpenSync::Dsync => libc::O_DSYNC,
        OpenSync::Sync => libc::O_SYNC,
    }
}

/// `O_DIRECT` when `direct` (on DAX, reads and writes take the DAX path either way).
fn direct_bit(direct: bool) -> libc::c_int {
    if direct {
        libc::O_DIRECT
    } else {
        0
    }
}

/// What the agent holds for one file name.
#[derive(Debug, Default)]
struct FileEntry {
    fd: Option<OwnedFd>,
    map: Option<Mapping>,
}

/// Runs the ops of one workload in one directory. Dropping it unmaps every mapping and
/// closes every descriptor it still holds.
#[derive(Debug)]
pub struct Executor {
    dir: PathBuf,
    dir_fd: OwnedFd,
    seed: u64,
    files: HashMap<String, FileEntry>,
}

impl Executor {
    /// Create `dir` (and its parents) if missing and open it for a workload seeded `seed`.
    pub fn new(dir: &Path, seed: u64) -> io::Result<Executor> {
        fs::create_dir_all(dir)?;
        let dir_file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dir)?;
        Ok(Executor {
            dir: dir.to_path_buf(),
            dir_fd: dir_file.into(),
            seed,
            files: HashMap::new(),
        })
    }

    /// Run every op of `workload` in `dir` and return the outcomes (no protocol, no markers).
    pub fn run_all(dir: &Path, workload: &Workload) -> io::Result<Vec<OpOutcome>> {
        let mut exec = Executor::new(dir, workload.seed)?;
        Ok(workload
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| exec.execute(k, op))
            .collect())
    }

    /// Execute op `k`.
    pub fn execute(&mut self, k: usize, op: &Op) -> OpOutcome {
        match self.dispatch(k, op) {
            Ok(ret) => OpOutcome::ok(ret),
            Err(errno) => OpOutcome::failed(errno),
        }
    }

    fn dispatch(&mut self, k: usize, op: &Op) -> Result<i64, Errno> {
        match op {
            Op::Create { file, sync, direct } => self.open(
                file,
                libc::O_CREAT
                    | libc::O_RDWR
                    | libc::O_TRUNC
                    | open_sync_bits(*sync)
                    | direct_bit(*direct),
            ),
            Op::Open { file, sync, direct } => self.open(
                file,
                libc::O_RDWR | open_sync_bits(*sync) | direct_bit(*direct),
            ),
            Op::Close { file } => self.close(file),
            Op::Pwrite { file, off, len, .. } => {
                self.pwrite(file, *off, *len, self.pattern(op, k)?, None)
            }
            Op::Pwritev2 {
                file,
                off,
                len,
                flags,
                ..
            } => self.pwrite(file, *off, *len, self.pattern(op, k)?, Some(*flags)),
            Op::Mmap { file, len, sync } => self.mmap(file, *len, *sync),
            Op::Munmap { file } => self.munmap(file),
            Op::MmapStore { file, off, len, .. } => {
                self.mmap_store(file, *off, *len, &self.pattern(op, k)?)
            }
            Op::Flush { file, off, len } => self.flush(file, *off, *len),
            Op::Msync { file, off, len } => self.mapping(file)?.msync(*off, *len).map(|()| 0),
            Op::MsyncAsync { file, off, len } => self
                .mapping(file)?
                .msync_flags(*off, *len, libc::MS_ASYNC)
                .map(|()| 0),
            Op::MsyncInvalidate { file, off, len } => self
                .mapping(file)?
                .msync_flags(*off, *len, libc::MS_INVALIDATE)
                .map(|()| 0),
            Op::Syncfs { file } => {
                // SAFETY: the descriptor is open while `self` borrows it.
                check(unsafe { libc::syncfs(self.fd(file)?.as_raw_fd()) })
            }
            Op::SyncFileRange { file, off, len } => {
                let (off, len) = (to_off(*off)?, to_off(*len)?);
                let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                // SAFETY: the descriptor is open while `self` borrows it.
                check(unsafe { libc::sync_file_range(self.fd(file)?.as_raw_fd(), off, len, flags) })
            }
            Op::Fsync { file } => {
                // SAFETY: the descriptor is open while `self` borrows it.
                check(unsafe { libc::fsync(self.fd(file)?.as_raw_fd()) })
            }
            Op::Fdatasync { file } => {
                // SAFETY: the descriptor is open while `self` borrows it.
                check(unsafe { libc::fdatasync(self.fd(file)?.as_raw_fd()) })
            }
            Op::Ftruncate { file, size } => {
                let size = to_off(*size)?;
                // SAFETY: the descriptor is open while `self` borrows it.
                check(unsafe { libc::ftruncate(self.fd(file)?.as_raw_fd(), size) })
            }
            Op::Fallocate {
                file,
                mode,
                off,
                len,
            } => self.fallocate(file, *mode, *off, *len),
            Op::Rename { from, to } => self.rename(from, to),
            Op::Unlink { file } => self.unlink(file),
            Op::FsyncDir { dir: None } => self.fsync_dir(),
            Op::FsyncDir { dir: Some(dir) } => self.fsync_subdir(dir),
            Op::Mkdir { dir } => self.mkdir(dir),
            Op::Rmdir { dir } => self.rmdir(dir),
            Op::Link { from, to } => self.link(from, to),
            Op::Symlink { target, link } => self.symlink(target, link),
            Op::Renameat2 { from, to, flags } => self.renameat2(from, to, *flags),
            Op::Sync => {
                // SAFETY: sync(2) takes no arguments and cannot fail.
                unsafe { libc::sync() };
                Ok(0)
            }
            Op::Chmod { file, mode } => meta::chmod(self.fd(file)?, *mode),
            Op::Setxattr {
                file, name, len, ..
            } => {
                let id = op.pattern_id(k).ok_or(libc::EINVAL)?;
                let value = workloads::meta::xattr_value(self.seed, id, *len);
                meta::setxattr(self.fd(file)?, name, &value)
            }
            Op::Removexattr { file, name } => meta::removexattr(self.fd(file)?, name),
            Op::Utimensat { file, sec, nsec } => meta::set_times(self.fd(file)?, *sec, *nsec),
            Op::UringWrite {
                file,
                off,
                len,
                flags,
                ..
            } => {
                let bits = flags.map_or(0, rwf_bits);
                uring::write(self.fd(file)?, *off, *len, &self.pattern(op, k)?, bits)
            }
            Op::UringFsync { file, datasync } => uring::fsync(self.fd(file)?, *datasync),
        }
    }

    /// The data pattern of data op `k`.
    fn pattern(&self, op: &Op, k: usize) -> Result<Pattern, Errno> {
        let id = op.pattern_id(k).ok_or(libc::EINVAL)?;
        Ok(Pattern::new(self.seed, id))
    }

    /// The open descriptor of `name`, or `EBADF`.
    fn fd(&self, name: &str) -> Result<BorrowedFd<'_>, Errno> {
        self.files
            .get(name)
            .and_then(|e| e.fd.as_ref())
            .map(|fd| fd.as_fd())
            .ok_or(libc::EBADF)
    }

    /// The mapping of `name`, or `EINVAL`.
    fn mapping(&self, name: &str) -> Result<&Mapping, Errno> {
        self.files
            .get(name)
            .and_then(|e| e.map.as_ref())
            .ok_or(libc::EINVAL)
    }

    /// `Create` / `Open`: `openat(dir, name, flags | O_CLOEXEC, 0644)`. On success the new
    /// descriptor replaces (closes) one already held under `name`; a mapping stays as it is.
    /// Returns 0, not the descriptor number, so outcomes do not depend on descriptor reuse.
    fn open(&mut self, name: &str, flags: libc::c_int) -> Result<i64, Errno> {
        let c = namespace::c_path(name)?;
        // SAFETY: `dir_fd` is open for the life of `self` and `c` is NUL-terminated.
        let raw = unsafe {
            libc::openat(
                self.dir_fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC,
                CREATE_MODE,
            )
        };
        check(raw)?;
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        self.files.entry(name.to_owned()).or_default().fd = Some(fd);
        Ok(0)
    }

    /// `Close`: munmap the mapping of `name` (if any), then close its descriptor (`EBADF`
    /// when none is open). The first error is reported.
    fn close(&mut self, name: &str) -> Result<i64, Errno> {
        let entry = self.files.remove(name).unwrap_or_default();
        let unmapped = entry.map.map_or(Ok(()), Mapping::unmap);
        let fd = entry.fd.ok_or(libc::EBADF)?;
        // SAFETY: `into_raw_fd` hands over ownership, so the descriptor is closed exactly once.
        check(unsafe { libc::close(fd.into_raw_fd()) })?;
        unmapped.map(|()| 0)
    }

    /// `Pwrite`: the pattern bytes of `[off, off + len)`, in calls of at most
    /// [`PWRITE_CHUNK`] bytes. Returns the bytes written; stops at a short write; an error
    /// after some bytes were written returns the count, like a short write. With `rwf`
    /// (`Pwritev2`), each call is `pwritev2(2)` with `RWF_DSYNC` or `RWF_SYNC`; a kernel
    /// that refuses the flag fails the op with its errno (EOPNOTSUPP, EINVAL).
    fn pwrite(
        &self,
        name: &str,
        off: u64,
        len: u64,
        pattern: Pattern,
        rwf: Option<RwfFlag>,
    ) -> Result<i64, Errno> {
        let fd = self.fd(name)?;
        let chunk = usize::try_from(len).map_or(PWRITE_CHUNK, |l| l.min(PWRITE_CHUNK));
        let mut buf = vec![0u8; chunk];
        let mut done: u64 = 0;
        loop {
            let n = usize::try_from(len - done).map_or(chunk, |rest| rest.min(chunk));
            let pos = off.checked_add(done).ok_or(libc::EINVAL)?;
            let pos_off = to_off(pos)?;
            pattern.fill(pos, &mut buf[..n]);
            let ret = match rwf {
                // SAFETY: `buf[..n]` is initialised and readable; the descriptor is open.
                None => unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), n, pos_off) },
                Some(flag) => sys::pwritev2(fd, &buf[..n], pos_off, rwf_bits(flag)),
            };
            match check_size(ret) {
                Ok(w) => {
                    done += w;
                    if w < n as u64 || done >= len {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        i64::try_from(done).map_err(|_| libc::EOVERFLOW)
    }

    /// `Mmap`: unmap the old mapping of `name` (if any), then map `len` bytes anew.
    fn mmap(&mut self, name: &str, len: u64, sync: bool) -> Result<i64, Errno> {
        let entry = self.files.get_mut(name).ok_or(libc::EBADF)?;
        let fd = entry.fd.as_ref().ok_or(libc::EBADF)?;
        if let Some(old) = entry.map.take() {
            old.unmap()?;
        }
        let map = Mapping::new(fd.as_fd(), len, sync)?;
        entry.map = Some(map);
        Ok(0)
    }

    /// `Munmap`: `EINVAL` when `name` has no mapping.
    fn munmap(&mut self, name: &str) -> Result<i64, Errno> {
        let map = self
            .files
            .get_mut(name)
            .and_then(|e| e.map.take())
            .ok_or(libc::EINVAL)?;
        map.unmap().map(|()| 0)
    }

    /// `MmapStore`: `EINVAL` without a mapping; `EFAULT` outside the mapping or past the
    /// pages backing the file's current size (see [`Mapping::store`]).
    fn mmap_store(&self, name: &str, off: u64, len: u64, pattern: &Pattern) -> Result<i64, Errno> {
        let map = self.mapping(name)?;
        let size = sys::file_size(self.fd(name)?)?;
        map.store(off, len, size, pattern).map(|()| 0)
    }

    /// `Flush`: like `MmapStore`'s checks, then the cache-line flushes and `sfence`.
    fn flush(&self, name: &str, off: u64, len: u64) -> Result<i64, Errno> {
        let map = self.mapping(name)?;
        let size = sys::file_size(self.fd(name)?)?;
        let insn = FlushInsn::detect().ok_or(libc::ENOSYS)?;
        map.flush(off, len, size, insn).map(|()| 0)
    }

    /// `Fallocate` with the mode bits of `mode`.
    fn fallocate(&self, name: &str, mode: FallocMode, off: u64, len: u64) -> Result<i64, Errno> {
        let bits = match mode {
            FallocMode::Allocate => 0,
            FallocMode::KeepSize => libc::FALLOC_FL_KEEP_SIZE,
            FallocMode::PunchHole => libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            FallocMode::ZeroRange => libc::FALLOC_FL_ZERO_RANGE,
            // Either fails with EOPNOTSUPP where the file system cannot shift extents (the
            // op's errno says so; the oracle takes a failed op as having changed nothing).
            FallocMode::CollapseRange => libc::FALLOC_FL_COLLAPSE_RANGE,
            FallocMode::InsertRange => libc::FALLOC_FL_INSERT_RANGE,
        };
        let (off, len) = (to_off(off)?, to_off(len)?);
        // SAFETY: the descriptor is open while `self` borrows it.
        check(unsafe { libc::fallocate(self.fd(name)?.as_raw_fd(), bits, off, len) })
    }

    /// `Rename`: whatever is held under `to` is closed first; on success the descriptor and
    /// mapping of `from` move to `to`. Renaming a name to itself changes nothing held.
    fn rename(&mut self, from: &str, to: &str) -> Result<i64, Errno> {
        let (c_from, c_to) = (namespace::c_path(from)?, namespace::c_path(to)?);
        if from != to {
            drop(self.files.remove(to));
        }
        let dir = self.dir_fd.as_raw_fd();
        // SAFETY: `dir` is open for the life of `self`; both names are NUL-terminated.
        check(unsafe { libc::renameat(dir, c_from.as_ptr(), dir, c_to.as_ptr()) })?;
        if from != to {
            if let Some(entry) = self.files.remove(from) {
                self.files.insert(to.to_owned(), entry);
            }
        }
        Ok(0)
    }

    /// `Unlink`: unmap and close what is held under `name`, then `unlinkat`.
    fn unlink(&mut self, name: &str) -> Result<i64, Errno> {
        let c = namespace::c_path(name)?;
        drop(self.files.remove(name));
        // SAFETY: `dir_fd` is open for the life of `self` and `c` is NUL-terminated.
        check(unsafe { libc::unlinkat(self.dir_fd.as_raw_fd(), c.as_ptr(), 0) })
    }

    /// `FsyncDir`: `open(dir, O_RDONLY | O_DIRECTORY)`, `fsync`, `close`.
    fn fsync_dir(&self) -> Result<i64, Errno> {
        let dir: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.dir)
            .map_err(|e| errno_of(&e))?;
        dir.sync_all().map_err(|e| errno_of(&e))?;
        Ok(0)
    }
}
