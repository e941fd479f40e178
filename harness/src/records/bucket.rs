//! Failure buckets: a key that names the bug, not the instance. Two failures fall into one
//! bucket when they have the same verdict kind, the same kind of op promised the lost thing
//! durable (`fsync`, `fdatasync`, `msync`, `fsync_dir`, `flush` — a MAP_SYNC user flush —
//! or `sync`), the same kind of thing was lost (data written by `pwrite`, data written by
//! mmap stores, zeros of a truncate or hole punch, a size, a name), the same kinds of
//! layout-changing ops (`ftruncate`, `fallocate`) ran on the file between the lost write and
//! its promise, how lost mmap data was stored when a known bug needs it (through a MAP_SYNC
//! mapping, whose write fault allocated the block: [`super::store_path`]), under the same
//! crash model, file system and mutant. Op indexes, byte ranges,
//! file names and seeds are left out: they tell instances apart. Computed once, in the trial pipeline
//! ([`super::finding::failures_of`]), and journaled with every failure.

use std::fmt;

use serde::{Deserialize, Serialize};
use workloads::oracle::{CrashPoint, Finding, Verdict};
use workloads::{Op, Workload};

use super::store_path::store_traits;

/// What a failure lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lost {
    /// Bytes written by `pwrite`.
    PwriteData,
    /// Bytes written by CPU stores through a shared mapping (`mmap_store`).
    MmapData,
    /// Zeros of a `ftruncate`, hole punch or zero-range (old bytes came back).
    Zeroing,
    /// The file size.
    Size,
    /// A name: a file missing, or one that should be gone.
    Name,
    /// The file system as a whole (`fs-corrupt`, `mount-failed`).
    FileSystem,
    /// Permission bits (`chmod`).
    Mode,
    /// Access or modification time.
    Times,
    /// A `user.` extended attribute.
    Xattr,
}

impl Lost {
    /// Mode, times or an xattr: what only fsync, sync and O_SYNC writes promise.
    pub fn is_metadata(self) -> bool {
        matches!(self, Lost::Mode | Lost::Times | Lost::Xattr)
    }

    /// Name as serialized.
    pub fn name(self) -> &'static str {
        match self {
            Lost::PwriteData => "pwrite_data",
            Lost::MmapData => "mmap_data",
            Lost::Zeroing => "zeroing",
            Lost::Size => "size",
            Lost::Name => "name",
            Lost::FileSystem => "file_system",
            Lost::Mode => "mode",
            Lost::Times => "times",
            Lost::Xattr => "xattr",
        }
    }
}

/// The bucket of a failure: what identifies the bug it shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bucket {
    /// Verdict kind.
    pub verdict: Verdict,
    /// Kind of the op whose promise was broken (`None`: no op promised it, e.g. a file
    /// system that does not mount).
    pub promise: Option<String>,
    /// What was lost.
    pub lost: Lost,
    /// Kinds of the ops that changed the lost file's layout (`ftruncate`, `fallocate`)
    /// between the write of the lost data and the op that promised it, sorted, each once
    /// (empty: none ran, or the finding is not about written data). A kernel that drops
    /// dirty data when the layout changes fails in its own bucket, so a suppression can name
    /// it without hiding every other loss of the same data. Journals written before this
    /// field read it as empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// How the lost mmap data was stored ([`super::store_path::store_traits`]): `map_sync`
    /// (through a MAP_SYNC mapping), then `fault_alloc` when such a store's write fault
    /// allocated the block. Empty for a plain mapping and for every other loss. A bug that
    /// needs a synchronous fault (xfs `sync()` skipping MAP_SYNC stores) fails in its own
    /// bucket, so a suppression can name it without hiding other losses of mmap data.
    /// Journals written before this field read it as empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// Crash model family (`snapshot`, `cache`), without the cache model's variant.
    pub crash_model: String,
    /// File system (oracle rules) name.
    pub filesystem: String,
    /// Mutant loaded in the workload VM (`None`: the stock kernel).
    pub mutant: Option<String>,
    /// The user's own modules (`--module`) loaded in the workload VM, `name@sha256-prefix`
    /// each, in load order: a failure under a module never reads as the stock kernel's.
    /// Journals written before this field read it as empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
}

/// How a loaded user module is named in buckets and titles: `name@` and the first 8 hex
/// digits of its sha256.
pub fn module_label(name: &str, sha256: &str) -> String {
    format!("{name}@{}", sha256.get(..8).unwrap_or(sha256))
}

/// What a bucket needs besides the finding: where it ran.
#[derive(Debug, Clone, Copy)]
pub struct BucketContext<'a> {
    /// The workload that ran.
    pub workload: &'a Workload,
    /// Crash model and variant of the image (`snapshot`, `cache:worst`, …).
    pub model: &'a str,
    /// File system (oracle rules) name.
    pub filesystem: &'a str,
    /// Mutant loaded (`None`: stock kernel).
    pub mutant: Option<&'a str>,
    /// User modules loaded ([`module_label`] each).
    pub modules: &'a [String],
}

impl Bucket {
    /// The bucket of one oracle finding at `crash` in `ctx`.
    pub fn of_finding(f: &Finding, crash: CrashPoint, ctx: &BucketContext<'_>) -> Bucket {
        let lost = match f.verdict {
            Verdict::SizeLoss => Lost::Size,
            Verdict::MissingFile | Verdict::UnexpectedFile => Lost::Name,
            Verdict::DataLoss => data_writer(f, ctx.workload),
            Verdict::MetadataLoss => match f.meta.as_ref().map(|m| m.field.as_str()) {
                Some("mode") => Lost::Mode,
                Some("atime" | "mtime") => Lost::Times,
                _ => Lost::Xattr,
            },
            _ => Lost::FileSystem,
        };
        let points = ctx.workload.durability_points();
        let promise = f
            .promised_by
            .filter(|&k| points.get(k).copied().unwrap_or(false))
            .or_else(|| last_promise(ctx.workload, crash, &f.file, lost));
        let after = match (f.verdict, promise) {
            (Verdict::DataLoss, Some(p)) => f
                .expected
                .first()
                .and_then(|v| v.op)
                .map(|writer| layout_changes(ctx.workload, writer, p))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let via = match (f.verdict, lost) {
            (Verdict::DataLoss, Lost::MmapData) => f
                .expected
                .first()
                .and_then(|v| v.op)
                .map(|writer| store_traits(ctx.workload, writer, f.start, f.end))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        // A write that is its own promise is named with its flag (`pwrite o_dsync`,
        // `pwritev2 sync`, `uring_write dsync`): each is a different path in the kernel.
        let promise = promise.map(|k| match ctx.workload.ops[k] {
            Op::Pwrite { .. } | Op::Pwritev2 { .. } | Op::UringWrite { .. } => {
                ctx.workload.label(k)
            }
            ref op => op.kind().to_owned(),
        });
        let mut b = Bucket::new(f.verdict, promise, lost, ctx);
        b.after = after;
        b.via = via.into_iter().map(str::to_owned).collect();
        b
    }

    /// The bucket of a verdict without findings (`fs-corrupt`, `mount-failed`).
    pub fn of_image(verdict: Verdict, ctx: &BucketContext<'_>) -> Bucket {
        Bucket::new(verdict, None, Lost::FileSystem, ctx)
    }

    fn new(
        verdict: Verdict,
        promise: Option<String>,
        lost: Lost,
        ctx: &BucketContext<'_>,
    ) -> Bucket {
        Bucket {
            verdict,
            promise,
            lost,
            after: Vec::new(),
            via: Vec::new(),
            crash_model: ctx.model.split(':').next().unwrap_or(ctx.model).to_owned(),
            filesystem: ctx.filesystem.to_owned(),
            mutant: ctx.mutant.map(str::to_owned),
            modules: ctx.modules.to_vec(),
        }
    }

    /// The bucket's id: one line, stable, used as its key in the journal's fold, in
    /// suppressions and as its failure directory's name (slugged), e.g.
    /// `data-loss of mmap_data promised by fsync (snapshot, ext4, m5)`, or
    /// `data-loss of mmap_data via map_sync+fault_alloc promised by sync (cache, xfs, stock)`.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// `module a@12345678 b@9abcdef0`: the user modules that were loaded.
    pub fn modules_text(&self) -> String {
        format!("module {}", self.modules.join(" "))
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.verdict, self.lost.name())?;
        if !self.via.is_empty() {
            write!(f, " via {}", self.via.join("+"))?;
        }
        if let Some(p) = &self.promise {
            write!(f, " promised by {p}")?;
        }
        if !self.after.is_empty() {
            write!(f, " after {}", self.after.join("+"))?;
        }
        write!(f, " ({}, {}, ", self.crash_model, self.filesystem)?;
        match (&self.mutant, self.modules.is_empty()) {
            (Some(m), true) => write!(f, "{m})"),
            (None, true) => write!(f, "stock)"),
            (Some(m), false) => write!(f, "{m}, {})", self.modules_text()),
            (None, false) => write!(f, "{})", self.modules_text()),
        }
    }
}

/// The kind of data a data-loss range lost: the writer of the version that had to be there
/// (the oldest allowed one: the durable version).
fn data_writer(f: &Finding, workload: &Workload) -> Lost {
    let writer = f
        .expected
        .first()
        .and_then(|v| v.op)
        .and_then(|k| workload.ops.get(k));
    match writer {
        // Bytes of a write(2)-family call (`pwrite_data` names them all).
        Some(Op::Pwrite { .. } | Op::Pwritev2 { .. } | Op::UringWrite { .. }) => Lost::PwriteData,
        Some(Op::MmapStore { .. }) => Lost::MmapData,
        _ => Lost::Zeroing,
    }
}

/// Kinds of the ops strictly between `writer` and `promise` that changed the layout of the
/// file `writer` wrote (`ftruncate`, `fallocate`), following the file through renames;
/// sorted, each once.
fn layout_changes(workload: &Workload, writer: usize, promise: usize) -> Vec<String> {
    let Some(mut name) = workload
        .ops
        .get(writer)
        .and_then(|op| op.files().first().copied())
    else {
        return Vec::new();
    };
    let mut kinds = std::collections::BTreeSet::new();
    for op in workload.ops.iter().take(promise).skip(writer + 1) {
        match op {
            Op::Ftruncate { file, .. } | Op::Fallocate { file, .. } if file == name => {
                kinds.insert(op.kind());
            }
            Op::Rename { from, to } if from == name => name = to.as_str(),
            _ => {}
        }
    }
    kinds.into_iter().map(str::to_owned).collect()
}

/// Index of the last op that had returned at `crash` and promises `lost` of `file` durable:
/// for a name, an fsync or fdatasync of the file, a directory fsync or a sync; for a size,
/// those of the file or an msync of it, or a sync; for data, any durability op of the file,
/// or a sync. (A data finding usually names its promise itself: `promised_by`.)
fn last_promise(workload: &Workload, crash: CrashPoint, file: &str, lost: Lost) -> Option<usize> {
    let returned = match crash {
        CrashPoint::AfterOp(k) => k.saturating_add(1),
        CrashPoint::InsideOp(k) => k,
    };
    let points = workload.durability_points();
    let promises = |(k, op): (usize, &Op)| match op {
        // A write that is its own promise (RWF_DSYNC/RWF_SYNC, or through an
        // O_DSYNC/O_SYNC descriptor) promises its bytes and the size.
        Op::Pwrite { file: f, .. }
        | Op::Pwritev2 { file: f, .. }
        | Op::UringWrite { file: f, .. } => {
            points.get(k).copied().unwrap_or(false)
                && f == file
                && matches!(lost, Lost::PwriteData | Lost::Size)
        }
        Op::Sync | Op::Syncfs { .. } => true,
        Op::FsyncDir { .. } => lost == Lost::Name,
        Op::Fsync { file: f }
        | Op::UringFsync {
            file: f,
            datasync: false,
        } => f == file,
        Op::Fdatasync { file: f }
        | Op::UringFsync {
            file: f,
            datasync: true,
        } => f == file && !lost.is_metadata(),
        Op::Msync { file: f, .. } => f == file && lost != Lost::Name && !lost.is_metadata(),
        Op::Flush { file: f, .. } => {
            f == file && !matches!(lost, Lost::Name | Lost::Size) && !lost.is_metadata()
        }
        _ => false,
    };
    (workload.ops.iter().enumerate().take(returned))
        .filter(|&(k, op)| promises((k, op)))
        .map(|(k, _)| k)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::AllowedVersion;

    fn workload() -> Workload {
        Workload {
            name: "t".into(),
            seed: 1,
            profile: None,
            ops: vec![
                Op::create("f0"),
                Op::Pwrite {
                    file: "f0".into(),
                    off: 0,
                    len: 4096,
                    pattern: None,
                },
                Op::Mmap {
                    file: "f0".into(),
                    len: 8192,
                    sync: false,
                },
                Op::MmapStore {
                    file: "f0".into(),
                    off: 4096,
                    len: 64,
                    pattern: None,
                },
                Op::Fsync { file: "f0".into() },
                Op::fsync_root(),
            ],
        }
    }

    fn data_loss(writer: usize, start: u64, promised_by: Option<usize>) -> Finding {
        Finding {
            verdict: Verdict::DataLoss,
            file: "f0".into(),
            start,
            end: start + 64,
            expected: vec![AllowedVersion {
                op: Some(writer),
                bytes: Vec::new(),
            }],
            found: Vec::new(),
            allowed_sizes: None,
            found_size: None,
            promised_by,
            at: String::new(),
            meta: None,
        }
    }

    fn ctx<'a>(w: &'a Workload, model: &'a str, mutant: Option<&'a str>) -> BucketContext<'a> {
        BucketContext {
            workload: w,
            model,
            filesystem: "ext4",
            mutant,
            modules: &[],
        }
    }

    #[test]
    fn a_failure_under_a_user_module_names_the_module_not_stock() {
        let w = workload();
        let modules = vec![module_label("pc_fi", "1a2b3c4d5e6f")];
        let stock = ctx(&w, "snapshot", None);
        let under = BucketContext {
            modules: &modules,
            ..stock
        };
        let both = BucketContext {
            mutant: Some("m5"),
            ..under
        };
        let f = data_loss(3, 4096, Some(4));

        let a = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &stock).id();
        let b = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &under).id();
        let c = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &both).id();

        assert!(a.ends_with("(snapshot, ext4, stock)"), "{a}");
        assert!(
            b.ends_with("(snapshot, ext4, module pc_fi@1a2b3c4d)"),
            "{b}"
        );
        assert!(
            c.ends_with("(snapshot, ext4, m5, module pc_fi@1a2b3c4d)"),
            "{c}"
        );
    }

    #[test]
    fn a_bucket_journaled_before_modules_reads_as_none() {
        let w = workload();
        let b = Bucket::of_finding(
            &data_loss(3, 4096, Some(4)),
            CrashPoint::AfterOp(4),
            &ctx(&w, "snapshot", None),
        );
        let mut json = serde_json::to_value(&b).expect("json");
        assert!(json.get("modules").is_none(), "{json}");
        json.as_object_mut().expect("object").remove("modules");

        let back: Bucket = serde_json::from_value(json).expect("old bucket reads");

        assert_eq!(back, b);
    }

    #[test]
    fn instances_of_one_bug_share_a_bucket() {
        let w = workload();
        let c = ctx(&w, "cache:worst", Some("m1"));

        let a = Bucket::of_finding(&data_loss(3, 4096, Some(4)), CrashPoint::AfterOp(4), &c);
        let b = Bucket::of_finding(&data_loss(3, 4160, Some(4)), CrashPoint::AfterOp(5), &c);

        assert_eq!(a, b);
        assert_eq!(
            a.id(),
            "data-loss of mmap_data promised by fsync (cache, ext4, m1)"
        );
    }

    #[test]
    fn what_was_lost_and_who_promised_it_split_buckets() {
        let w = workload();
        let c = ctx(&w, "snapshot", Some("m5"));

        let pwrite = Bucket::of_finding(&data_loss(1, 0, Some(4)), CrashPoint::AfterOp(4), &c);
        let mmap = Bucket::of_finding(&data_loss(3, 4096, Some(4)), CrashPoint::AfterOp(4), &c);
        let mut missing = data_loss(0, 0, None);
        missing.verdict = Verdict::MissingFile;
        let name = Bucket::of_finding(&missing, CrashPoint::AfterOp(5), &c);

        assert_eq!(pwrite.lost, Lost::PwriteData);
        assert_eq!(mmap.lost, Lost::MmapData);
        assert_ne!(pwrite, mmap);
        // A size lost after a per-write promise is blamed on that write, not on an older fsync.
        let mut w3 = w.clone();
        w3.ops.push(Op::Pwritev2 {
            file: "f0".into(),
            off: 8192,
            len: 64,
            pattern: None,
            flags: workloads::RwfFlag::Dsync,
        });
        let c3 = ctx(&w3, "snapshot", None);
        let mut size = data_loss(1, 0, None);
        size.verdict = Verdict::SizeLoss;
        let b = Bucket::of_finding(&size, CrashPoint::AfterOp(6), &c3);
        assert_eq!(
            (b.lost, b.promise.as_deref()),
            (Lost::Size, Some("pwritev2 dsync"))
        );
        // Bytes of a pwritev2 or an io_uring write are write(2) data too, not zeroing.
        for writer in [
            Op::Pwritev2 {
                file: "f0".into(),
                off: 0,
                len: 64,
                pattern: None,
                flags: workloads::RwfFlag::Dsync,
            },
            Op::UringWrite {
                file: "f0".into(),
                off: 0,
                len: 64,
                pattern: None,
                flags: None,
            },
        ] {
            let mut w2 = w.clone();
            w2.ops[1] = writer;
            let c2 = ctx(&w2, "snapshot", None);
            let b = Bucket::of_finding(&data_loss(1, 0, Some(4)), CrashPoint::AfterOp(4), &c2);
            assert_eq!(b.lost, Lost::PwriteData, "{:?}", w2.ops[1]);
        }
        assert_eq!(
            (name.lost, name.promise.as_deref()),
            (Lost::Name, Some("fsync_dir"))
        );
    }

    #[test]
    fn buckets_of_two_mutants_never_merge() {
        let w = workload();
        let f = data_loss(3, 4096, Some(4));

        let m3 = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &ctx(&w, "snapshot", Some("m3")));
        let m5 = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &ctx(&w, "snapshot", Some("m5")));
        let stock = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &ctx(&w, "snapshot", None));

        assert_ne!(m3, m5);
        assert_ne!(m3.id(), m5.id());
        assert_ne!(m5.id(), stock.id());
    }

    #[test]
    fn an_msync_never_promises_a_name() {
        let mut w = workload();
        w.ops.push(Op::Msync {
            file: "f0".into(),
            off: 0,
            len: 4096,
        });
        let mut f = data_loss(0, 0, None);
        f.verdict = Verdict::MissingFile;

        let b = Bucket::of_finding(&f, CrashPoint::AfterOp(6), &ctx(&w, "snapshot", None));

        assert_eq!(b.promise.as_deref(), Some("fsync_dir"));
    }

    #[test]
    fn an_inside_crash_does_not_count_its_own_op_as_a_promise() {
        let w = workload();
        let mut f = data_loss(1, 0, None);
        f.verdict = Verdict::SizeLoss;

        let inside = Bucket::of_finding(&f, CrashPoint::InsideOp(4), &ctx(&w, "snapshot", None));
        let after = Bucket::of_finding(&f, CrashPoint::AfterOp(4), &ctx(&w, "snapshot", None));

        assert_eq!(inside.promise, None);
        assert_eq!(after.promise.as_deref(), Some("fsync"));
    }

    #[test]
    fn a_layout_change_between_the_write_and_its_promise_splits_the_bucket() {
        let mut w = workload();
        // 0 create, 1 pwrite, 2 mmap, 3 mmap_store, 4 fsync, 5 fsync_dir; then a store, a
        // punch hole, a rename, a truncate of the renamed file, an fsync of it.
        w.ops.extend([
            Op::MmapStore {
                file: "f0".into(),
                off: 0,
                len: 64,
                pattern: None,
            },
            Op::Fallocate {
                file: "f0".into(),
                mode: workloads::FallocMode::PunchHole,
                off: 8192,
                len: 4096,
            },
            Op::Rename {
                from: "f0".into(),
                to: "g".into(),
            },
            Op::Ftruncate {
                file: "g".into(),
                size: 100_000,
            },
            Op::Ftruncate {
                file: "other".into(),
                size: 0,
            },
            Op::Fsync { file: "g".into() },
        ]);
        let c = ctx(&w, "cache:worst", None);
        let mut lost = data_loss(6, 0, Some(11));
        lost.file = "g".into();

        let after_both = Bucket::of_finding(&lost, CrashPoint::AfterOp(11), &c);
        let plain = Bucket::of_finding(&data_loss(3, 4096, Some(4)), CrashPoint::AfterOp(4), &c);
        // The same store promised by op 4's fsync: nothing ran in between.
        let mut early = data_loss(6, 0, None);
        early.file = "g".into();
        let before_rename = Bucket::of_finding(&early, CrashPoint::AfterOp(7), &c);

        assert_eq!(after_both.after, ["fallocate", "ftruncate"]);
        assert_eq!(
            after_both.id(),
            "data-loss of mmap_data promised by fsync after fallocate+ftruncate (cache, ext4, stock)"
        );
        assert!(plain.after.is_empty());
        assert_eq!(
            plain.id(),
            "data-loss of mmap_data promised by fsync (cache, ext4, stock)"
        );
        assert_ne!(after_both, plain);
        // No promise of "g" had returned by op 7: no bucket refinement either.
        assert_eq!(before_rename.promise, None);
        assert!(before_rename.after.is_empty());
    }

    #[test]
    fn map_sync_stores_get_their_own_bucket_and_plain_ones_keep_theirs() {
        let mut w = workload();
        // 0 create, 1 pwrite [0,4096), 2 mmap (plain), 3 mmap_store 4096.., 4 fsync,
        // 5 fsync_dir; then a MAP_SYNC mapping, a store to a page written by pwrite, one
        // to a page only stored to, and sync.
        w.ops.extend([
            Op::Munmap { file: "f0".into() },
            Op::Ftruncate {
                file: "f0".into(),
                size: 16384,
            },
            Op::Mmap {
                file: "f0".into(),
                len: 16384,
                sync: true,
            },
            Op::MmapStore {
                file: "f0".into(),
                off: 0,
                len: 64,
                pattern: None,
            },
            Op::MmapStore {
                file: "f0".into(),
                off: 8192,
                len: 64,
                pattern: None,
            },
            Op::Sync,
        ]);
        let c = BucketContext {
            filesystem: "xfs",
            ..ctx(&w, "cache:worst", None)
        };
        let plain = Bucket::of_finding(&data_loss(3, 4096, Some(4)), CrashPoint::AfterOp(4), &c);
        let written = Bucket::of_finding(&data_loss(9, 0, Some(11)), CrashPoint::AfterOp(11), &c);
        let sparse =
            Bucket::of_finding(&data_loss(10, 8192, Some(11)), CrashPoint::AfterOp(11), &c);

        assert_eq!(
            plain.id(),
            "data-loss of mmap_data promised by fsync (cache, xfs, stock)"
        );
        assert_eq!(
            written.id(),
            "data-loss of mmap_data via map_sync promised by sync (cache, xfs, stock)"
        );
        assert_eq!(
            sparse.id(),
            "data-loss of mmap_data via map_sync+fault_alloc promised by sync (cache, xfs, stock)"
        );
        // A pwrite's loss never carries store traits.
        let mut pw = data_loss(1, 0, Some(4));
        pw.end = 4096;
        assert!(Bucket::of_finding(&pw, CrashPoint::AfterOp(4), &c)
            .via
            .is_empty());
    }

    #[test]
    fn a_bucket_journaled_before_the_layout_field_reads_back_without_it() {
        let old = r#"{"verdict":"data-loss","promise":"fsync","lost":"mmap_data","crash_model":"cache","filesystem":"ext4","mutant":null}"#;

        let b: Bucket = serde_json::from_str(old).unwrap();

        assert!(b.after.is_empty());
        assert_eq!(
            b.id(),
            "data-loss of mmap_data promised by fsync (cache, ext4, stock)"
        );
        assert!(!serde_json::to_string(&b).unwrap().contains("after"));
    }
}
