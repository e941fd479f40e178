//! The oracle's metadata rules: per inode, the history of its permission bits, times and
//! `user.` xattrs since each was last made durable, the values a crash may leave, and the
//! check of what a crash image shows.
//!
//! Rules (the kernel code each rests on is cited in `workloads/specs/README.md`):
//! - `fsync`, `sync`, `syncfs` and a write through an `O_SYNC` descriptor or with `RWF_SYNC`
//!   make every metadata value of the inode durable: ext4 commits the inode's `i_sync_tid`
//!   (every `ext4_mark_inode_dirty` of a chmod, setxattr or utimensat updates it), xfs forces
//!   the log up to the inode's last commit (`xfs_fsync_seq`, non-timestamp changes are
//!   `XFS_ILOG_CORE`).
//! - `fdatasync`, `O_DSYNC`/`RWF_DSYNC` writes, msync and flushes promise no metadata beyond
//!   the size (permissive: xfs's fdatasync would force a chmod too, ext4's does not).
//! - Until a promise, a value may be the durable one or any set since (each change is one
//!   journal transaction: values are whole, never mixed).
//! - Times the kernel sets (creation, a write, a truncate, an mmap's access) are not known
//!   to the oracle: while one of them is allowed, any time is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::{xattr_value, FileMeta, Timestamp, CREATE_MODE};

/// One value's history: durable, then every value set since, the current last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct History<T> {
    durable: T,
    durable_by: Option<usize>,
    pending: Vec<T>,
}

impl<T: Clone + PartialEq> History<T> {
    fn new(v: T) -> Self {
        History {
            durable: v,
            durable_by: None,
            pending: Vec::new(),
        }
    }

    fn current(&self) -> &T {
        self.pending.last().unwrap_or(&self.durable)
    }

    fn set(&mut self, v: T) {
        if *self.current() != v {
            self.pending.push(v);
        }
    }

    fn make_durable(&mut self, k: usize) {
        self.durable = self.current().clone();
        self.durable_by = Some(k);
        self.pending.clear();
    }

    /// Every value a crash may leave, deduplicated, the durable one first.
    fn allowed(&self) -> Vec<T> {
        let mut out: Vec<T> = Vec::new();
        for v in std::iter::once(&self.durable).chain(&self.pending) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    }

    /// Only the current value (the live state).
    fn settled(&self) -> History<T> {
        History::new(self.current().clone())
    }
}

/// A time as the oracle knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeVal {
    /// Set by `utimensat`.
    Set(Timestamp),
    /// Set by the kernel (creation, write, truncate, access): any value.
    Kernel,
}

/// An xattr value as the oracle knows it: the pattern and length of its `setxattr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct XattrVal {
    /// Pattern id.
    pub id: u32,
    /// Length in bytes.
    pub len: u64,
}

/// One inode's metadata histories.
#[derive(Debug, Clone)]
pub(crate) struct MetaHist {
    mode: History<u32>,
    atime: History<TimeVal>,
    mtime: History<TimeVal>,
    xattrs: BTreeMap<String, History<Option<XattrVal>>>,
}

impl MetaHist {
    /// A file `create` just made.
    pub fn created() -> MetaHist {
        MetaHist {
            mode: History::new(CREATE_MODE),
            atime: History::new(TimeVal::Kernel),
            mtime: History::new(TimeVal::Kernel),
            xattrs: BTreeMap::new(),
        }
    }

    pub fn chmod(&mut self, mode: u32) {
        self.mode.set(mode);
    }

    pub fn set_times(&mut self, t: Timestamp) {
        self.atime.set(TimeVal::Set(t));
        self.mtime.set(TimeVal::Set(t));
    }

    /// The kernel set the modification time (a write, truncate, fallocate, mapped store).
    pub fn modified(&mut self) {
        self.mtime.set(TimeVal::Kernel);
    }

    /// The kernel set the access time (`mmap` calls `file_accessed`).
    pub fn accessed(&mut self) {
        self.atime.set(TimeVal::Kernel);
    }

    pub fn set_xattr(&mut self, name: &str, v: Option<XattrVal>) {
        self.xattrs
            .entry(name.to_string())
            .or_insert_with(|| History::new(None))
            .set(v);
    }

    /// Every value is durable (op `k`'s promise).
    pub fn make_durable(&mut self, k: usize) {
        self.mode.make_durable(k);
        self.atime.make_durable(k);
        self.mtime.make_durable(k);
        self.xattrs.values_mut().for_each(|h| h.make_durable(k));
    }

    /// What a crash may leave.
    pub fn state(&self) -> MetaState {
        let times = |h: &History<TimeVal>| {
            h.allowed()
                .into_iter()
                .map(|t| match t {
                    TimeVal::Set(t) => Some(t),
                    TimeVal::Kernel => None,
                })
                .collect::<Option<Vec<Timestamp>>>()
        };
        MetaState {
            modes: self.mode.allowed(),
            mode_by: self.mode.durable_by,
            atimes: times(&self.atime),
            atime_by: self.atime.durable_by,
            mtimes: times(&self.mtime),
            mtime_by: self.mtime.durable_by,
            xattrs: self
                .xattrs
                .iter()
                .map(|(n, h)| {
                    let allowed = AllowedXattr {
                        values: h.allowed(),
                        promised_by: h.durable_by,
                    };
                    (n.clone(), allowed)
                })
                .collect(),
        }
    }

    /// The state with no crash: only the current values.
    pub fn live_state(&self) -> MetaState {
        MetaHist {
            mode: self.mode.settled(),
            atime: self.atime.settled(),
            mtime: self.mtime.settled(),
            xattrs: self
                .xattrs
                .iter()
                .map(|(n, h)| (n.clone(), h.settled()))
                .collect(),
        }
        .state()
    }
}

/// The values one xattr may have after a crash (`None`: not set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedXattr {
    /// Allowed values, the durable one first.
    pub values: Vec<Option<XattrVal>>,
    /// The op whose promise made the first value durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_by: Option<usize>,
}

/// The metadata a crash may leave on one inode. Empty (the default, as in expectations
/// recorded before metadata was checked) checks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    /// Allowed permission bits (empty: not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<u32>,
    /// The op that made the first mode durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_by: Option<usize>,
    /// Allowed access times (`None`: any, since the kernel may have set one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atimes: Option<Vec<Timestamp>>,
    /// The op that made the first access time durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atime_by: Option<usize>,
    /// Allowed modification times (`None`: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtimes: Option<Vec<Timestamp>>,
    /// The op that made the first modification time durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_by: Option<usize>,
    /// Per xattr name the workload set or removed, its allowed values; any other `user.`
    /// xattr must be absent (when `modes` is not empty, i.e. metadata is checked).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, AllowedXattr>,
}

/// One metadata value a crash image holds that the oracle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaMismatch {
    /// What: `mode`, `atime`, `mtime` or `xattr user.NAME`.
    pub field: String,
    /// The allowed values, as text (the durable one first).
    pub allowed: Vec<String>,
    /// The value found, as text.
    pub found: String,
    /// The op whose promise made the first allowed value durable.
    pub promised_by: Option<usize>,
}

fn show_xattr(seed: u64, v: &Option<XattrVal>) -> String {
    match v {
        None => "absent".into(),
        Some(x) => show_bytes(&xattr_value(seed, x.id, x.len)),
    }
}

/// Up to 16 bytes in hex and the length.
fn show_bytes(b: &[u8]) -> String {
    let head = hex::encode(&b[..b.len().min(16)]);
    let more = if b.len() > 16 { "…" } else { "" };
    format!("{} bytes {head}{more}", b.len())
}

impl MetaState {
    /// Everything `found` holds that this state does not allow (empty: it matches, or
    /// metadata is not checked).
    pub fn mismatches(&self, seed: u64, found: &FileMeta) -> Vec<MetaMismatch> {
        let mut out = Vec::new();
        if self.modes.is_empty() {
            return out;
        }
        if !self.modes.contains(&found.mode) {
            out.push(MetaMismatch {
                field: "mode".into(),
                allowed: self.modes.iter().map(|m| format!("{m:04o}")).collect(),
                found: format!("{:04o}", found.mode),
                promised_by: self.mode_by,
            });
        }
        for (field, allowed, by, t) in [
            ("atime", &self.atimes, self.atime_by, found.atime),
            ("mtime", &self.mtimes, self.mtime_by, found.mtime),
        ] {
            if let Some(allowed) = allowed.as_ref().filter(|a| !a.contains(&t)) {
                out.push(MetaMismatch {
                    field: field.into(),
                    allowed: allowed.iter().map(ToString::to_string).collect(),
                    found: t.to_string(),
                    promised_by: by,
                });
            }
        }
        for (name, allowed) in &self.xattrs {
            let value = found
                .xattrs
                .iter()
                .find(|x| x.name == *name)
                .map(|x| &x.value);
            let ok = allowed.values.iter().any(|v| match (v, value) {
                (None, None) => true,
                (Some(x), Some(found)) => xattr_value(seed, x.id, x.len) == *found,
                _ => false,
            });
            if !ok {
                out.push(MetaMismatch {
                    field: format!("xattr user.{name}"),
                    allowed: allowed.values.iter().map(|v| show_xattr(seed, v)).collect(),
                    found: value.map_or_else(|| "absent".into(), |v| show_bytes(v)),
                    promised_by: allowed.promised_by,
                });
            }
        }
        for x in found
            .xattrs
            .iter()
            .filter(|x| !self.xattrs.contains_key(&x.name))
        {
            out.push(MetaMismatch {
                field: format!("xattr user.{}", x.name),
                allowed: vec!["absent".into()],
                found: show_bytes(&x.value),
                promised_by: None,
            });
        }
        out
    }
}
