//! What the oracle expects after a crash: per file name, whether it exists and the states
//! it may be in (one per inode the name may refer to), each a set of sizes and, per word,
//! the versions allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::meta::MetaState;
use super::words::{SizeSet, WordSpan, WordSrc, WordVersion, WORD};
use super::CrashPoint;
use crate::meta::FileMeta;
use crate::namespace::NodeKind;

/// Whether a name must exist after the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Existence {
    /// It was durably created (or never durably removed).
    MustExist,
    /// It never existed, or was durably removed.
    MustNotExist,
    /// Either: its directory entry is not durable.
    Either,
}

/// One state a file may be in: the content rules of one inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// Workload seed (pattern versions are computed from it).
    pub seed: u64,
    /// Inode number in creation order (0 = first file the workload created).
    pub inode: usize,
    /// Is this the inode the name refers to at the crash point (in the live file system)?
    pub current: bool,
    /// Sizes allowed.
    pub sizes: SizeSet,
    /// Word histories, tiling all word indexes from 0.
    pub words: Vec<WordSpan>,
    /// Mode, times and xattrs allowed (empty in expectations recorded before metadata was
    /// checked: nothing is checked then).
    #[serde(default)]
    pub meta: MetaState,
    /// What the inode is (a regular file unless said otherwise).
    #[serde(default, skip_serializing_if = "NodeKind::is_file")]
    pub kind: NodeKind,
    /// A symlink's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl FileState {
    /// The span holding word index `w`.
    pub fn span(&self, w: u64) -> Option<&WordSpan> {
        let i = self.words.partition_point(|s| s.end <= w);
        self.words.get(i).filter(|s| s.start <= w)
    }

    /// The whole-word versions word `w` may hold (torn versions also allow each byte's
    /// previous value), in history order.
    pub fn allowed_versions(&self, w: u64) -> Vec<WordVersion> {
        self.span(w)
            .into_iter()
            .flat_map(WordSpan::allowed)
            .copied()
            .collect()
    }

    /// May word `w` read `found` (its first `found.len()` bytes, at most 8)?
    pub fn word_allows(&self, w: u64, found: &[u8]) -> bool {
        self.span(w)
            .is_some_and(|s| s.allowed().any(|v| v.matches(self.seed, w, found)))
    }

    /// The values byte `off` may hold.
    pub fn allowed_bytes(&self, off: u64) -> BTreeSet<u8> {
        let (w, i) = (off / WORD, (off % WORD) as usize);
        self.allowed_versions(w)
            .iter()
            .flat_map(|v| v.byte_values(self.seed, w, i))
            .collect()
    }

    /// The single state allowed, when size and every word are fully durable.
    pub fn exact_content(&self) -> Option<Vec<u8>> {
        let size = self.sizes.single()?;
        if !self.words.iter().all(WordSpan::is_durable) {
            return None;
        }
        let mut out = Vec::new();
        for w in 0..size.div_ceil(WORD) {
            out.extend_from_slice(&self.span(w)?.durable.bytes(self.seed, w));
        }
        out.truncate(usize::try_from(size).ok()?);
        Some(out)
    }
}

/// Expectations for one file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileExpectation {
    /// Must it exist?
    pub existence: Existence,
    /// States it may be in when present: one per inode the name may refer to, the current
    /// inode first. Empty when it must not exist.
    pub states: Vec<FileState>,
    /// The op whose promise made the name's binding durable, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_by: Option<usize>,
}

/// Expected state of every file a workload names, at one crash point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// Workload seed.
    pub seed: u64,
    /// Where the crash happened.
    pub crash: CrashPoint,
    /// Kind of the op at the crash point (`fsync`, …), for messages.
    pub crash_op: String,
    /// Name of the [`super::FsRules`] used.
    pub rules: String,
    /// Per file name.
    pub files: BTreeMap<String, FileExpectation>,
}

impl Expectation {
    /// Every pattern (and the shift a collapse or insert range gave it) that any allowed
    /// version of any file may hold: what the agent's read-back looks for
    /// ([`crate::content::encode`]).
    pub fn sources(&self) -> Vec<crate::content::Source> {
        let mut out = BTreeSet::new();
        for state in self.files.values().flat_map(|f| &f.states) {
            for span in &state.words {
                for v in std::iter::once(&span.durable).chain(&span.pending) {
                    if let WordSrc::Pattern(id) = v.src {
                        out.insert(crate::content::Source {
                            id,
                            shift: v.moved_by,
                        });
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// "after op 7 (fsync)" / "inside op 3 (pwrite)".
    pub fn crash_label(&self) -> String {
        match self.crash {
            CrashPoint::AfterOp(k) => format!("after op {k} ({})", self.crash_op),
            CrashPoint::InsideOp(k) => format!("inside op {k} ({})", self.crash_op),
        }
    }
}

/// What was found for one file in a crash image (or the live file system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Does it exist?
    pub exists: bool,
    /// Its content (its length is the size).
    pub data: Vec<u8>,
    /// Its mode, times and xattrs, when the read-back reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<FileMeta>,
    /// What it is (a regular file unless said otherwise).
    #[serde(default, skip_serializing_if = "NodeKind::is_file")]
    pub kind: NodeKind,
    /// A symlink's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Inode number and link count of a regular file (0 when not known).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ino: u64,
    /// Link count of a regular file (0 when not known).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nlink: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Observed {
    /// A present regular file with `data` (inode and link count unknown).
    pub fn present(data: Vec<u8>) -> Observed {
        Observed {
            exists: true,
            data,
            meta: None,
            kind: NodeKind::File,
            target: None,
            ino: 0,
            nlink: 0,
        }
    }

    /// A present object of another kind (a symlink with its text).
    pub fn node(kind: NodeKind, target: Option<String>) -> Observed {
        Observed {
            kind,
            target,
            ..Observed::present(Vec::new())
        }
    }

    /// An absent file.
    pub fn absent() -> Observed {
        Observed {
            exists: false,
            ..Observed::present(Vec::new())
        }
    }
}

impl fmt::Display for Existence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Existence::MustExist => "must exist",
            Existence::MustNotExist => "must not exist",
            Existence::Either => "may or may not exist",
        })
    }
}
