//! Tests of crash-state construction, including a property test against a naive reference
//! model of what a power cut may leave in each line.

use super::*;
use crate::cache_model::cuts::{plan_cuts, CutReason};
use crate::cache_model::format::{self, FenceKind, FlushKind};
use crate::cache_model::trace::Event;
use proptest::prelude::*;

const SIZE: u64 = 8 * LINE;

fn trace_of(events: &[Event]) -> Trace {
    let mut b = Vec::new();
    format::put_header(&mut b, 0x1_0000_0000, SIZE, "test");
    let mut prev = 0;
    let mut last_pc = 0;
    for e in events {
        match e {
            Event::Store {
                off,
                len,
                value,
                nt,
                pc,
            } => {
                if *pc != last_pc {
                    format::put_pc(&mut b, &mut last_pc, *pc);
                }
                format::put_store(&mut b, &mut prev, *off, &value[..usize::from(*len)], *nt);
            }
            Event::Flush { line, kind } => format::put_flush(&mut b, *kind, line * LINE),
            Event::Fence(k) => format::put_fence(&mut b, *k),
            Event::OpStart(k) => format::put_marker(&mut b, false, *k as u64),
            Event::OpDone(k) => format::put_marker(&mut b, true, *k as u64),
        }
    }
    format::put_end(&mut b, "{}");
    Trace::parse(b).expect("valid trace")
}

fn st(off: u64, byte: u8, nt: bool) -> Event {
    Event::Store {
        off,
        len: 8,
        value: [byte; 16],
        nt,
        pc: 0xffff_ffff_8100_0000 + off,
    }
}

fn bounds(max: usize) -> StateBounds {
    StateBounds {
        subsets_per_cut: 2,
        max_states: max,
        seed: 1,
    }
}

fn collect(golden: &[u8], t: &Trace, plan: &CutPlan, b: &StateBounds) -> Vec<CrashState> {
    let mut out = Vec::new();
    build_states(golden, t, plan, b, |s| {
        out.push(s);
        Ok::<(), ()>(())
    })
    .expect("no sink error");
    out
}

fn image(golden: &[u8], s: &CrashState) -> Vec<u8> {
    let mut img = golden.to_vec();
    for (i, d) in &s.patches {
        let o = (*i * LINE) as usize;
        img[o..o + LINE as usize].copy_from_slice(d);
    }
    img
}

#[test]
fn missing_flush_loses_the_line_in_the_worst_case_only() {
    let golden = vec![0u8; SIZE as usize];
    // op 0 (fsync): line 1 flushed + fenced; line 2 stored but never flushed.
    let ev = vec![
        Event::OpStart(0),
        st(64, 1, false),
        st(128, 2, false),
        Event::Flush {
            line: 1,
            kind: FlushKind::Clwb,
        },
        Event::Fence(FenceKind::Sfence),
        Event::OpDone(0),
    ];
    let t = trace_of(&ev);
    let plan = plan_cuts(t.events(), |_| true, 0, 1);
    let states = collect(&golden, &t, &plan, &bounds(100));
    let done: Vec<&CrashState> = states
        .iter()
        .filter(|s| s.cut.reason == CutReason::DurabilityOpDone)
        .collect();
    let worst = done
        .iter()
        .find(|s| s.variant == Variant::Worst)
        .expect("worst");
    let best = done
        .iter()
        .find(|s| s.variant == Variant::Best)
        .expect("best");
    assert_eq!(worst.point(), CrashPoint::AfterOp(0));
    assert_eq!(image(&golden, worst)[64], 1, "flushed and fenced: durable");
    assert_eq!(image(&golden, worst)[128], 0, "never flushed: lost");
    assert_eq!(worst.lost.len(), 1);
    assert_eq!(worst.lost[0].off, 128);
    assert_eq!(worst.lost[0].why, InFlight::Dirty);
    assert_eq!(worst.lost[0].last_store, 3);
    assert_eq!(worst.lost[0].stored_in, Some(CrashPoint::InsideOp(0)));
    assert_eq!(image(&golden, best)[128], 2);
    assert!(best.lost.is_empty());
}

#[test]
fn states_are_deduplicated_and_bounded() {
    let golden = vec![0u8; SIZE as usize];
    let mut ev = Vec::new();
    for k in 0..10 {
        ev.push(Event::OpStart(k));
        ev.push(st(64 * (k as u64 % 8), k as u8 + 1, false));
        ev.push(Event::Fence(FenceKind::Sfence));
        ev.push(Event::OpDone(k));
    }
    let t = trace_of(&ev);
    let plan = plan_cuts(t.events(), |_| true, 3, 1);
    let states = collect(&golden, &t, &plan, &bounds(7));
    assert!(states.len() <= 7);
    let mut keys: Vec<_> = states
        .iter()
        .map(|s| (format!("{:?}", s.point()), s.hash))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

/// Reference model: for line `l` at cut `cut`, every content the line held at positions
/// `0..=cut` (index 0 = golden), and the oldest position a crash may leave it at.
fn reference(golden: &[u8], ev: &[Event], l: u64, cut: usize) -> (Vec<LineData>, usize) {
    let mut cur: LineData = golden.line(l * LINE);
    let mut history = vec![cur];
    let mut guaranteed = 0usize;
    let mut pending_flush: Option<usize> = None;
    let mut pending_nt: Option<usize> = None;
    for (i, e) in ev.iter().take(cut).enumerate() {
        match e {
            Event::Store {
                off,
                len,
                value,
                nt,
                ..
            } => {
                for b in 0..u64::from(*len) {
                    let a = off + b;
                    if a / LINE == l {
                        cur[(a % LINE) as usize] = value[b as usize];
                        if *nt {
                            pending_nt = Some(i + 1);
                        }
                    }
                }
            }
            Event::Flush { line, kind } if *line == l => {
                if *kind == FlushKind::Clflush {
                    guaranteed = guaranteed.max(i + 1);
                } else {
                    pending_flush = Some(i + 1);
                }
            }
            Event::Fence(k) => {
                if *k == FenceKind::Wbinvd {
                    guaranteed = guaranteed.max(i + 1);
                }
                if let Some(p) = pending_flush.take() {
                    guaranteed = guaranteed.max(p);
                }
                if *k != FenceKind::Locked {
                    if let Some(p) = pending_nt.take() {
                        guaranteed = guaranteed.max(p);
                    }
                }
            }
            _ => {}
        }
        history.push(cur);
    }
    (history, guaranteed)
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..SIZE - 8, any::<u8>(), any::<bool>()).prop_map(|(o, b, nt)| st(o, b, nt)),
        2 => (0..8u64, 0..3u8).prop_map(|(line, k)| Event::Flush {
            line,
            kind: FlushKind::from_code(k).expect("kind"),
        }),
        2 => (0..4u8).prop_map(|k| Event::Fence(FenceKind::from_code(k).expect("kind"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every state leaves every line at a content it really had, never older than what the
    /// flushes and fences guaranteed; the worst case is exactly the guaranteed content.
    #[test]
    fn states_only_hold_reachable_line_contents(
        body in proptest::collection::vec(event(), 1..40),
        golden_byte in any::<u8>(),
    ) {
        let golden = vec![golden_byte; SIZE as usize];
        let mut ev = vec![Event::OpStart(0)];
        ev.extend(body);
        ev.push(Event::OpDone(0));
        let t = trace_of(&ev);
        let plan = plan_cuts(t.events(), |_| true, 100, 3);
        let states = collect(&golden, &t, &plan, &bounds(1000));
        prop_assert!(!states.is_empty());
        for s in &states {
            let img = image(&golden, s);
            for l in 0..SIZE / LINE {
                let (history, guaranteed) = reference(&golden, &ev, l, s.cut.seq as usize);
                let got: LineData = img.as_slice().line(l * LINE);
                let ok_from = history[guaranteed..].contains(&got);
                prop_assert!(ok_from, "line {} at cut {} ({}) holds content it never had after its guaranteed point {}", l, s.cut.seq, s.variant, guaranteed);
                if s.variant == Variant::Worst {
                    prop_assert_eq!(got, history[guaranteed], "worst case of line {} at cut {}", l, s.cut.seq);
                }
                if s.variant == Variant::Best {
                    // Best case: nothing of the line is lost.
                    prop_assert!(s.lost.iter().all(|x| x.off != l * LINE));
                }
            }
        }
    }
}

#[test]
fn a_tight_bound_keeps_the_worst_case_at_every_durability_return() {
    let golden = vec![0u8; SIZE as usize];
    let mut ev = Vec::new();
    for k in 0..6 {
        ev.push(Event::OpStart(k));
        ev.push(st(64 * k as u64, 1, false));
        ev.push(Event::Fence(FenceKind::Sfence));
        ev.push(Event::Fence(FenceKind::Sfence));
        ev.push(Event::OpDone(k));
        ev.push(Event::Fence(FenceKind::Mfence));
    }
    let t = trace_of(&ev);
    let plan = plan_cuts(t.events(), |_| true, 0, 1);
    let states = collect(&golden, &t, &plan, &bounds(6));
    assert_eq!(states.len(), 6);
    assert!(states
        .iter()
        .all(|s| s.variant == Variant::Worst && s.cut.reason == CutReason::DurabilityOpDone));
}
