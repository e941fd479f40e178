//! Word histories of one file: for every aligned 8-byte word (the pmem atomic unit) the
//! version that is durable and the versions written since, kept as an interval map over
//! word indexes (a few hundred spans for 200 ops, whatever the file size), plus the set of
//! sizes the file may have.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

mod shift;

/// Bytes per word: the unit at which a crash may mix old and new data.
pub const WORD: u64 = 8;
/// One past the last word index the map covers.
const WORD_LIMIT: u64 = u64::MAX / WORD;

/// Where a word version's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordSrc {
    /// All zero (never written, truncated, punched or zeroed).
    Zero,
    /// The word of data pattern `id` (see [`Pattern::word`]) at this word index.
    Pattern(u32),
    /// Literal bytes: a snapshot of a word only partly covered by a write or a truncate.
    Bytes([u8; 8]),
}

/// One value a word held: a whole-word snapshot after the op that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordVersion {
    /// Its bytes.
    pub src: WordSrc,
    /// The op that produced it; `None` for the initial zeros.
    pub op: Option<usize>,
    /// Written by a store through a MAP_SYNC mapping (a user flush can make it durable).
    #[serde(default)]
    pub sync_store: bool,
    /// For a word only partly covered by the op: the word's bytes before it. Such words
    /// are written piecewise (byte or 4-byte stores), so until the version is durable each
    /// byte may be the old or the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_from: Option<[u8; 8]>,
    /// Words the version moved by since it was written (collapse range: negative, insert
    /// range: positive): at word `w` it holds the bytes `src` has at word `w - moved_by`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moved_by: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl WordVersion {
    /// The initial content of every word: zeros.
    pub const INITIAL: WordVersion = WordVersion {
        src: WordSrc::Zero,
        op: None,
        sync_store: false,
        torn_from: None,
        moved_by: 0,
    };

    /// The 8 bytes of this version at word index `word` of a workload seeded `seed`.
    pub fn bytes(&self, seed: u64, word: u64) -> [u8; 8] {
        src_bytes(self.src, seed, word.wrapping_sub(self.moved_by as u64))
    }

    /// This version moved by `by` words (a collapse or insert range): a pattern's bytes go
    /// with it, zeros and literal bytes are the same anywhere. The move is a new block
    /// mapping, which a MAP_SYNC fault did not make durable, so `sync_store` is dropped.
    fn moved(self, by: i64) -> WordVersion {
        let moved_by = match self.src {
            WordSrc::Pattern(_) => self.moved_by.wrapping_add(by),
            WordSrc::Zero | WordSrc::Bytes(_) => 0,
        };
        WordVersion {
            moved_by,
            sync_store: false,
            ..self
        }
    }

    /// Same bytes at every word (source, and where a pattern is read from)?
    fn same_bytes(&self, other: &WordVersion) -> bool {
        self.src == other.src && self.moved_by == other.moved_by
    }

    /// Could word `word` read `found` (its first `found.len()` bytes) under this version?
    pub fn matches(&self, seed: u64, word: u64, found: &[u8]) -> bool {
        let new = self.bytes(seed, word);
        match self.torn_from {
            None => new[..found.len()] == *found,
            Some(old) => found
                .iter()
                .enumerate()
                .all(|(i, &b)| b == new[i] || b == old[i]),
        }
    }

    /// The values byte `i` (0..8) of word `word` may hold under this version.
    pub fn byte_values(&self, seed: u64, word: u64, i: usize) -> [u8; 2] {
        let new = self.bytes(seed, word)[i];
        [new, self.torn_from.map_or(new, |old| old[i])]
    }
}

fn src_bytes(src: WordSrc, seed: u64, word: u64) -> [u8; 8] {
    match src {
        WordSrc::Zero => [0; 8],
        WordSrc::Pattern(id) => Pattern::new(seed, id).word(word),
        WordSrc::Bytes(b) => b,
    }
}

/// The history of a run of words `[start, end)` (word indexes) that share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordSpan {
    /// First word index.
    pub start: u64,
    /// One past the last word index.
    pub end: u64,
    /// The version last made durable (or the initial zeros).
    pub durable: WordVersion,
    /// The op whose promise made `durable` durable (fsync, msync, flush, sync), if any.
    pub durable_by: Option<usize>,
    /// Versions written since, oldest first; the last is the current content.
    pub pending: Vec<WordVersion>,
}

impl WordSpan {
    /// The current (latest) version.
    pub fn current(&self) -> &WordVersion {
        self.pending.last().unwrap_or(&self.durable)
    }

    /// Every version a crash may leave: the durable one and each one written since.
    pub fn allowed(&self) -> impl Iterator<Item = &WordVersion> {
        std::iter::once(&self.durable).chain(self.pending.iter())
    }

    /// True when exactly one version is allowed.
    pub fn is_durable(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Interval map from word index to [`WordSpan`]; the spans tile `[0, WORD_LIMIT)`.
#[derive(Debug, Clone)]
pub(crate) struct WordMap {
    spans: BTreeMap<u64, WordSpan>,
}

impl WordMap {
    /// Every word zero and durable.
    pub fn new() -> WordMap {
        let all = WordSpan {
            start: 0,
            end: WORD_LIMIT,
            durable: WordVersion::INITIAL,
            durable_by: None,
            pending: Vec::new(),
        };
        WordMap {
            spans: BTreeMap::from([(0, all)]),
        }
    }

    /// Make `at` the start of a span.
    fn split(&mut self, at: u64) {
        if at == 0 || at >= WORD_LIMIT {
            return;
        }
        let Some((_, span)) = self.spans.range_mut(..=at).next_back() else {
            return;
        };
        if span.start == at {
            return;
        }
        let mut right = span.clone();
        span.end = at;
        right.start = at;
        self.spans.insert(at, right);
    }

    /// The span holding word `w`.
    fn span_of(&self, w: u64) -> Option<&WordSpan> {
        self.spans.range(..=w).next_back().map(|(_, s)| s)
    }

    /// Current bytes of word `w`.
    pub fn current_bytes(&self, seed: u64, w: u64) -> [u8; 8] {
        self.span_of(w)
            .map_or([0; 8], |s| s.current().bytes(seed, w))
    }

    /// Append `v` to the history of words `[lo, hi)` where it differs from the current one.
    fn push(&mut self, lo: u64, hi: u64, v: WordVersion) {
        if lo >= hi {
            return;
        }
        self.split(lo);
        self.split(hi);
        for span in self.spans.range_mut(lo..hi).map(|(_, s)| s) {
            if !span.current().same_bytes(&v) {
                span.pending.push(v);
            }
        }
    }

    /// Write bytes `[start, end)` from `src` (zeros or a pattern) as op `op`. Words only
    /// partly covered get a literal snapshot: their current bytes with the written ones.
    pub fn write(
        &mut self,
        seed: u64,
        start: u64,
        end: u64,
        src: WordSrc,
        op: usize,
        sync_store: bool,
    ) {
        if start >= end {
            return;
        }
        let version = |src| WordVersion {
            src,
            op: Some(op),
            sync_store,
            torn_from: None,
            moved_by: 0,
        };
        let (first, last) = (start / WORD, (end - 1) / WORD);
        self.push(start.div_ceil(WORD), end / WORD, version(src));
        let mut edges = Vec::with_capacity(2);
        if start & (WORD - 1) != 0 {
            edges.push(first);
        }
        if end & (WORD - 1) != 0 && !edges.contains(&last) {
            edges.push(last);
        }
        for w in edges {
            let base = w * WORD;
            let lo = (start.max(base) - base) as usize;
            let hi = (end.min(base + WORD) - base) as usize;
            let new = src_bytes(src, seed, w);
            let old = self.current_bytes(seed, w);
            let mut snap = old;
            snap[lo..hi].copy_from_slice(&new[lo..hi]);
            let s = if snap == new {
                src
            } else {
                WordSrc::Bytes(snap)
            };
            // Permissive: a partly covered word is written piecewise, so it may be torn.
            self.push(
                w,
                w + 1,
                WordVersion {
                    torn_from: Some(old),
                    ..version(s)
                },
            );
        }
    }

    /// Make the current version of words `[lo, hi)` durable (promised by op `by`), for the
    /// spans whose current version satisfies `which`.
    pub fn make_durable(
        &mut self,
        lo: u64,
        hi: u64,
        by: usize,
        which: impl Fn(&WordVersion) -> bool,
    ) {
        if lo >= hi {
            return;
        }
        self.split(lo);
        self.split(hi);
        for span in self.spans.range_mut(lo..hi).map(|(_, s)| s) {
            if !span.pending.is_empty() && which(span.current()) {
                span.durable = WordVersion {
                    torn_from: None,
                    ..*span.current()
                };
                span.durable_by = Some(by);
                span.pending.clear();
            }
        }
    }

    /// Make every word's current version durable (promised by op `by`).
    pub fn make_all_durable(&mut self, by: usize) {
        self.make_durable(0, WORD_LIMIT, by, |_| true);
    }

    /// All spans, in order.
    pub fn spans(&self) -> Vec<WordSpan> {
        self.spans.values().cloned().collect()
    }

    /// Current content of bytes `[0, size)`.
    pub fn content(&self, seed: u64, size: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let words = size.div_ceil(WORD);
        for span in self.spans.range(..words).map(|(_, s)| s) {
            let cur = span.current();
            for w in span.start..span.end.min(words) {
                out.extend_from_slice(&cur.bytes(seed, w));
            }
        }
        out.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        out
    }
}

/// An inclusive range of file sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeRange {
    /// Smallest size.
    pub lo: u64,
    /// Largest size.
    pub hi: u64,
}

/// The sizes a file may have after a crash: a small set of ranges (mostly single sizes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeSet(pub Vec<SizeRange>);

impl SizeSet {
    /// Exactly `size`.
    pub fn exactly(size: u64) -> SizeSet {
        SizeSet(vec![SizeRange { lo: size, hi: size }])
    }

    /// Does the set allow `size`?
    pub fn contains(&self, size: u64) -> bool {
        self.0.iter().any(|r| r.lo <= size && size <= r.hi)
    }

    /// Also allow `[lo, hi]`.
    pub fn add(&mut self, lo: u64, hi: u64) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        if !self.0.iter().any(|r| r.lo <= lo && hi <= r.hi) {
            self.0.push(SizeRange { lo, hi });
        }
    }

    /// Drop every size below `min` (never empties the set when its largest size is ≥ `min`).
    pub fn at_least(&mut self, min: u64) {
        self.0.retain(|r| r.hi >= min);
        for r in &mut self.0 {
            r.lo = r.lo.max(min);
        }
    }

    /// Is exactly one size allowed?
    pub fn single(&self) -> Option<u64> {
        match self.0.as_slice() {
            [r] if r.lo == r.hi => Some(r.lo),
            _ => None,
        }
    }

    /// Largest allowed size.
    pub fn max(&self) -> u64 {
        self.0.iter().map(|r| r.hi).max().unwrap_or(0)
    }
}

impl fmt::Display for SizeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if r.lo == r.hi {
                write!(f, "{}", r.lo)?;
            } else {
                write!(f, "{}..={}", r.lo, r.hi)?;
            }
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_write_snapshots_the_edge_words() {
        let mut m = WordMap::new();
        m.write(7, 4, 20, WordSrc::Pattern(1), 0, false);
        let p = Pattern::new(7, 1);
        let content = m.content(7, 24);
        assert_eq!(&content[..4], &[0; 4]);
        assert_eq!(&content[4..20], &p.bytes(4, 16)[..]);
        assert_eq!(&content[20..], &[0; 4]);
        // Words 0 and 2 are literal snapshots, word 1 the pattern word.
        let spans = m.spans();
        assert!(matches!(spans[0].current().src, WordSrc::Bytes(_)));
        assert_eq!(spans[1].current().src, WordSrc::Pattern(1));
        assert!(matches!(spans[2].current().src, WordSrc::Bytes(_)));
    }

    #[test]
    fn durable_resets_history_and_spans_tile() {
        let mut m = WordMap::new();
        m.write(1, 0, 64, WordSrc::Pattern(1), 0, false);
        m.write(1, 16, 32, WordSrc::Pattern(2), 1, false);
        m.make_durable(0, 3, 2, |_| true);
        let spans = m.spans();
        for pair in spans.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        let at = |w: u64| {
            spans
                .iter()
                .find(|s| s.start <= w && w < s.end)
                .expect("tiled")
        };
        assert!(at(0).is_durable());
        assert_eq!(at(2).durable.src, WordSrc::Pattern(2));
        assert_eq!(at(3).pending.len(), 2);
    }

    #[test]
    fn size_set_lower_bound() {
        let mut s = SizeSet::exactly(0);
        s.add(65536, 65536);
        s.add(100, 200);
        s.at_least(150);
        assert!(!s.contains(0) && s.contains(150) && s.contains(65536) && !s.contains(149));
        assert_eq!(s.to_string(), "{65536, 150..=200}");
    }
}
