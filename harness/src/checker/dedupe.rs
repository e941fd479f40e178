//! Checking each distinct crash image once. What a checker VM observes of a crash image —
//! whether it mounts, the files it reads back after journal recovery, and the host fsck of
//! the recovered image — depends only on the image's bytes and the file names asked for
//! ([`Readback`]). The oracle's verdict depends on more: the promises made before the crash
//! point. So a repeated image (same content digest, same names) reuses only the read-back of
//! the state that was checked first, and [`judge`] runs the oracle with the repeated state's
//! own expectation. The first and every repeated state go through the same [`judge`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use workloads::oracle::{Expectation, Finding, Observed, Verdict};

use crate::host::digest::ImageDigest;
use crate::records::StateRef;

/// What a checker VM observed of one crash image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readback {
    /// The mount failed: its error and the kernel log's tail.
    MountFailed {
        /// `mount` output and `dmesg` tail.
        detail: String,
    },
    /// It mounted (journal recovery ran); the files and the host fsck of the result.
    Mounted {
        /// The files read back, by name.
        files: BTreeMap<String, Observed>,
        /// `Err` with fsck's output when it found the recovered file system damaged.
        fsck: Result<(), String>,
    },
}

impl Readback {
    /// Bytes this read-back holds (for the cache's bound).
    fn bytes(&self) -> usize {
        match self {
            Readback::MountFailed { detail } => detail.len(),
            Readback::Mounted { files, fsck } => {
                files
                    .iter()
                    .map(|(n, o)| n.len() + o.data.len())
                    .sum::<usize>()
                    + fsck.as_ref().err().map_or(0, String::len)
            }
        }
    }
}

/// The verdict, findings and detail of a crash state whose image read back as `readback`,
/// judged against the state's own expectation `exp`.
pub fn judge(readback: &Readback, exp: &Expectation) -> (Verdict, Vec<Finding>, String) {
    match readback {
        Readback::MountFailed { detail } => (Verdict::MountFailed, Vec::new(), detail.clone()),
        Readback::Mounted { files, fsck } => {
            let result = exp.check(files);
            match (fsck, result.verdict) {
                (Ok(()), v) => (v, result.findings, String::new()),
                (Err(out), Verdict::Pass) => (Verdict::FsCorrupt, result.findings, out.clone()),
                (Err(out), v) => (v, result.findings, out.clone()),
            }
        }
    }
}

/// What a cached image stands for: its read-back and the state checked first.
#[derive(Debug)]
pub struct Seen {
    /// The read-back.
    pub readback: Readback,
    /// The state whose check produced it.
    pub origin: StateRef,
}

/// The key of a read-back: the image's content and the names read.
type Key = (ImageDigest, Vec<String>);

/// Read-backs of the images checked so far, bounded in entries and bytes (oldest dropped
/// first; a dropped image is simply checked again).
#[derive(Debug)]
pub struct SeenImages {
    entries: HashMap<Key, Arc<Seen>>,
    order: VecDeque<Key>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

/// Read-backs kept by default: a few seeds' worth of cache-model states.
pub const MAX_SEEN_IMAGES: usize = 512;

/// Bytes of read-back data kept by default.
pub const MAX_SEEN_BYTES: usize = 256 << 20;

/// Shared by every checker of a campaign (an image checked by one is reused by all).
pub type SharedSeen = Arc<Mutex<SeenImages>>;

impl Default for SeenImages {
    fn default() -> Self {
        SeenImages::new(MAX_SEEN_IMAGES, MAX_SEEN_BYTES)
    }
}

impl SeenImages {
    /// An empty cache of at most `max_entries` read-backs and `max_bytes` of their data.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        SeenImages {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// A new cache to share between checkers.
    pub fn shared() -> SharedSeen {
        Arc::new(Mutex::new(SeenImages::default()))
    }

    /// The read-back of an image with `digest` read for `names`, if one was kept.
    pub fn get(&self, digest: &ImageDigest, names: &[String]) -> Option<Arc<Seen>> {
        self.entries.get(&(*digest, names.to_vec())).cloned()
    }

    /// Keep `seen` for an image with `digest` read for `names` (the first one stays if the
    /// image is already kept: two checkers that raced both checked it).
    pub fn insert(&mut self, digest: ImageDigest, names: Vec<String>, seen: Seen) {
        let key = (digest, names);
        if self.entries.contains_key(&key) {
            return;
        }
        let size = seen.readback.bytes();
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        while self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(s) = self.entries.remove(&old) {
                self.bytes -= s.readback.bytes();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.entries.insert(key, Arc::new(seen));
    }

    /// Read-backs kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[path = "dedupe_tests.rs"]
mod tests;
