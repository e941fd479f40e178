//! The generator's side streams: ops drawn from their own ChaCha8 streams of the seed
//! (io_uring and `O_DIRECT`: stream 3; metadata: stream 4; namespace episodes, in
//! `generator::namespace`, use stream 2), inserted after the main
//! stream's steps without drawing from it, so that every choice of the main stream, and
//! with it each pinned seed's structure, stays what it was before these ops existed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{stream_rng, Gen, Profile};
use crate::meta::{MAX_TIME_SEC, MAX_XATTR_VALUE};
use crate::op::{Op, RwfFlag};

impl Profile {
    /// Percent of generator steps followed by a metadata op (`chmod`, `setxattr`,
    /// `removexattr`, `utimensat`), and that by an `fsync` of its file 40 % of the time. 0 in
    /// `smoke`, whose seeds stay as they were.
    pub fn metadata_percent(&self) -> u32 {
        match self {
            Profile::Smoke => 0,
            Profile::Default => 10,
            Profile::Deep => 8,
        }
    }

    /// Percent of generator steps followed by an io_uring op (`uring_write` with no flag,
    /// `RWF_DSYNC` or `RWF_SYNC`; `uring_fsync` with and without `IORING_FSYNC_DATASYNC`).
    /// High in `smoke`, so that its few seeds reach each kind.
    pub fn uring_percent(&self) -> u32 {
        match self {
            Profile::Smoke => 40,
            Profile::Default => 8,
            Profile::Deep => 6,
        }
    }

    /// Percent of `create`/`open` ops with `O_DIRECT`.
    pub fn direct_percent(&self) -> u32 {
        match self {
            Profile::Smoke => 0,
            Profile::Default | Profile::Deep => 10,
        }
    }
}

/// The side streams of one workload and how often each inserts.
pub(super) struct SideStreams {
    meta: ChaCha8Rng,
    uring: ChaCha8Rng,
    metadata_percent: u32,
    uring_percent: u32,
    direct_percent: u32,
}

impl SideStreams {
    pub(super) fn new(seed: u64, profile: Profile) -> SideStreams {
        SideStreams {
            meta: stream_rng(seed, 4),
            uring: stream_rng(seed, 3),
            metadata_percent: profile.metadata_percent(),
            uring_percent: profile.uring_percent(),
            direct_percent: profile.direct_percent(),
        }
    }

    /// No side ops at all (what the generator made before they existed).
    #[cfg(test)]
    pub(super) fn off(seed: u64) -> SideStreams {
        SideStreams {
            metadata_percent: 0,
            uring_percent: 0,
            direct_percent: 0,
            ..SideStreams::new(seed, Profile::Smoke)
        }
    }

    /// `O_DIRECT` for a generated `create`/`open`? (Draws nothing when the profile has none.)
    pub(super) fn direct(&mut self) -> bool {
        self.direct_percent > 0 && self.uring.gen_range(0..100) < self.direct_percent
    }
}

impl Gen {
    /// Maybe a metadata op on an open file (from the metadata stream only), and maybe an
    /// `fsync` that promises it.
    pub(super) fn metadata(&mut self) {
        const NAMES: [&str; 3] = ["a", "b", "big"];
        const MODES: [u32; 6] = [0o600, 0o640, 0o644, 0o755, 0o400, 0o000];
        let open = self.open_files();
        let side = &mut self.side;
        if open.is_empty()
            || side.metadata_percent == 0
            || side.meta.gen_range(0..100) >= side.metadata_percent
        {
            return;
        }
        let r = &mut side.meta;
        let file = open[r.gen_range(0..open.len())].clone();
        let name = NAMES[r.gen_range(0..NAMES.len())].to_string();
        let op = match r.gen_range(0..4) {
            0 => Op::Chmod {
                file: file.clone(),
                mode: MODES[r.gen_range(0..MODES.len())],
            },
            1 => Op::Setxattr {
                file: file.clone(),
                // "big" goes past ext4's in-inode space into an xattr block.
                len: if name == "big" {
                    r.gen_range(1024..=MAX_XATTR_VALUE)
                } else {
                    r.gen_range(0..=100)
                },
                name,
                pattern: None,
            },
            // Remove only what a setxattr of this name set on this file (so the op tests
            // a removal, not an ENODATA); otherwise set it.
            2 if xattr_is_set(&self.ops, &file, &name) => Op::Removexattr {
                file: file.clone(),
                name,
            },
            2 => Op::Setxattr {
                file: file.clone(),
                len: r.gen_range(0..=100),
                name,
                pattern: None,
            },
            _ => Op::Utimensat {
                file: file.clone(),
                sec: r.gen_range(0..=MAX_TIME_SEC),
                nsec: r.gen_range(0..1_000_000_000),
            },
        };
        let then_fsync = r.gen_bool(0.4);
        if self.side_emit(op) && then_fsync {
            self.side_emit(Op::Fsync { file });
        }
    }

    /// Maybe an io_uring write or fsync on an open file (from the io_uring stream only).
    pub(super) fn uring(&mut self) {
        let open = self.open_files();
        let side = &mut self.side;
        if open.is_empty()
            || side.uring_percent == 0
            || side.uring.gen_range(0..100) >= side.uring_percent
        {
            return;
        }
        let r = &mut side.uring;
        let file = open[r.gen_range(0..open.len())].clone();
        let kind = r.gen_range(0..5);
        // Writes stay inside the file's size, so that the simulated sizes, on which the
        // main stream's choices depend, stay what they would be without them. Files grown
        // by ftruncate have holes there: such a write allocates, which is what its per-write
        // sync must commit.
        let size = self.sim.size(&file).unwrap_or(0);
        let op = if kind < 3 && size > 0 {
            let flags = [None, Some(RwfFlag::Dsync), Some(RwfFlag::Sync)][kind];
            let off = r.gen_range(0..size);
            let len = r.gen_range(1..=(size - off).min(16 << 10));
            Op::UringWrite {
                file,
                off,
                len,
                pattern: None,
                flags,
            }
        } else {
            Op::UringFsync {
                file,
                datasync: kind % 2 == 0,
            }
        };
        self.side_emit(op);
    }

    /// Emit a side-stream op, remembering its index.
    fn side_emit(&mut self, op: Op) -> bool {
        let emitted = self.emit(op);
        if emitted {
            self.side_ops.push(self.ops.len() - 1);
        }
        emitted
    }
}

/// Was `user.<name>` set on the file named `file` by the last op that decided it: a
/// `setxattr` of it after any op that changed which inode the name refers to? (Those are
/// taken as unknown: a `create`, `unlink`, rename or link of the name.)
fn xattr_is_set(ops: &[Op], file: &str, name: &str) -> bool {
    for op in ops.iter().rev() {
        match op {
            Op::Setxattr {
                file: f, name: n, ..
            } if f == file && n == name => return true,
            Op::Removexattr { file: f, name: n } if f == file && n == name => return false,
            _ if op.files().contains(&file) && !op.keeps_inode_of_its_file() => return false,
            _ => {}
        }
    }
    false
}
