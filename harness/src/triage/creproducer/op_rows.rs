//! One row of `repro.c`'s op table (`struct op`) per workload op.

use std::collections::BTreeMap;

use workloads::{FallocMode, Op, OpenSync, RenameFlag, RwfFlag};

use super::{c_string, comment_safe};

pub(super) fn op_row(op: &Op, k: usize, names: &BTreeMap<String, usize>, expect: i64) -> String {
    let idx = |f: &str| names.get(f).map_or(-1, |&i| i as i64);
    let (kind, fields): (&str, String) = match op {
        Op::Create { file, sync, direct } | Op::Open { file, sync, direct } => (
            if matches!(op, Op::Create { .. }) {
                "K_CREATE"
            } else {
                "K_OPEN"
            },
            format!(
                ".file = {}, .sync = {}",
                idx(file),
                match (sync, direct) {
                    (OpenSync::None, false) => "0",
                    (OpenSync::Dsync, false) => "O_DSYNC",
                    (OpenSync::Sync, false) => "O_SYNC",
                    (OpenSync::None, true) => "O_DIRECT",
                    (OpenSync::Dsync, true) => "O_DSYNC | O_DIRECT",
                    (OpenSync::Sync, true) => "O_SYNC | O_DIRECT",
                }
            ),
        ),
        Op::Close { file } => ("K_CLOSE", format!(".file = {}", idx(file))),
        Op::Pwrite { file, off, len, .. } | Op::MmapStore { file, off, len, .. } => (
            if matches!(op, Op::Pwrite { .. }) {
                "K_PWRITE"
            } else {
                "K_MMAP_STORE"
            },
            format!(
                ".file = {}, .off = {off}ULL, .len = {len}ULL, .pattern = {}U",
                idx(file),
                op.pattern_id(k).unwrap_or(0)
            ),
        ),
        Op::Mmap { file, len, sync } => (
            "K_MMAP",
            format!(
                ".file = {}, .len = {len}ULL, .sync = {}",
                idx(file),
                u8::from(*sync)
            ),
        ),
        Op::Munmap { file } => ("K_MUNMAP", format!(".file = {}", idx(file))),
        Op::Flush { file, off, len }
        | Op::Msync { file, off, len }
        | Op::MsyncAsync { file, off, len }
        | Op::MsyncInvalidate { file, off, len }
        | Op::SyncFileRange { file, off, len } => (
            match op {
                Op::Flush { .. } => "K_FLUSH",
                Op::MsyncAsync { .. } => "K_MSYNC_ASYNC",
                Op::MsyncInvalidate { .. } => "K_MSYNC_INVALIDATE",
                Op::SyncFileRange { .. } => "K_SYNC_FILE_RANGE",
                _ => "K_MSYNC",
            },
            format!(".file = {}, .off = {off}ULL, .len = {len}ULL", idx(file)),
        ),
        Op::Pwritev2 {
            file,
            off,
            len,
            flags,
            ..
        } => (
            "K_PWRITEV2",
            format!(
                ".file = {}, .off = {off}ULL, .len = {len}ULL, .pattern = {}U, .sync = {}",
                idx(file),
                op.pattern_id(k).unwrap_or(0),
                match flags {
                    RwfFlag::Dsync => "RWF_DSYNC",
                    RwfFlag::Sync => "RWF_SYNC",
                }
            ),
        ),
        Op::Syncfs { file } => ("K_SYNCFS", format!(".file = {}", idx(file))),
        Op::Fsync { file } => ("K_FSYNC", format!(".file = {}", idx(file))),
        Op::Fdatasync { file } => ("K_FDATASYNC", format!(".file = {}", idx(file))),
        Op::Ftruncate { file, size } => (
            "K_FTRUNCATE",
            format!(".file = {}, .len = {size}ULL", idx(file)),
        ),
        Op::Fallocate {
            file,
            mode,
            off,
            len,
        } => {
            let m = match mode {
                FallocMode::Allocate => "FA_ALLOCATE",
                FallocMode::KeepSize => "FA_KEEP_SIZE",
                FallocMode::PunchHole => "FA_PUNCH_HOLE",
                FallocMode::ZeroRange => "FA_ZERO_RANGE",
                FallocMode::CollapseRange => "FA_COLLAPSE_RANGE",
                FallocMode::InsertRange => "FA_INSERT_RANGE",
            };
            (
                "K_FALLOCATE",
                format!(
                    ".file = {}, .mode = {m}, .off = {off}ULL, .len = {len}ULL",
                    idx(file)
                ),
            )
        }
        Op::Rename { from, to } => (
            "K_RENAME",
            format!(".file = {}, .to = {}", idx(from), idx(to)),
        ),
        Op::Unlink { file } => ("K_UNLINK", format!(".file = {}", idx(file))),
        Op::FsyncDir { dir } => (
            "K_FSYNC_DIR",
            format!(".file = {}", dir.as_deref().map_or(-1, idx)),
        ),
        Op::Mkdir { dir } => ("K_MKDIR", format!(".file = {}", idx(dir))),
        Op::Rmdir { dir } => ("K_RMDIR", format!(".file = {}", idx(dir))),
        Op::Link { from, to } => (
            "K_LINK",
            format!(".file = {}, .to = {}", idx(from), idx(to)),
        ),
        Op::Symlink { target, link } => (
            "K_SYMLINK",
            format!(".file = {}, .text = {}", idx(link), c_string(target)),
        ),
        Op::Renameat2 { from, to, flags } => (
            "K_RENAMEAT2",
            format!(
                ".file = {}, .to = {}, .mode = {}",
                idx(from),
                idx(to),
                match flags {
                    RenameFlag::Noreplace => 1,
                    RenameFlag::Exchange => 2,
                    RenameFlag::Whiteout => 4,
                }
            ),
        ),
        Op::Sync => ("K_SYNC", ".file = -1".to_owned()),
        Op::Chmod { file, mode } => (
            "K_CHMOD",
            format!(".file = {}, .mode = 0{mode:o}", idx(file)),
        ),
        Op::Setxattr {
            file, name, len, ..
        } => (
            "K_SETXATTR",
            format!(
                ".file = {}, .xname = {}, .len = {len}ULL, .pattern = {}U",
                idx(file),
                c_string(name),
                op.pattern_id(k).unwrap_or(0)
            ),
        ),
        Op::Removexattr { file, name } => (
            "K_REMOVEXATTR",
            format!(".file = {}, .xname = {}", idx(file), c_string(name)),
        ),
        Op::UringWrite {
            file,
            off,
            len,
            flags,
            ..
        } => (
            "K_URING_WRITE",
            format!(
                ".file = {}, .off = {off}ULL, .len = {len}ULL, .pattern = {}U, .sync = {}",
                idx(file),
                op.pattern_id(k).unwrap_or(0),
                match flags {
                    None => "0",
                    Some(RwfFlag::Dsync) => "RWF_DSYNC",
                    Some(RwfFlag::Sync) => "RWF_SYNC",
                }
            ),
        ),
        Op::UringFsync { file, datasync } => (
            "K_URING_FSYNC",
            format!(
                ".file = {}, .sync = {}",
                idx(file),
                if *datasync {
                    "IORING_FSYNC_DATASYNC"
                } else {
                    "0"
                }
            ),
        ),
        Op::Utimensat { file, sec, nsec } => (
            "K_UTIMENSAT",
            format!(".file = {}, .off = {sec}ULL, .len = {nsec}ULL", idx(file)),
        ),
    };
    let desc = comment_safe(&serde_json::to_string(op).unwrap_or_default());
    format!("\t{{ .kind = {kind}, {fields}, .expect = {expect} }}, /* op {k}: {desc} */\n")
}
