//! Tests of the minimizer with fake predicates (no VMs).

use std::collections::HashSet;
use std::convert::Infallible;

use super::*;

fn create(f: &str) -> Op {
    Op::create(f)
}
fn fsync(f: &str) -> Op {
    Op::Fsync { file: f.into() }
}
fn pwrite(f: &str, off: u64, len: u64) -> Op {
    Op::Pwrite {
        file: f.into(),
        off,
        len,
        pattern: None,
    }
}

fn workload(ops: Vec<Op>) -> Workload {
    Workload {
        name: "seed-1".into(),
        seed: 1,
        profile: Some("smoke".into()),
        ops,
    }
}

/// A seed-1-like workload whose failure ("f0 missing after fsync") needs only create + fsync.
fn m5_like() -> Case {
    Case {
        workload: workload(vec![
            create("f0"),
            Op::Ftruncate {
                file: "f0".into(),
                size: 59872,
            },
            Op::Mmap {
                file: "f0".into(),
                len: 61440,
                sync: true,
            },
            pwrite("f0", 100, 3000),
            create("f1"),
            fsync("f0"),
            Op::fsync_root(),
            pwrite("f0", 0, 10),
        ]),
        point: CrashPoint::AfterOp(5),
    }
}

/// Fake "kernel": the failure shows when f0 is created before the crash op, which is an
/// fsync of f0.
fn missing_after_fsync(case: &Case) -> bool {
    let k = case.crash_op();
    case.workload.ops[k] == fsync("f0") && case.workload.ops[..k].contains(&create("f0"))
}

#[test]
fn ddmin_finds_a_single_culprit() {
    let items: Vec<u32> = (0..8).collect();
    let mut calls = 0;

    let min = ddmin(&items, &mut |s: &[u32]| -> Result<Probe, Infallible> {
        calls += 1;
        Ok(if s.contains(&5) {
            Probe::Reproduces
        } else {
            Probe::Passes
        })
    })
    .expect("infallible");

    assert_eq!(min, vec![5]);
    assert!(calls <= 10, "{calls} tests");
}

#[test]
fn ddmin_keeps_every_element_of_a_needed_pair() {
    let items: Vec<u32> = (0..10).collect();

    let min = ddmin(&items, &mut |s: &[u32]| -> Result<Probe, Infallible> {
        Ok(if s.contains(&2) && s.contains(&7) {
            Probe::Reproduces
        } else {
            Probe::Passes
        })
    })
    .expect("infallible");

    assert_eq!(min, vec![2, 7]);
}

#[test]
fn ddmin_stops_when_the_budget_is_spent() {
    let items: Vec<u32> = (0..16).collect();
    let mut calls = 0;

    let min = ddmin(&items, &mut |s: &[u32]| -> Result<Probe, Infallible> {
        calls += 1;
        if calls > 2 {
            return Ok(Probe::Exhausted);
        }
        Ok(if s.contains(&3) {
            Probe::Reproduces
        } else {
            Probe::Passes
        })
    })
    .expect("infallible");

    assert!(min.contains(&3));
    assert!(min.len() < 16 && min.len() > 1, "{min:?}");
}

#[test]
fn split_makes_n_nonempty_chunks_in_order() {
    let chunks = split(&[1, 2, 3, 4, 5], 3);

    assert_eq!(chunks, vec![vec![1], vec![2, 3], vec![4, 5]]);
    assert_eq!(split(&[1, 2], 5), vec![vec![1], vec![2]]);
}

#[test]
fn minimize_keeps_create_and_the_crash_op_and_skips_invalid_candidates() {
    let input = m5_like();
    let mut seen = HashSet::new();
    let mut runs = 0;

    let out = minimize(
        &input,
        40,
        &mut |c: &Case| -> Result<Option<bool>, Infallible> {
            runs += 1;
            assert!(validate(&c.workload).is_ok(), "invalid candidate was run");
            assert!(seen.insert(case_key(c)), "a case ran twice");
            Ok(Some(missing_after_fsync(c)))
        },
        &mut |_| {},
    )
    .expect("infallible");

    assert!(out.reproduced);
    assert_eq!(out.case.workload.ops, vec![create("f0"), fsync("f0")]);
    assert_eq!(out.case.point, CrashPoint::AfterOp(1));
    assert_eq!(
        (out.ops_before, out.ops_truncated, out.ops_after),
        (8, 6, 2)
    );
    assert_eq!(out.stats.runs, runs);
    assert!(out.stats.invalid > 0);
    assert!(!out.stats.exhausted);
    assert!(validate(&out.case.workload).is_ok());
}

#[test]
fn lengths_and_offsets_shrink_while_the_failure_holds() {
    let input = Case {
        workload: workload(vec![create("f0"), pwrite("f0", 13656, 1568), fsync("f0")]),
        point: CrashPoint::AfterOp(2),
    };

    let out = minimize(
        &input,
        40,
        &mut |c: &Case| -> Result<Option<bool>, Infallible> {
            // Fails while some pwrite of f0 writes at least 100 bytes.
            let big = |op: &Op| matches!(op, Op::Pwrite { len, .. } if *len >= 100);
            Ok(Some(c.workload.ops.iter().any(big)))
        },
        &mut |_| {},
    )
    .expect("infallible");

    let Op::Pwrite {
        off, len, pattern, ..
    } = &out.case.workload.ops[1]
    else {
        panic!("{:?}", out.case.workload.ops);
    };
    assert_eq!(*off, 0);
    assert!((100..200).contains(len), "len {len}");
    assert_eq!(*pattern, Some(2), "pattern id pinned to the original op's");
}

#[test]
fn the_crash_point_follows_its_op_and_stays_inside() {
    let input = Case {
        workload: workload(vec![
            create("f1"),
            create("f0"),
            pwrite("f1", 0, 64),
            fsync("f0"),
        ]),
        point: CrashPoint::InsideOp(3),
    };

    let out = minimize(
        &input,
        40,
        &mut |c: &Case| -> Result<Option<bool>, Infallible> { Ok(Some(missing_after_fsync(c))) },
        &mut |_| {},
    )
    .expect("infallible");

    assert_eq!(out.case.workload.ops, vec![create("f0"), fsync("f0")]);
    assert_eq!(out.case.point, CrashPoint::InsideOp(1));
    assert_eq!(out.case.label(), "inside op 1 (fsync)");
}

#[test]
fn a_spent_budget_returns_the_smallest_failing_case_so_far() {
    let input = m5_like();

    let out = minimize(
        &input,
        1,
        &mut |c: &Case| -> Result<Option<bool>, Infallible> { Ok(Some(missing_after_fsync(c))) },
        &mut |_| {},
    )
    .expect("infallible");

    assert!(out.reproduced);
    assert!(out.stats.exhausted);
    assert_eq!(out.stats.runs, 1);
    assert_eq!(out.case.workload.ops.len(), 6);
}

#[test]
fn a_failure_that_never_reproduces_is_reported_not_shrunk() {
    let input = m5_like();

    let out = minimize(
        &input,
        40,
        &mut |_: &Case| -> Result<Option<bool>, Infallible> { Ok(Some(false)) },
        &mut |_| {},
    )
    .expect("infallible");

    assert!(!out.reproduced);
    assert_eq!(out.stats.runs, 2, "truncated, then whole workload");
    assert_eq!(out.case, input);
}

#[test]
fn errors_of_the_test_stop_the_minimization() {
    let out = minimize(
        &m5_like(),
        40,
        &mut |_: &Case| -> Result<Option<bool>, String> { Err("VM died".into()) },
        &mut |_| {},
    );

    assert_eq!(out.err().as_deref(), Some("VM died"));
}

#[test]
fn pinned_patterns_keep_the_bytes_of_later_ops() {
    let w = workload(vec![create("f0"), create("f1"), pwrite("f0", 0, 16)]);
    let pinned = pin_patterns(&w);
    let case = Case {
        workload: pinned,
        point: CrashPoint::AfterOp(2),
    };

    let smaller = case.subset(&[0, 2]);

    assert_eq!(
        smaller.workload.ops[1].pattern_id(1),
        w.ops[2].pattern_id(2)
    );
}

#[test]
fn shrink_candidates_go_from_most_to_least_aggressive() {
    let c = shrink_candidates(&pwrite("f0", 13656, 1568));
    let shapes: Vec<(u64, u64)> = c
        .iter()
        .map(|op| match op {
            Op::Pwrite { off, len, .. } => (*off, *len),
            _ => (u64::MAX, 0),
        })
        .collect();

    assert_eq!(
        shapes,
        vec![(0, 1568), (12288, 1568), (13656, 8), (13656, 784)]
    );
    assert!(shrink_candidates(&fsync("f0")).is_empty());
    assert!(shrink_candidates(&pwrite("f0", 0, 8)).is_empty());
}

#[test]
fn answers_lost_to_infrastructure_errors_are_not_cached() {
    let case = m5_like();
    let mut calls = 0;
    let mut test = |_: &Case| -> Result<Option<bool>, Infallible> {
        calls += 1;
        Ok((calls > 1).then_some(true))
    };
    let mut prober = Prober {
        test: &mut test,
        progress: &mut |_| {},
        cache: HashMap::new(),
        max_runs: 5,
        stats: Stats::default(),
    };

    let first = prober.probe(&case, "first").expect("infallible");
    let second = prober.probe(&case, "again").expect("infallible");
    let third = prober.probe(&case, "cached").expect("infallible");

    assert_eq!(
        (first, second, third),
        (Probe::Passes, Probe::Reproduces, Probe::Reproduces)
    );
    assert_eq!((prober.stats.runs, prober.stats.cache_hits), (2, 1));
}
