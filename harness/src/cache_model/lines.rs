//! The cache-line state machine (pure). Every pmem line the trace touches has its latest
//! content (what the CPU sees), its *durable* content (guaranteed to survive a power cut),
//! and pending snapshots that a fence will make durable:
//!
//! - a store changes the latest content; a non-temporal store also takes a snapshot that
//!   the next `sfence`/`mfence` makes durable;
//! - `clwb`/`clflushopt` snapshot the line, made durable by the next fence of any kind
//!   (sfence, mfence, locked RMW); `clflush` is ordered with later stores: durable at once;
//! - `wbinvd` makes every line's latest content durable.
//!
//! A line is the unit (all-or-nothing): a crash leaves each line at its durable content or
//! at a newer one it had (any dirty line may be evicted at any time). Durable content never
//! goes back in time: of two snapshots the newer one wins.

use std::collections::{BTreeSet, HashMap};

use super::format::{FenceKind, FlushKind, LINE};
use super::trace::Event;

/// Bytes of one cache line.
pub type LineData = [u8; LINE as usize];

/// Content of a line as of trace position `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snap {
    /// The bytes.
    pub data: LineData,
    /// Trace position (event index) the snapshot was taken at; 0 for the golden content.
    pub seq: u64,
}

/// Why a line is in flight.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum InFlight {
    /// Stored to, never flushed since.
    Dirty,
    /// Flushed (clwb/clflushopt), no fence yet.
    FlushedUnfenced,
    /// Written with non-temporal stores, no sfence yet.
    NonTemporal,
}

/// One line's state.
#[derive(Debug, Clone)]
pub struct LineState {
    /// The golden image's content.
    pub golden: LineData,
    /// What the CPU sees now.
    pub latest: LineData,
    /// Guaranteed to survive a crash.
    pub durable: Snap,
    /// clwb/clflushopt snapshot awaiting a fence.
    pub pending_flush: Option<Snap>,
    /// Non-temporal snapshot awaiting sfence/mfence.
    pub pending_nt: Option<Snap>,
    /// Trace position of the last store to the line.
    pub last_store: u64,
    /// Guest PC of the last store to the line (0: not recorded).
    pub last_pc: u64,
}

impl LineState {
    fn new(golden: LineData) -> LineState {
        LineState {
            golden,
            latest: golden,
            durable: Snap {
                data: golden,
                seq: 0,
            },
            pending_flush: None,
            pending_nt: None,
            last_store: 0,
            last_pc: 0,
        }
    }

    fn make_durable(&mut self, s: Snap) {
        if s.seq >= self.durable.seq {
            self.durable = s;
        }
        // A pending snapshot older than the durable content is subsumed by it.
        let d = self.durable.seq;
        self.pending_flush = self.pending_flush.filter(|p| p.seq > d);
        self.pending_nt = self.pending_nt.filter(|p| p.seq > d);
    }

    /// The content this line has if it *is* persisted beyond its durable content: the
    /// newest pending snapshot (what a flush or NT store meant to persist), else the latest.
    pub fn persisted_alternative(&self) -> LineData {
        match (self.pending_flush, self.pending_nt) {
            (Some(a), Some(b)) => {
                if a.seq >= b.seq {
                    a.data
                } else {
                    b.data
                }
            }
            (Some(s), None) | (None, Some(s)) => s.data,
            (None, None) => self.latest,
        }
    }

    /// Is the line's crash content undetermined (it may differ from the durable content)?
    pub fn in_flight(&self) -> Option<InFlight> {
        if self.pending_nt.is_some_and(|s| s.data != self.durable.data) {
            Some(InFlight::NonTemporal)
        } else if self
            .pending_flush
            .is_some_and(|s| s.data != self.durable.data)
        {
            Some(InFlight::FlushedUnfenced)
        } else if self.latest != self.durable.data {
            Some(InFlight::Dirty)
        } else {
            None
        }
    }
}

/// Supplies golden content for lines the trace touches.
pub trait Golden {
    /// The golden bytes of the line at pmem offset `off` (64-aligned).
    fn line(&self, off: u64) -> LineData;
}

impl Golden for [u8] {
    fn line(&self, off: u64) -> LineData {
        let mut l = [0u8; LINE as usize];
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        if let Some(src) = self.get(start..start.saturating_add(LINE as usize)) {
            l.copy_from_slice(src);
        }
        l
    }
}

/// Every touched line, with the sets the crash-state builder needs kept up to date.
pub struct LineModel<'g, G: Golden + ?Sized> {
    golden: &'g G,
    size: u64,
    lines: HashMap<u64, LineState>,
    pending: BTreeSet<u64>,
    undetermined: BTreeSet<u64>,
    seq: u64,
}

impl<'g, G: Golden + ?Sized> LineModel<'g, G> {
    /// An empty model over a pmem of `size` bytes whose initial content is `golden`.
    pub fn new(golden: &'g G, size: u64) -> Self {
        LineModel {
            golden,
            size,
            lines: HashMap::new(),
            pending: BTreeSet::new(),
            undetermined: BTreeSet::new(),
            seq: 0,
        }
    }

    fn line_mut(&mut self, idx: u64) -> &mut LineState {
        let golden = self.golden;
        self.lines
            .entry(idx)
            .or_insert_with(|| LineState::new(golden.line(idx * LINE)))
    }

    fn refresh(&mut self, idx: u64) {
        let fl = self.lines.get(&idx).and_then(LineState::in_flight);
        if fl.is_some() {
            self.undetermined.insert(idx);
        } else {
            self.undetermined.remove(&idx);
        }
    }

    /// Trace position of the next event (events are numbered from 1).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Apply one event.
    pub fn apply(&mut self, ev: &Event) {
        self.seq += 1;
        let seq = self.seq;
        match ev {
            Event::Store {
                off,
                len,
                value,
                nt,
                pc,
            } => {
                let end = off.saturating_add(u64::from(*len)).min(self.size);
                let mut a = *off;
                while a < end {
                    let idx = a / LINE;
                    let stop = ((idx + 1) * LINE).min(end);
                    let line = self.line_mut(idx);
                    for b in a..stop {
                        line.latest[(b % LINE) as usize] = value[(b - off) as usize];
                    }
                    line.last_store = seq;
                    line.last_pc = *pc;
                    if *nt {
                        line.pending_nt = Some(Snap {
                            data: line.latest,
                            seq,
                        });
                        self.pending.insert(idx);
                    }
                    self.refresh(idx);
                    a = stop;
                }
            }
            Event::Flush { line, kind } => {
                if line * LINE >= self.size {
                    return;
                }
                let l = self.line_mut(*line);
                let s = Snap {
                    data: l.latest,
                    seq,
                };
                if *kind == FlushKind::Clflush {
                    l.make_durable(s);
                } else {
                    l.pending_flush = Some(s);
                    self.pending.insert(*line);
                }
                self.refresh(*line);
            }
            Event::Fence(kind) => self.fence(*kind, seq),
            Event::OpStart(_) | Event::OpDone(_) => {}
        }
    }

    fn fence(&mut self, kind: FenceKind, seq: u64) {
        if kind == FenceKind::Wbinvd {
            let all: Vec<u64> = self.lines.keys().copied().collect();
            for idx in all {
                let l = self.line_mut(idx);
                l.pending_flush = None;
                l.pending_nt = None;
                let s = Snap {
                    data: l.latest,
                    seq,
                };
                l.make_durable(s);
                self.refresh(idx);
            }
            self.pending.clear();
            return;
        }
        let drains_nt = kind != FenceKind::Locked;
        let pending = std::mem::take(&mut self.pending);
        for idx in pending {
            let l = self.line_mut(idx);
            if let Some(s) = l.pending_flush.take() {
                l.make_durable(s);
            }
            if drains_nt {
                if let Some(s) = l.pending_nt.take() {
                    l.make_durable(s);
                }
            }
            let keep = l.pending_nt.is_some();
            if keep {
                self.pending.insert(idx);
            }
            self.refresh(idx);
        }
    }

    /// Lines whose crash content is undetermined (in-flight), by index.
    pub fn in_flight(&self) -> impl Iterator<Item = (u64, &LineState)> + '_ {
        self.undetermined
            .iter()
            .filter_map(|i| self.lines.get(i).map(|l| (*i, l)))
    }

    /// Number of in-flight lines.
    pub fn in_flight_count(&self) -> usize {
        self.undetermined.len()
    }

    /// Every touched line.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &LineState)> + '_ {
        self.lines.iter().map(|(i, l)| (*i, l))
    }

    /// One line, if touched.
    #[cfg(test)]
    pub fn get(&self, idx: u64) -> Option<&LineState> {
        self.lines.get(&idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(off: u64, byte: u8, nt: bool) -> Event {
        Event::Store {
            off,
            len: 8,
            value: [byte; 16],
            nt,
            pc: 0,
        }
    }

    #[test]
    fn clwb_then_fence_persists_the_flush_time_content() {
        let golden = vec![0u8; 4096];
        let mut m = LineModel::new(golden.as_slice(), 4096);
        m.apply(&store(64, 1, false));
        m.apply(&Event::Flush {
            line: 1,
            kind: FlushKind::Clwb,
        });
        m.apply(&store(72, 2, false));
        assert_eq!(m.in_flight_count(), 1);
        m.apply(&Event::Fence(FenceKind::Locked));
        let l = m.get(1).expect("line");
        assert_eq!(&l.durable.data[..8], &[1; 8]);
        assert_eq!(
            &l.durable.data[8..16],
            &[0; 8],
            "the store after clwb is not durable"
        );
        assert_eq!(l.in_flight(), Some(InFlight::Dirty));
    }

    #[test]
    fn nt_stores_wait_for_sfence_not_for_locked_ops() {
        let golden = vec![0u8; 4096];
        let mut m = LineModel::new(golden.as_slice(), 4096);
        m.apply(&store(0, 5, true));
        m.apply(&Event::Fence(FenceKind::Locked));
        assert_eq!(
            m.get(0).expect("line").in_flight(),
            Some(InFlight::NonTemporal)
        );
        m.apply(&Event::Fence(FenceKind::Sfence));
        assert_eq!(m.get(0).expect("line").in_flight(), None);
        assert_eq!(m.in_flight_count(), 0);
    }

    #[test]
    fn unflushed_stores_stay_in_flight_across_fences() {
        let golden = vec![7u8; 4096];
        let mut m = LineModel::new(golden.as_slice(), 4096);
        m.apply(&store(200, 1, false));
        m.apply(&Event::Fence(FenceKind::Sfence));
        let (idx, l) = m.in_flight().next().expect("in flight");
        assert_eq!(idx, 3);
        assert_eq!(l.durable.data, [7u8; 64]);
        assert_eq!(l.persisted_alternative()[8..16], [1u8; 8]);
    }

    #[test]
    fn clflush_is_durable_at_once_and_wbinvd_persists_everything() {
        let golden = vec![0u8; 4096];
        let mut m = LineModel::new(golden.as_slice(), 4096);
        m.apply(&store(0, 1, false));
        m.apply(&Event::Flush {
            line: 0,
            kind: FlushKind::Clflush,
        });
        assert_eq!(m.in_flight_count(), 0);
        m.apply(&store(128, 2, false));
        m.apply(&Event::Fence(FenceKind::Wbinvd));
        assert_eq!(m.in_flight_count(), 0);
        assert_eq!(m.get(2).expect("line").durable.data[0], 2);
    }

    #[test]
    fn stores_across_a_line_boundary_touch_both_lines() {
        let golden = vec![0u8; 4096];
        let mut m = LineModel::new(golden.as_slice(), 4096);
        m.apply(&Event::Store {
            off: 60,
            len: 8,
            value: [9; 16],
            nt: false,
            pc: 0,
        });
        assert_eq!(m.in_flight_count(), 2);
        assert_eq!(m.get(0).expect("l0").latest[60..], [9; 4]);
        assert_eq!(m.get(1).expect("l1").latest[..4], [9; 4]);
    }
}
