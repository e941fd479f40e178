//! Op execution on the host file system (ext4/tmpfs under a tempdir): file contents are
//! compared with pattern bytes computed independently, one byte at a time.

use std::fs;
use std::path::Path;

use guest_agent::exec::Executor;
use workloads::{FallocMode, Op, OpOutcome, Pattern, Workload};

const SEED: u64 = 0xC0FFEE;

fn workload(ops: Vec<Op>) -> Workload {
    Workload {
        name: "test".into(),
        seed: SEED,
        profile: None,
        ops,
    }
}

fn f(name: &str) -> String {
    name.to_owned()
}

/// Overlay `pattern` bytes of `[off, off + len)` onto `image`, one `byte_at` at a time.
fn overlay(image: &mut Vec<u8>, id: u32, off: usize, len: usize) {
    let p = Pattern::new(SEED, id);
    if image.len() < off + len {
        image.resize(off + len, 0);
    }
    for (i, b) in image[off..off + len].iter_mut().enumerate() {
        *b = p.byte_at((off + i) as u64);
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).expect("read back")
}

#[test]
fn pwrites_land_with_pattern_bytes_and_report_byte_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("a")),
        Op::Pwrite {
            file: f("a"),
            off: 0,
            len: 5000,
            pattern: None,
        },
        Op::Pwrite {
            file: f("a"),
            off: 4093,
            len: 3001,
            pattern: Some(77),
        },
        Op::Fsync { file: f("a") },
        Op::Fdatasync { file: f("a") },
        Op::Close { file: f("a") },
        Op::fsync_root(),
        Op::Sync,
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert_eq!(outcomes[1], OpOutcome::ok(5000));
    assert_eq!(outcomes[2], OpOutcome::ok(3001));
    assert!(outcomes.iter().all(OpOutcome::succeeded), "{outcomes:?}");
    let mut want = Vec::new();
    overlay(&mut want, 2, 0, 5000); // default pattern id of op 1 is k + 1
    overlay(&mut want, 77, 4093, 3001);
    assert_eq!(read(dir.path(), "a"), want);
}

#[test]
fn a_pwrite_longer_than_one_chunk_is_written_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let len = guest_agent::exec::PWRITE_CHUNK + 4099;
    let w = workload(vec![
        Op::create(f("big")),
        Op::Pwrite {
            file: f("big"),
            off: 3,
            len: len as u64,
            pattern: Some(5),
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert_eq!(outcomes[1], OpOutcome::ok(len as i64));
    let mut want = Vec::new();
    overlay(&mut want, 5, 3, len);
    assert!(read(dir.path(), "big") == want, "contents differ");
}

#[test]
fn mmap_stores_flush_and_msync_write_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("m")),
        Op::Ftruncate {
            file: f("m"),
            size: 10_000,
        },
        Op::Mmap {
            file: f("m"),
            len: 10_000,
            sync: false,
        },
        Op::MmapStore {
            file: f("m"),
            off: 13,
            len: 5000,
            pattern: Some(9),
        },
        Op::MmapStore {
            file: f("m"),
            off: 8190,
            len: 1805,
            pattern: None,
        },
        Op::Flush {
            file: f("m"),
            off: 13,
            len: 5000,
        },
        Op::Msync {
            file: f("m"),
            off: 4097,
            len: 100,
        },
        Op::Msync {
            file: f("m"),
            off: 0,
            len: 12_288,
        },
        Op::Munmap { file: f("m") },
        Op::Fsync { file: f("m") },
        Op::Close { file: f("m") },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert!(outcomes.iter().all(OpOutcome::succeeded), "{outcomes:?}");
    let mut want = vec![0u8; 10_000];
    overlay(&mut want, 9, 13, 5000);
    overlay(&mut want, 5, 8190, 1805); // op 4 → pattern 5
    assert_eq!(read(dir.path(), "m"), want);
}

#[test]
fn map_sync_off_dax_fails_with_eopnotsupp_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("s")),
        Op::Ftruncate {
            file: f("s"),
            size: 4096,
        },
        Op::Mmap {
            file: f("s"),
            len: 4096,
            sync: true,
        },
        Op::MmapStore {
            file: f("s"),
            off: 0,
            len: 8,
            pattern: None,
        },
        Op::Pwrite {
            file: f("s"),
            off: 0,
            len: 8,
            pattern: Some(1),
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert_eq!(outcomes[2], OpOutcome::failed(libc::EOPNOTSUPP));
    assert_eq!(outcomes[3], OpOutcome::failed(libc::EINVAL));
    assert_eq!(outcomes[4], OpOutcome::ok(8));
}

#[test]
fn mmap_store_past_eof_pages_is_efault_not_sigbus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("e")),
        Op::Ftruncate {
            file: f("e"),
            size: 100,
        },
        Op::Mmap {
            file: f("e"),
            len: 16_384,
            sync: false,
        },
        Op::MmapStore {
            file: f("e"),
            off: 4096,
            len: 8,
            pattern: None,
        },
        Op::MmapStore {
            file: f("e"),
            off: 4000,
            len: 200,
            pattern: None,
        },
        Op::Flush {
            file: f("e"),
            off: 8192,
            len: 64,
        },
        Op::MmapStore {
            file: f("e"),
            off: 16_380,
            len: 8,
            pattern: None,
        },
        Op::MmapStore {
            file: f("e"),
            off: u64::MAX - 2,
            len: 8,
            pattern: None,
        },
        Op::MmapStore {
            file: f("e"),
            off: 96,
            len: 200,
            pattern: Some(3),
        },
        Op::Flush {
            file: f("e"),
            off: 0,
            len: 4096,
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    for k in [3, 4, 5, 6, 7] {
        assert_eq!(outcomes[k], OpOutcome::failed(libc::EFAULT), "op {k}");
    }
    // Inside the last partial page: allowed, and only the bytes below EOF reach the file.
    assert_eq!(outcomes[8], OpOutcome::ok(0));
    assert_eq!(outcomes[9], OpOutcome::ok(0));
    let mut want = vec![0u8; 100];
    overlay(&mut want, 3, 96, 4);
    assert_eq!(read(dir.path(), "e"), want);
}

#[test]
fn ops_on_names_without_descriptor_or_mapping_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::Fsync { file: f("x") },
        Op::Munmap { file: f("x") },
        Op::MmapStore {
            file: f("x"),
            off: 0,
            len: 1,
            pattern: None,
        },
        Op::open(f("x")),
        Op::Close { file: f("x") },
        Op::create(f("bad\0name")),
        Op::Mmap {
            file: f("x"),
            len: 4096,
            sync: false,
        },
        Op::create(f("y")),
        Op::Mmap {
            file: f("y"),
            len: 0,
            sync: false,
        },
        Op::Msync {
            file: f("y"),
            off: 0,
            len: 1,
        },
        Op::Pwrite {
            file: f("y"),
            off: u64::MAX,
            len: 1,
            pattern: None,
        },
        Op::Ftruncate {
            file: f("y"),
            size: u64::MAX,
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    let errnos: Vec<Option<i32>> = outcomes.iter().map(|o| o.errno).collect();
    assert_eq!(
        errnos,
        [
            libc::EBADF,
            libc::EINVAL,
            libc::EINVAL,
            libc::ENOENT,
            libc::EBADF,
            libc::EINVAL,
            libc::EBADF,
        ]
        .into_iter()
        .map(Some)
        .chain([
            None,
            Some(libc::EINVAL),
            Some(libc::EINVAL),
            Some(libc::EINVAL),
            Some(libc::EINVAL)
        ])
        .collect::<Vec<_>>()
    );
}

#[test]
fn rename_moves_descriptor_and_mapping_and_closes_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("a")),
        Op::create(f("b")),
        Op::Ftruncate {
            file: f("a"),
            size: 64,
        },
        Op::Mmap {
            file: f("a"),
            len: 64,
            sync: false,
        },
        Op::Rename {
            from: f("a"),
            to: f("b"),
        },
        Op::MmapStore {
            file: f("b"),
            off: 0,
            len: 64,
            pattern: Some(4),
        },
        Op::Fsync { file: f("b") },
        Op::Fsync { file: f("a") },
        Op::Rename {
            from: f("b"),
            to: f("b"),
        },
        Op::Fsync { file: f("b") },
        Op::Rename {
            from: f("nope"),
            to: f("c"),
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert!(
        outcomes[..7].iter().all(OpOutcome::succeeded),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[7], OpOutcome::failed(libc::EBADF));
    assert_eq!(outcomes[8], OpOutcome::ok(0));
    assert_eq!(outcomes[9], OpOutcome::ok(0));
    assert_eq!(outcomes[10], OpOutcome::failed(libc::ENOENT));
    assert!(!dir.path().join("a").exists());
    let mut want = Vec::new();
    overlay(&mut want, 4, 0, 64);
    assert_eq!(read(dir.path(), "b"), want);
}

#[test]
fn unlink_closes_what_is_held_and_remap_replaces_the_mapping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("u")),
        Op::Ftruncate {
            file: f("u"),
            size: 8192,
        },
        Op::Mmap {
            file: f("u"),
            len: 4096,
            sync: false,
        },
        Op::Mmap {
            file: f("u"),
            len: 8192,
            sync: false,
        },
        Op::MmapStore {
            file: f("u"),
            off: 4096,
            len: 16,
            pattern: None,
        },
        Op::Unlink { file: f("u") },
        Op::Fsync { file: f("u") },
        Op::MmapStore {
            file: f("u"),
            off: 0,
            len: 1,
            pattern: None,
        },
        Op::Unlink { file: f("u") },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    assert!(
        outcomes[..6].iter().all(OpOutcome::succeeded),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[6], OpOutcome::failed(libc::EBADF));
    assert_eq!(outcomes[7], OpOutcome::failed(libc::EINVAL));
    assert_eq!(outcomes[8], OpOutcome::failed(libc::ENOENT));
}

#[test]
fn fallocate_modes_run_or_report_the_file_systems_errno() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("h")),
        Op::Pwrite {
            file: f("h"),
            off: 0,
            len: 12_288,
            pattern: Some(6),
        },
        Op::Fallocate {
            file: f("h"),
            mode: FallocMode::PunchHole,
            off: 4096,
            len: 4096,
        },
        Op::Fallocate {
            file: f("h"),
            mode: FallocMode::KeepSize,
            off: 12_288,
            len: 4096,
        },
        Op::Fallocate {
            file: f("h"),
            mode: FallocMode::Allocate,
            off: 0,
            len: 16_384,
        },
        Op::Fallocate {
            file: f("h"),
            mode: FallocMode::ZeroRange,
            off: 0,
            len: 100,
        },
        Op::Fallocate {
            file: f("h"),
            mode: FallocMode::Allocate,
            off: 0,
            len: u64::MAX,
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    for o in &outcomes[2..6] {
        assert!(
            o.succeeded() || o.errno == Some(libc::EOPNOTSUPP),
            "{outcomes:?}"
        );
    }
    assert_eq!(outcomes[6], OpOutcome::failed(libc::EINVAL));
    let data = read(dir.path(), "h");
    let mut want = Vec::new();
    overlay(&mut want, 6, 0, 12_288);
    if outcomes[2].succeeded() {
        want[4096..8192].fill(0);
    }
    if outcomes[4].succeeded() {
        want.resize(16_384, 0);
    }
    if outcomes[5].succeeded() {
        want[..100].fill(0);
    }
    assert_eq!(data, want);
}

#[test]
fn collapse_and_insert_range_move_the_data_or_report_eopnotsupp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("s")),
        Op::Pwrite {
            file: f("s"),
            off: 0,
            len: 16_384,
            pattern: Some(4),
        },
        Op::Fallocate {
            file: f("s"),
            mode: FallocMode::CollapseRange,
            off: 4096,
            len: 4096,
        },
        Op::Fallocate {
            file: f("s"),
            mode: FallocMode::InsertRange,
            off: 0,
            len: 4096,
        },
    ]);

    let outcomes = Executor::run_all(dir.path(), &w).expect("run");

    let mut want = Vec::new();
    overlay(&mut want, 4, 0, 16_384);
    match (outcomes[2], outcomes[3]) {
        (c, i) if c.succeeded() && i.succeeded() => {
            // Page 1 collapsed away, then a page of zeros inserted in front.
            want.drain(4096..8192);
            want.splice(0..0, vec![0; 4096]);
        }
        // A file system that cannot shift extents (tmpfs) refuses both.
        (c, i) => {
            assert_eq!(c.errno, Some(libc::EOPNOTSUPP), "{outcomes:?}");
            assert_eq!(i.errno, Some(libc::EOPNOTSUPP), "{outcomes:?}");
        }
    }
    assert_eq!(read(dir.path(), "s"), want);
}

#[test]
fn sync_calls_and_pwritev2_run_and_write_the_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload(vec![
        Op::create(f("a")),
        Op::Pwritev2 {
            file: f("a"),
            off: 3,
            len: 5000,
            pattern: None,
            flags: workloads::RwfFlag::Dsync,
        },
        Op::Pwritev2 {
            file: f("a"),
            off: 8192,
            len: 100,
            pattern: None,
            flags: workloads::RwfFlag::Sync,
        },
        Op::Mmap {
            file: f("a"),
            len: 8192,
            sync: false,
        },
        Op::MsyncAsync {
            file: f("a"),
            off: 0,
            len: 4096,
        },
        Op::MsyncInvalidate {
            file: f("a"),
            off: 5,
            len: 100,
        },
        Op::SyncFileRange {
            file: f("a"),
            off: 0,
            len: 8292,
        },
        Op::Syncfs { file: f("a") },
        Op::Syncfs { file: f("nope") },
    ]);

    let out = Executor::run_all(&dir.path().join("w"), &w).expect("run");

    assert_eq!(out[1], OpOutcome::ok(5000));
    assert_eq!(out[2], OpOutcome::ok(100));
    assert!(out[3..8].iter().all(OpOutcome::succeeded), "{out:?}");
    assert_eq!(out[8], OpOutcome::failed(libc::EBADF));
    let mut want = Vec::new();
    overlay(&mut want, 2, 3, 5000);
    overlay(&mut want, 3, 8192, 100);
    assert_eq!(read(&dir.path().join("w"), "a"), want);
}

/// The `flags:` of `/proc/self/fdinfo` for the descriptor this process holds on `path`.
fn open_flags_of(path: &std::path::Path) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")
        .expect("fd dir")
        .flatten()
    {
        if std::fs::read_link(e.path()).ok().as_deref() != Some(path) {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/self/fdinfo/{}",
            e.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        if let Some(v) = info.lines().find_map(|l| l.strip_prefix("flags:")) {
            out.push(u32::from_str_radix(v.trim(), 8).expect("octal flags"));
        }
    }
    out
}

#[test]
fn create_and_open_with_sync_set_o_dsync_and_o_sync_and_write_the_pattern() {
    use workloads::OpenSync;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut exec = Executor::new(dir.path(), SEED).expect("executor");
    let path = dir.path().join("d");
    let (dsync, sync) = (libc::O_DSYNC as u32, libc::O_SYNC as u32);

    let create = Op::Create {
        file: f("d"),
        sync: OpenSync::Dsync,
        direct: false,
    };
    assert!(exec.execute(0, &create).succeeded());
    let flags = open_flags_of(&path);
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0] & sync, dsync, "O_DSYNC only: {:o}", flags[0]);
    let write = Op::Pwrite {
        file: f("d"),
        off: 5,
        len: 4000,
        pattern: None,
    };
    assert_eq!(exec.execute(1, &write), workloads::OpOutcome::ok(4000));

    let reopen = Op::Open {
        file: f("d"),
        sync: OpenSync::Sync,
        direct: false,
    };
    assert!(exec.execute(2, &reopen).succeeded());
    let flags = open_flags_of(&path);
    assert_eq!(
        flags.len(),
        1,
        "the new descriptor replaced the old: {flags:?}"
    );
    assert_eq!(flags[0] & sync, sync, "O_SYNC: {:o}", flags[0]);
    assert_eq!(exec.execute(3, &write), workloads::OpOutcome::ok(4000));

    assert!(exec.execute(4, &Op::open(f("d"))).succeeded());
    let flags = open_flags_of(&path);
    assert_eq!(flags[0] & sync, 0, "plain: {:o}", flags[0]);
    drop(exec);

    let mut want = Vec::new();
    overlay(&mut want, 4, 5, 4000);
    assert_eq!(read(dir.path(), "d"), want);
}
