//! Crash-state construction (pure): from the golden image, a trace and a cut plan, the
//! crash images at each cut — worst case (no in-flight line persisted), best case (all of
//! them) and seeded subsets — deduplicated by content, bounded per run, streamed to a sink.
//!
//! A crash image is the golden image with every touched line set to its durable content,
//! and the chosen in-flight lines to their [`LineState::persisted_alternative`]. Each state
//! lists the in-flight lines it did *not* persist ("lost lines").

use std::collections::{BTreeMap, HashSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use workloads::oracle::CrashPoint;

use super::cuts::{Cut, CutAt, CutPlan, CutReason};
use super::format::LINE;
use super::lines::{Golden, InFlight, LineData, LineModel, LineState};
use super::trace::Trace;

/// Bounds on the states built per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBounds {
    /// Random subsets of the in-flight lines per cut (besides worst and best case).
    pub subsets_per_cut: usize,
    /// Most states per run.
    pub max_states: usize,
    /// Seed of the subset choice.
    pub seed: u64,
}

/// Which in-flight lines a state persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// None.
    Worst,
    /// All.
    Best,
    /// A seeded subset (the index of the draw at this cut).
    Subset(usize),
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Variant::Worst => f.write_str("worst"),
            Variant::Best => f.write_str("best"),
            Variant::Subset(i) => write!(f, "subset{i}"),
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    /// `worst`, `best`, `subset<i>` (as [`Variant`] prints).
    fn from_str(s: &str) -> Result<Variant, String> {
        match s {
            "worst" => Ok(Variant::Worst),
            "best" => Ok(Variant::Best),
            _ => s
                .strip_prefix("subset")
                .and_then(|i| i.parse().ok())
                .map(Variant::Subset)
                .ok_or_else(|| {
                    format!("`{s}` is not a crash-state variant (worst, best, subset<i>)")
                }),
        }
    }
}

/// The seed of the `i`-th subset drawn at the cut at trace position `seq` of a run seeded
/// with `seed`. Each subset has its own seed, so one can be drawn again on its own.
pub fn subset_seed(seed: u64, seq: u64, i: usize) -> u64 {
    (seed ^ seq.rotate_left(17)).wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What identifies a crash state of the cache model beyond its crash point, so another run
/// of the same workload can build the same state from its own trace (`failure.json`'s
/// `cache_cut`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheCut {
    /// Where in the op context the power was cut.
    pub at: CutAt,
    /// Why that position was a cut.
    pub reason: CutReason,
    /// Which in-flight lines the state persisted.
    pub variant: Variant,
    /// For a subset: the seed its lines were drawn with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_seed: Option<u64>,
    /// Trace position in the run that found it (informational: other runs differ).
    pub trace_event: u64,
}

/// Which crash states to build from a trace: those at `point` (and at `at`, if given) with
/// `variant` (a subset drawn with `subset_seed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutSelector {
    /// The op context.
    pub point: CrashPoint,
    /// Where in it; `None`: every cut in it.
    pub at: Option<CutAt>,
    /// Which in-flight lines are persisted.
    pub variant: Variant,
    /// The seed of a subset (else each cut's own).
    pub subset_seed: Option<u64>,
}

impl CutSelector {
    /// Does `cut` fall under this selector?
    pub fn matches(&self, cut: &Cut) -> bool {
        cut.point == self.point && self.at.is_none_or(|a| a == cut.at)
    }
}

/// An in-flight line the state did not persist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostLine {
    /// pmem offset of the line.
    pub off: u64,
    /// Why it was in flight.
    pub why: InFlight,
    /// Trace position of the last store to it.
    pub last_store: u64,
    /// Guest PC of that store (0: not recorded).
    pub pc: u64,
    /// Op context of that store.
    pub stored_in: Option<CrashPoint>,
}

/// One crash state.
#[derive(Debug, Clone)]
pub struct CrashState {
    /// Where the power was cut.
    pub cut: Cut,
    /// Which in-flight lines survive.
    pub variant: Variant,
    /// Lines that differ from the golden image: (line index, content), by index.
    pub patches: Vec<(u64, LineData)>,
    /// In-flight lines at the cut.
    pub in_flight: usize,
    /// In-flight lines this state persisted.
    pub persisted: usize,
    /// In-flight lines lost, by offset.
    pub lost: Vec<LostLine>,
    /// SHA-256 of the patches.
    pub hash: [u8; 32],
    /// For a subset: the seed its lines were drawn with.
    pub subset_seed: Option<u64>,
}

impl CrashState {
    /// The crash point (for the oracle).
    pub fn point(&self) -> CrashPoint {
        self.cut.point
    }

    /// What another run needs to build this state again.
    pub fn cache_cut(&self) -> CacheCut {
        CacheCut {
            at: self.cut.at,
            reason: self.cut.reason,
            variant: self.variant,
            subset_seed: self.subset_seed,
            trace_event: self.cut.seq,
        }
    }
}

/// What a build produced besides the states.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    /// States emitted.
    pub states: usize,
    /// States dropped as duplicates.
    pub duplicates: usize,
    /// Planned (cut, variant) pairs dropped by the per-run bound.
    pub over_bound: usize,
    /// Lines touched by the trace.
    pub lines_touched: usize,
    /// The latest content of every touched line, by index (for checking the trace against
    /// the final pmem file).
    pub final_lines: BTreeMap<u64, LineData>,
}

/// Planned (cut index, variant) pairs within the bound, by priority, each in trace order:
/// the worst case at every durability op's return (where a missing flush shows), the worst
/// case at the other mandatory cuts, the best cases of those, then the other cuts' worst
/// and best cases, then subsets.
/// `in_flight[i]` is the number of in-flight lines at cut `i`: without any, only the worst
/// case exists; with one, best case is its only subset.
fn plan_variants(
    plan: &CutPlan,
    in_flight: &[usize],
    b: &StateBounds,
) -> (Vec<Vec<Variant>>, usize) {
    let mut all: Vec<(u8, usize, Variant)> = Vec::new();
    for (i, c) in plan.cuts.iter().enumerate() {
        let n = in_flight.get(i).copied().unwrap_or(usize::MAX);
        let (worst, best, subset) = match c.reason {
            CutReason::DurabilityOpDone => (0, 2, 6),
            r if r.mandatory() => (1, 3, 6),
            _ => (4, 5, 7),
        };
        all.push((worst, i, Variant::Worst));
        if n > 0 {
            all.push((best, i, Variant::Best));
        }
        if n > 1 {
            for s in 0..b.subsets_per_cut {
                all.push((subset, i, Variant::Subset(s)));
            }
        }
    }
    all.sort();
    let over = all.len().saturating_sub(b.max_states);
    let mut per_cut = vec![Vec::new(); plan.cuts.len()];
    for (_, i, v) in all.into_iter().take(b.max_states) {
        per_cut[i].push(v);
    }
    (per_cut, over)
}

/// Which in-flight lines a variant persists (a subset is drawn with `subset_seed`).
fn choose(variant: Variant, inflight: &[u64], subset_seed: u64) -> HashSet<u64> {
    match variant {
        Variant::Worst => HashSet::new(),
        Variant::Best => inflight.iter().copied().collect(),
        Variant::Subset(i) => {
            let rng = &mut ChaCha8Rng::seed_from_u64(subset_seed);
            let n = inflight.len();
            // First draws: single lines and pairs (the small subsets that isolate one
            // line's loss); later draws: each line persisted with probability 1/2.
            if i < 2 && n > 1 {
                let k = (i + 1).min(n - 1);
                inflight.choose_multiple(rng, k).copied().collect()
            } else {
                inflight
                    .iter()
                    .copied()
                    .filter(|_| rng.gen_bool(0.5))
                    .collect()
            }
        }
    }
}

fn make_state<G: Golden + ?Sized>(
    model: &LineModel<'_, G>,
    plan: &CutPlan,
    cut: Cut,
    variant: Variant,
    persist: &HashSet<u64>,
) -> CrashState {
    let mut patches: Vec<(u64, LineData)> = model
        .lines()
        .filter_map(|(idx, l): (u64, &LineState)| {
            let data = if persist.contains(&idx) {
                l.persisted_alternative()
            } else {
                l.durable.data
            };
            (data != l.golden).then_some((idx, data))
        })
        .collect();
    patches.sort_unstable_by_key(|(i, _)| *i);
    let mut h = Sha256::new();
    for (i, d) in &patches {
        h.update(i.to_le_bytes());
        h.update(d);
    }
    let mut lost = Vec::new();
    let mut in_flight = 0;
    for (idx, l) in model.in_flight() {
        in_flight += 1;
        if !persist.contains(&idx) {
            if let Some(why) = l.in_flight() {
                lost.push(LostLine {
                    off: idx * LINE,
                    why,
                    last_store: l.last_store,
                    pc: l.last_pc,
                    stored_in: plan.timeline.point_at(l.last_store),
                });
            }
        }
    }
    CrashState {
        cut,
        variant,
        persisted: in_flight - lost.len(),
        in_flight,
        patches,
        lost,
        hash: h.finalize().into(),
        subset_seed: None,
    }
}

/// In-flight line counts at each cut (a first, cheap replay).
fn in_flight_at_cuts<G: Golden + ?Sized>(golden: &G, trace: &Trace, plan: &CutPlan) -> Vec<usize> {
    let mut model = LineModel::new(golden, trace.header.size);
    let mut out = Vec::with_capacity(plan.cuts.len());
    for ev in trace.events() {
        model.apply(&ev);
        while plan
            .cuts
            .get(out.len())
            .is_some_and(|c| c.seq == model.seq())
        {
            out.push(model.in_flight_count());
        }
    }
    out
}

/// Replay `trace` over `golden` and emit the planned crash states to `sink`, in trace
/// order, skipping duplicates (same crash point and content). Stops at the first sink error.
pub fn build_states<G: Golden + ?Sized, E>(
    golden: &G,
    trace: &Trace,
    plan: &CutPlan,
    bounds: &StateBounds,
    sink: impl FnMut(CrashState) -> Result<(), E>,
) -> Result<BuildSummary, E> {
    let (variants, over_bound) =
        plan_variants(plan, &in_flight_at_cuts(golden, trace, plan), bounds);
    let mut summary = replay(golden, trace, plan, &variants, bounds.seed, None, sink)?;
    summary.over_bound = over_bound;
    Ok(summary)
}

/// Replay `trace` over `golden` and emit the states `selector` names, at most `max` of
/// them, to `sink` (triage: the crash state of a failure, rebuilt from a new run's trace).
/// `plan` should hold every candidate cut (`plan_cuts` with an unbounded sample).
pub fn build_selected<G: Golden + ?Sized, E>(
    golden: &G,
    trace: &Trace,
    plan: &CutPlan,
    selector: &CutSelector,
    seed: u64,
    max: usize,
    sink: impl FnMut(CrashState) -> Result<(), E>,
) -> Result<BuildSummary, E> {
    let mut left = max;
    let variants: Vec<Vec<Variant>> = plan
        .cuts
        .iter()
        .map(|c| {
            if selector.matches(c) && left > 0 {
                left -= 1;
                vec![selector.variant]
            } else {
                Vec::new()
            }
        })
        .collect();
    replay(
        golden,
        trace,
        plan,
        &variants,
        seed,
        selector.subset_seed,
        sink,
    )
}

fn replay<G: Golden + ?Sized, E>(
    golden: &G,
    trace: &Trace,
    plan: &CutPlan,
    variants: &[Vec<Variant>],
    seed: u64,
    fixed_subset_seed: Option<u64>,
    mut sink: impl FnMut(CrashState) -> Result<(), E>,
) -> Result<BuildSummary, E> {
    let mut summary = BuildSummary::default();
    let mut model = LineModel::new(golden, trace.header.size);
    let mut seen: HashSet<(String, [u8; 32])> = HashSet::new();
    let mut next = 0;
    for ev in trace.events() {
        model.apply(&ev);
        while let Some(cut) = plan.cuts.get(next).filter(|c| c.seq == model.seq()) {
            let inflight: Vec<u64> = model.in_flight().map(|(i, _)| i).collect();
            for &v in variants.get(next).map_or(&[][..], Vec::as_slice) {
                if v != Variant::Worst && inflight.is_empty() {
                    continue;
                }
                let sseed = match v {
                    Variant::Subset(i) => {
                        Some(fixed_subset_seed.unwrap_or_else(|| subset_seed(seed, cut.seq, i)))
                    }
                    _ => None,
                };
                let persist = choose(v, &inflight, sseed.unwrap_or(0));
                let mut state = make_state(&model, plan, *cut, v, &persist);
                state.subset_seed = sseed;
                if !seen.insert((format!("{:?}", cut.point), state.hash)) {
                    summary.duplicates += 1;
                    continue;
                }
                summary.states += 1;
                sink(state)?;
            }
            next += 1;
        }
    }
    summary.lines_touched = model.lines().count();
    summary.final_lines = model.lines().map(|(i, l)| (i, l.latest)).collect();
    Ok(summary)
}

#[cfg(test)]
#[path = "states_tests.rs"]
mod tests;
