//! Where to cut the power in a traced run (pure): which trace positions become crash
//! states, and which [`CrashPoint`] (op context, from the markers) each one falls in.
//!
//! Every op-done marker of a durability op is a cut (the moment the op has returned: what it
//! promised must be durable), as are the last fence inside it and the first fence after it;
//! then a seeded sample of the other fences and op-done markers. A cut before the first
//! marker (boot, mount) is never taken: no op has promised anything yet.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use workloads::oracle::CrashPoint;

use super::trace::Event;

/// Why a position was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutReason {
    /// A durability op just returned (its op-done marker).
    DurabilityOpDone,
    /// The last fence inside a durability op.
    LastFenceInDurabilityOp,
    /// The first fence after a durability op returned.
    FirstFenceAfterDurabilityOp,
    /// Another fence inside a durability op.
    FenceInDurabilityOp,
    /// Seeded sample of the other fences and op-done markers.
    Sampled,
}

impl CutReason {
    /// Cuts that are always taken (within the per-run bound).
    pub fn mandatory(self) -> bool {
        matches!(
            self,
            CutReason::DurabilityOpDone
                | CutReason::LastFenceInDurabilityOp
                | CutReason::FirstFenceAfterDurabilityOp
        )
    }
}

/// Where in its op context a cut sits, in terms another run of the same workload can find
/// again (trace positions differ from run to run; the op markers and the fences inside an
/// op do not, for a deterministic kernel path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutAt {
    /// The op-done marker of an `after` point: the op has just returned.
    OpDone,
    /// The n-th fence (from 0) since the op context began (op start for `inside`, op done
    /// for `after`).
    Fence(u32),
}

impl std::fmt::Display for CutAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutAt::OpDone => f.write_str("at its return"),
            CutAt::Fence(n) => write!(f, "at fence #{n}"),
        }
    }
}

/// A power cut right after trace event number `seq` (events are numbered from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// Trace position.
    pub seq: u64,
    /// The op context.
    pub point: CrashPoint,
    /// Where in the op context.
    pub at: CutAt,
    /// Why it was chosen.
    pub reason: CutReason,
}

/// Op context of the trace: which op each position falls in.
#[derive(Debug, Clone, Default)]
pub struct OpTimeline {
    /// (seq, point that starts there), in order.
    marks: Vec<(u64, CrashPoint)>,
}

impl OpTimeline {
    /// The crash point of a cut at `seq`, `None` before the first marker.
    pub fn point_at(&self, seq: u64) -> Option<CrashPoint> {
        let i = self.marks.partition_point(|(s, _)| *s <= seq);
        i.checked_sub(1).map(|i| self.marks[i].1)
    }
}

/// The cut plan of one trace.
#[derive(Debug, Clone, Default)]
pub struct CutPlan {
    /// Chosen cuts, in trace order.
    pub cuts: Vec<Cut>,
    /// Op context of every position.
    pub timeline: OpTimeline,
    /// Fences seen in op context.
    pub candidates: usize,
}

/// Plan the cuts of a trace. `is_durability(k)` says whether op `k` promises durability;
/// `sampled` other positions are drawn with `seed`.
pub fn plan_cuts(
    events: impl Iterator<Item = Event>,
    is_durability: impl Fn(usize) -> bool,
    sampled: usize,
    seed: u64,
) -> CutPlan {
    let mut timeline = OpTimeline::default();
    let mut chosen: Vec<Cut> = Vec::new();
    let mut others: Vec<Cut> = Vec::new();
    let mut ctx: Option<CrashPoint> = None;
    let mut last_fence_inside: Option<u64> = None;
    let mut first_after_pending = false;
    let mut candidates = 0;
    let mut fences_in_ctx = 0u32;
    for (i, ev) in events.enumerate() {
        let seq = i as u64 + 1;
        match ev {
            Event::OpStart(k) => {
                ctx = Some(CrashPoint::InsideOp(k));
                timeline.marks.push((seq, CrashPoint::InsideOp(k)));
                last_fence_inside = None;
                first_after_pending = false;
                fences_in_ctx = 0;
            }
            Event::OpDone(k) => {
                let point = CrashPoint::AfterOp(k);
                timeline.marks.push((seq, point));
                ctx = Some(point);
                fences_in_ctx = 0;
                let cut = Cut {
                    seq,
                    point,
                    at: CutAt::OpDone,
                    reason: CutReason::DurabilityOpDone,
                };
                if is_durability(k) {
                    if let Some(f) = last_fence_inside.take() {
                        // Retag the op's last fence.
                        if let Some(c) = chosen.iter_mut().find(|c| c.seq == f) {
                            c.reason = CutReason::LastFenceInDurabilityOp;
                        }
                    }
                    chosen.push(cut);
                    first_after_pending = true;
                } else {
                    others.push(Cut {
                        reason: CutReason::Sampled,
                        ..cut
                    });
                }
            }
            Event::Fence(_) => {
                let Some(point) = ctx else { continue };
                candidates += 1;
                let at = CutAt::Fence(fences_in_ctx);
                fences_in_ctx = fences_in_ctx.saturating_add(1);
                match point {
                    CrashPoint::InsideOp(k) if is_durability(k) => {
                        chosen.push(Cut {
                            seq,
                            point,
                            at,
                            reason: CutReason::FenceInDurabilityOp,
                        });
                        last_fence_inside = Some(seq);
                    }
                    CrashPoint::AfterOp(_) if first_after_pending => {
                        chosen.push(Cut {
                            seq,
                            point,
                            at,
                            reason: CutReason::FirstFenceAfterDurabilityOp,
                        });
                        first_after_pending = false;
                    }
                    _ => others.push(Cut {
                        seq,
                        point,
                        at,
                        reason: CutReason::Sampled,
                    }),
                }
            }
            Event::Store { .. } | Event::Flush { .. } => {}
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6361_6368_6563_7574);
    chosen.extend(others.choose_multiple(&mut rng, sampled.min(others.len())));
    chosen.sort_by_key(|c| c.seq);
    CutPlan {
        cuts: chosen,
        timeline,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache_model::format::FenceKind;

    fn fence() -> Event {
        Event::Fence(FenceKind::Sfence)
    }

    #[test]
    fn durability_ops_get_done_last_and_first_fence_cuts() {
        // op 0 (not durability), op 1 (fsync) with two fences inside, a fence after.
        let ev = vec![
            fence(),           // 1: before any op: never a cut
            Event::OpStart(0), // 2
            fence(),           // 3
            Event::OpDone(0),  // 4
            Event::OpStart(1), // 5
            fence(),           // 6
            fence(),           // 7
            Event::OpDone(1),  // 8
            fence(),           // 9
        ];
        let p = plan_cuts(ev.into_iter(), |k| k == 1, 0, 1);
        let got: Vec<(u64, CrashPoint, CutReason)> =
            p.cuts.iter().map(|c| (c.seq, c.point, c.reason)).collect();
        let at: Vec<CutAt> = p.cuts.iter().map(|c| c.at).collect();
        assert_eq!(
            got,
            vec![
                (6, CrashPoint::InsideOp(1), CutReason::FenceInDurabilityOp),
                (
                    7,
                    CrashPoint::InsideOp(1),
                    CutReason::LastFenceInDurabilityOp
                ),
                (8, CrashPoint::AfterOp(1), CutReason::DurabilityOpDone),
                (
                    9,
                    CrashPoint::AfterOp(1),
                    CutReason::FirstFenceAfterDurabilityOp
                ),
            ]
        );
        assert_eq!(
            at,
            vec![
                CutAt::Fence(0),
                CutAt::Fence(1),
                CutAt::OpDone,
                CutAt::Fence(0)
            ]
        );
        assert_eq!(p.timeline.point_at(1), None);
        assert_eq!(p.timeline.point_at(3), Some(CrashPoint::InsideOp(0)));
        assert_eq!(p.timeline.point_at(4), Some(CrashPoint::AfterOp(0)));
        assert_eq!(p.timeline.point_at(100), Some(CrashPoint::AfterOp(1)));
    }

    #[test]
    fn sampling_is_seeded_and_bounded() {
        let mut ev = Vec::new();
        for k in 0..20 {
            ev.push(Event::OpStart(k));
            ev.push(fence());
            ev.push(Event::OpDone(k));
        }
        let a = plan_cuts(ev.clone().into_iter(), |_| false, 5, 7);
        let b = plan_cuts(ev.into_iter(), |_| false, 5, 7);
        assert_eq!(a.cuts, b.cuts);
        assert_eq!(a.cuts.len(), 5);
        assert!(a.cuts.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
