//! The YAML shape of a workload file and a hand-written op deserializer whose errors name
//! the op's line and the offending field (serde's internally tagged enums lose both).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

mod fields;

use fields::{AnyFlag, ModeField, SyncField};

use crate::op::{Op, Workload};

/// A workload as written in YAML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpecWorkload {
    name: String,
    seed: u64,
    #[serde(default)]
    profile: Option<String>,
    #[serde(deserialize_with = "bounded_ops")]
    ops: Vec<SpecOp>,
}

/// The `ops` list, refused as soon as it passes [`super::MAX_OPS`] entries.
fn bounded_ops<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SpecOp>, D::Error> {
    struct Ops;
    impl<'de> Visitor<'de> for Ops {
        type Value = Vec<SpecOp>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of ops")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<SpecOp>, A::Error> {
            let mut ops = Vec::new();
            while let Some(op) = seq.next_element::<SpecOp>()? {
                if ops.len() == super::MAX_OPS {
                    return Err(de::Error::custom(format_args!(
                        "more than {} ops (split the workload)",
                        super::MAX_OPS
                    )));
                }
                ops.push(op);
            }
            Ok(ops)
        }
    }
    d.deserialize_seq(Ops)
}

impl From<SpecWorkload> for Workload {
    fn from(w: SpecWorkload) -> Workload {
        Workload {
            name: w.name,
            seed: w.seed,
            profile: w.profile,
            ops: w.ops.into_iter().map(|o| o.0).collect(),
        }
    }
}

/// One op as written in YAML.
#[derive(Debug)]
struct SpecOp(Op);

/// Every op kind, as spelled in YAML.
pub const OP_KINDS: &[&str] = &[
    "create",
    "open",
    "close",
    "pwrite",
    "mmap",
    "munmap",
    "mmap_store",
    "flush",
    "msync",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "rename",
    "unlink",
    "fsync_dir",
    "sync",
    "syncfs",
    "sync_file_range",
    "msync_async",
    "msync_invalidate",
    "pwritev2",
    "chmod",
    "setxattr",
    "removexattr",
    "utimensat",
    "uring_write",
    "uring_fsync",
    "mkdir",
    "rmdir",
    "link",
    "symlink",
    "renameat2",
];

const ALL_FIELDS: &[&str] = &[
    "op", "file", "from", "to", "off", "len", "size", "pattern", "sync", "mode", "flags", "name",
    "sec", "nsec", "direct", "datasync", "dir", "target", "link",
];

/// The fields of one op mapping, each seen at most once.
#[derive(Default)]
struct Fields {
    op: Option<String>,
    file: Option<String>,
    from: Option<String>,
    to: Option<String>,
    off: Option<u64>,
    len: Option<u64>,
    size: Option<u64>,
    pattern: Option<u32>,
    sync: Option<SyncField>,
    mode: Option<ModeField>,
    flags: Option<AnyFlag>,
    name: Option<String>,
    sec: Option<u64>,
    nsec: Option<u32>,
    direct: Option<bool>,
    datasync: Option<bool>,
    dir: Option<String>,
    target: Option<String>,
    link: Option<String>,
}

impl Fields {
    /// Names of the fields present.
    fn present(&self) -> Vec<&'static str> {
        let flags = [
            ("file", self.file.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("off", self.off.is_some()),
            ("len", self.len.is_some()),
            ("size", self.size.is_some()),
            ("pattern", self.pattern.is_some()),
            ("sync", self.sync.is_some()),
            ("mode", self.mode.is_some()),
            ("flags", self.flags.is_some()),
            ("name", self.name.is_some()),
            ("sec", self.sec.is_some()),
            ("nsec", self.nsec.is_some()),
            ("direct", self.direct.is_some()),
            ("datasync", self.datasync.is_some()),
            ("dir", self.dir.is_some()),
            ("target", self.target.is_some()),
            ("link", self.link.is_some()),
        ];
        flags.iter().filter(|(_, p)| *p).map(|(n, _)| *n).collect()
    }
}

fn put<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

fn need<T, E: de::Error>(v: Option<T>, field: &'static str, kind: &str) -> Result<T, E> {
    v.ok_or_else(|| E::custom(format_args!("missing field `{field}` for op `{kind}`")))
}

/// Fields each op kind takes (besides `op`).
fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "pwrite" | "mmap_store" => &["file", "off", "len", "pattern"],
        "pwritev2" => &["file", "off", "len", "pattern", "flags"],
        "flush" | "msync" | "msync_async" | "msync_invalidate" | "sync_file_range" => {
            &["file", "off", "len"]
        }
        "mmap" => &["file", "len", "sync"],
        "create" | "open" => &["file", "sync", "direct"],
        "uring_write" => &["file", "off", "len", "pattern", "flags"],
        "uring_fsync" => &["file", "datasync"],
        "ftruncate" => &["file", "size"],
        "fallocate" => &["file", "mode", "off", "len"],
        "rename" | "link" => &["from", "to"],
        "renameat2" => &["from", "to", "flags"],
        "fsync_dir" | "mkdir" | "rmdir" => &["dir"],
        "symlink" => &["target", "link"],
        "chmod" => &["file", "mode"],
        "setxattr" => &["file", "name", "len", "pattern"],
        "removexattr" => &["file", "name"],
        "utimensat" => &["file", "sec", "nsec"],
        "sync" => &[],
        _ => &["file"],
    }
}

fn build<E: de::Error>(f: Fields) -> Result<Op, E> {
    let kind = f.op.clone().ok_or_else(|| E::missing_field("op"))?;
    let Some(kind) = OP_KINDS.iter().copied().find(|k| *k == kind) else {
        let kinds = OP_KINDS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(E::custom(format_args!(
            "unknown op `{kind}`, expected one of {kinds}"
        )));
    };
    let allowed = fields_of(kind);
    if let Some(extra) = f.present().into_iter().find(|p| !allowed.contains(p)) {
        let expected = if allowed.is_empty() {
            "no other fields".to_string()
        } else {
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(E::custom(format_args!(
            "unknown field `{extra}` for op `{kind}`, expected {expected}"
        )));
    }
    let file = || need(f.file.clone(), "file", kind);
    let off = || need(f.off, "off", kind);
    let len = || need(f.len, "len", kind);
    Ok(match kind {
        "create" => Op::Create {
            file: file()?,
            sync: SyncField::open_sync(f.sync.clone(), kind)?,
            direct: f.direct.unwrap_or(false),
        },
        "open" => Op::Open {
            file: file()?,
            sync: SyncField::open_sync(f.sync.clone(), kind)?,
            direct: f.direct.unwrap_or(false),
        },
        "uring_write" => Op::UringWrite {
            file: file()?,
            off: off()?,
            len: len()?,
            pattern: f.pattern,
            flags: f.flags.map(|fl| fl.rwf(kind)).transpose()?,
        },
        "uring_fsync" => Op::UringFsync {
            file: file()?,
            datasync: f.datasync.unwrap_or(false),
        },
        "close" => Op::Close { file: file()? },
        "pwrite" => Op::Pwrite {
            file: file()?,
            off: off()?,
            len: len()?,
            pattern: f.pattern,
        },
        "mmap" => Op::Mmap {
            file: file()?,
            len: len()?,
            sync: SyncField::map_sync(f.sync.clone())?,
        },
        "munmap" => Op::Munmap { file: file()? },
        "mmap_store" => Op::MmapStore {
            file: file()?,
            off: off()?,
            len: len()?,
            pattern: f.pattern,
        },
        "flush" => Op::Flush {
            file: file()?,
            off: off()?,
            len: len()?,
        },
        "msync" => Op::Msync {
            file: file()?,
            off: off()?,
            len: len()?,
        },
        "fsync" => Op::Fsync { file: file()? },
        "fdatasync" => Op::Fdatasync { file: file()? },
        "ftruncate" => Op::Ftruncate {
            file: file()?,
            size: need(f.size, "size", kind)?,
        },
        "fallocate" => Op::Fallocate {
            file: file()?,
            mode: ModeField::falloc(need(f.mode.clone(), "mode", kind)?)?,
            off: off()?,
            len: len()?,
        },
        "rename" => Op::Rename {
            from: need(f.from.clone(), "from", kind)?,
            to: need(f.to.clone(), "to", kind)?,
        },
        "unlink" => Op::Unlink { file: file()? },
        "fsync_dir" => Op::FsyncDir { dir: f.dir.clone() },
        "mkdir" => Op::Mkdir {
            dir: need(f.dir.clone(), "dir", kind)?,
        },
        "rmdir" => Op::Rmdir {
            dir: need(f.dir.clone(), "dir", kind)?,
        },
        "link" => Op::Link {
            from: need(f.from.clone(), "from", kind)?,
            to: need(f.to.clone(), "to", kind)?,
        },
        "symlink" => Op::Symlink {
            target: need(f.target.clone(), "target", kind)?,
            link: need(f.link.clone(), "link", kind)?,
        },
        "renameat2" => Op::Renameat2 {
            from: need(f.from.clone(), "from", kind)?,
            to: need(f.to.clone(), "to", kind)?,
            flags: need(f.flags, "flags", kind)?.rename()?,
        },
        "syncfs" => Op::Syncfs { file: file()? },
        "sync_file_range" => Op::SyncFileRange {
            file: file()?,
            off: off()?,
            len: len()?,
        },
        "msync_async" => Op::MsyncAsync {
            file: file()?,
            off: off()?,
            len: len()?,
        },
        "msync_invalidate" => Op::MsyncInvalidate {
            file: file()?,
            off: off()?,
            len: len()?,
        },
        "pwritev2" => Op::Pwritev2 {
            file: file()?,
            off: off()?,
            len: len()?,
            pattern: f.pattern,
            flags: need(f.flags, "flags", kind)?.rwf(kind)?,
        },
        "chmod" => Op::Chmod {
            file: file()?,
            mode: ModeField::perm(need(f.mode.clone(), "mode", kind)?)?,
        },
        "setxattr" => Op::Setxattr {
            file: file()?,
            name: need(f.name.clone(), "name", kind)?,
            len: len()?,
            pattern: f.pattern,
        },
        "removexattr" => Op::Removexattr {
            file: file()?,
            name: need(f.name.clone(), "name", kind)?,
        },
        "utimensat" => Op::Utimensat {
            file: file()?,
            sec: need(f.sec, "sec", kind)?,
            nsec: f.nsec.unwrap_or(0),
        },
        _ => Op::Sync,
    })
}

struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = SpecOp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an op mapping such as {op: pwrite, file: f0, off: 0, len: 4096}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpecOp, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "op" => put(&mut f.op, "op", &mut map)?,
                "file" => put(&mut f.file, "file", &mut map)?,
                "from" => put(&mut f.from, "from", &mut map)?,
                "to" => put(&mut f.to, "to", &mut map)?,
                "off" => put(&mut f.off, "off", &mut map)?,
                "len" => put(&mut f.len, "len", &mut map)?,
                "size" => put(&mut f.size, "size", &mut map)?,
                "pattern" => put(&mut f.pattern, "pattern", &mut map)?,
                "sync" => put(&mut f.sync, "sync", &mut map)?,
                "mode" => put(&mut f.mode, "mode", &mut map)?,
                "flags" => put(&mut f.flags, "flags", &mut map)?,
                "name" => put(&mut f.name, "name", &mut map)?,
                "sec" => put(&mut f.sec, "sec", &mut map)?,
                "nsec" => put(&mut f.nsec, "nsec", &mut map)?,
                "direct" => put(&mut f.direct, "direct", &mut map)?,
                "datasync" => put(&mut f.datasync, "datasync", &mut map)?,
                "dir" => put(&mut f.dir, "dir", &mut map)?,
                "target" => put(&mut f.target, "target", &mut map)?,
                "link" => put(&mut f.link, "link", &mut map)?,
                other => return Err(de::Error::unknown_field(other, ALL_FIELDS)),
            }
        }
        build(f).map(SpecOp)
    }
}

impl<'de> Deserialize<'de> for SpecOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpecOp, D::Error> {
        d.deserialize_map(OpVisitor)
    }
}

/// Message of the deliberate error [`OpLocator`] raises at the op it looks for.
pub(super) const LOCATE_SENTINEL: &str = "powercut: locate op";

/// Walks a workload document to op `index` and fails there on purpose, so that the YAML
/// parser's error carries that op's line and column.
pub(super) struct OpLocator {
    /// Index of the op to locate.
    pub index: usize,
}

struct OpsLocator(usize);
struct Fail;

impl<'de> DeserializeSeed<'de> for OpLocator {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OpLocator {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a workload mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "ops" {
                map.next_value_seed(OpsLocator(self.index))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for OpsLocator {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for OpsLocator {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of ops")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = if i == self.0 {
                seq.next_element_seed(Fail)?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
}

impl<'de> DeserializeSeed<'de> for Fail {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fail {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(de::Error::custom(LOCATE_SENTINEL))
    }
}
