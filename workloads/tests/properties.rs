//! Property tests over generated workloads: the generator is deterministic and valid, and
//! the oracle never cries wolf (live states pass, allowed sets only grow, never-written
//! bytes stay zero) yet always catches loss of a durable word.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use workloads::generator::{generate, Profile};
use workloads::oracle::{
    expectation, live_nodes, live_state, CrashPoint, Existence, Expectation, FsRules, Observed,
    Verdict, WORD,
};
use workloads::spec::{parse_workload, validate};
use workloads::{Op, OpOutcome, Workload};

fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| match op {
            Op::Pwrite { len, .. } | Op::Pwritev2 { len, .. } | Op::UringWrite { len, .. } => {
                Some(OpOutcome::ok(*len as i64))
            }
            _ => Some(OpOutcome::ok(0)),
        })
        .collect()
}

fn prefix(w: &Workload, k: usize) -> Workload {
    Workload {
        ops: w.ops[..=k].to_vec(),
        ..w.clone()
    }
}

fn observed(live: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Observed> {
    live.into_iter()
        .map(|(n, d)| (n, Observed::present(d)))
        .collect()
}

/// The live file system after `w`: its regular files and every other name (directories,
/// symlinks, whiteouts).
fn live_observed(w: &Workload, outcomes: &[Option<OpOutcome>]) -> BTreeMap<String, Observed> {
    let mut out = observed(live_state(w, outcomes));
    for (n, (kind, target)) in live_nodes(w, outcomes) {
        out.entry(n).or_insert_with(|| Observed::node(kind, target));
    }
    out
}

fn all_rules() -> [FsRules; 3] {
    [FsRules::ext4(), FsRules::xfs(), FsRules::generic()]
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Smoke),
        Just(Profile::Default),
        Just(Profile::Deep)
    ]
}

fn titles(e: &Expectation, live: &BTreeMap<String, Observed>) -> Vec<String> {
    e.check(live).findings.iter().map(|f| f.title()).collect()
}

/// Byte ranges written by pwrite, pwritev2, uring_write or mmap_store among `ops`, in any file, and
/// everything from a collapse or insert range's offset on (data moves there).
fn written(ops: &[Op]) -> Vec<(u64, u64)> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Pwrite { off, len, .. }
            | Op::Pwritev2 { off, len, .. }
            | Op::UringWrite { off, len, .. }
            | Op::MmapStore { off, len, .. } => Some((*off, off + len)),
            Op::Fallocate { mode, off, .. } if mode.shifts() => Some((*off, u64::MAX)),
            _ => None,
        })
        .collect()
}

/// A crash at `AfterOp(j)`: the expectation, the live state, and the words of files that
/// must exist in exactly one state that are durable and non-zero in the live state.
struct FlipSetup {
    e: Expectation,
    live: BTreeMap<String, Vec<u8>>,
    words: Vec<(String, u64)>,
}

fn durable_nonzero_words(w: &Workload, j: usize) -> FlipSetup {
    let outcomes = all_ok(w);
    let e = expectation(w, &outcomes, CrashPoint::AfterOp(j), &FsRules::ext4());
    let live = live_state(&prefix(w, j), &outcomes);
    let mut found = Vec::new();
    for (name, fe) in &e.files {
        let (Some(data), [state]) = (live.get(name), fe.states.as_slice()) else {
            continue;
        };
        if fe.existence != Existence::MustExist {
            continue;
        }
        let words = data.len() as u64 / WORD;
        for span in state
            .words
            .iter()
            .filter(|s| s.is_durable() && s.start < words)
        {
            for wi in span.start..span.end.min(words) {
                let at = (wi * WORD) as usize;
                if data[at..at + WORD as usize].iter().any(|&b| b != 0) {
                    found.push((name.clone(), wi));
                }
            }
        }
    }
    FlipSetup {
        e,
        live,
        words: found,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn generation_is_deterministic_and_round_trips_through_yaml(seed in any::<u64>(), p in profile()) {
        let a = serde_yaml::to_string(&generate(seed, p)).expect("serialize");
        let b = serde_yaml::to_string(&generate(seed, p)).expect("serialize");

        prop_assert_eq!(&a, &b);
        let parsed = parse_workload(&a, "generated.yaml").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, generate(seed, p));
    }

    #[test]
    fn generated_workloads_validate_and_fit_their_profile(seed in any::<u64>(), p in profile()) {
        let w = generate(seed, p);

        prop_assert!(validate(&w).is_ok(), "{:?}", validate(&w));
        // The last step may overshoot the drawn count: a create emits up to five ops (create,
        // ftruncate, mmap, fsync, fsync_dir), and a workload without fsync, fdatasync or msync
        // gets up to two more (an open and an fsync).
        // Metadata ops (and the fsync that may follow one) and io_uring ops come on top of
        // the count; namespace episodes add at most four ops after any step.
        // An fsync right after a metadata op may be the metadata stream's or the main
        // stream's (a create episode's fsync after a side op): counted as either.
        let meta = |op: &Op| matches!(op, Op::Chmod { .. } | Op::Setxattr { .. } | Op::Removexattr { .. } | Op::Utimensat { .. });
        let side = |op: &Op| meta(op) || matches!(op, Op::UringWrite { .. } | Op::UringFsync { .. });
        let extra = w.ops.iter().filter(|op| side(op)).count();
        let either = w.ops.iter().enumerate().filter(|(j, op)| {
            matches!(op, Op::Fsync { .. }) && *j > 0 && meta(&w.ops[j - 1])
        }).count();
        let main = w.ops.len() - extra;
        prop_assert!(main >= *p.ops().start() && main - either <= 5 * (p.ops().end() + 4), "{} ops, {} of them metadata or io_uring, {} fsyncs after metadata", w.ops.len(), extra, either);
        prop_assert!(extra + either <= 2 * (main - either), "{} metadata ops for {} others", extra + either, main - either);
        let durable = w.ops.iter().any(|op| matches!(op, Op::Fsync { .. } | Op::Fdatasync { .. } | Op::Msync { .. }));
        prop_assert!(durable, "no fsync, fdatasync or msync");
        for op in &w.ops {
            let end = match op {
                Op::Pwrite { off, len, .. } | Op::MmapStore { off, len, .. } | Op::Flush { off, len, .. }
                | Op::Msync { off, len, .. } | Op::Fallocate { off, len, .. }
                | Op::Pwritev2 { off, len, .. } | Op::SyncFileRange { off, len, .. }
                | Op::MsyncAsync { off, len, .. } | Op::MsyncInvalidate { off, len, .. } => off + len,
                Op::Ftruncate { size, .. } => *size,
                Op::Mmap { len, .. } => *len,
                _ => 0,
            };
            prop_assert!(end <= p.max_file_bytes(), "{op:?}");
            // Main files `f0`..`f3`; episode paths `d1/n2` at most.
            prop_assert!(op.files().iter().all(|f| f.len() <= 5), "{op:?}");
        }
    }

    #[test]
    fn a_crash_right_after_fsync_allows_only_the_live_state(seed in any::<u64>(), p in profile(), pick in any::<Index>()) {
        let w = generate(seed, p);
        let syncs: Vec<usize> = (0..w.ops.len())
            .filter(|&k| matches!(w.ops[k], Op::Fsync { .. } | Op::Fdatasync { .. }))
            .collect();
        prop_assume!(!syncs.is_empty());
        let k = *pick.get(&syncs);
        let file = w.ops[k].files()[0].to_string();

        for rules in all_rules() {
            let e = expectation(&w, &all_ok(&w), CrashPoint::AfterOp(k), &rules);
            let live = live_state(&prefix(&w, k), &all_ok(&w));
            let state = e.files[&file].states.iter().find(|s| s.current).expect("open file has a current state");
            prop_assert_eq!(state.exact_content(), Some(live[&file].clone()), "{} after op {}", rules.name, k);
        }
    }

    #[test]
    fn bytes_never_written_are_never_allowed_to_change(seed in any::<u64>(), p in profile(), pick in any::<Index>(), inside in any::<bool>()) {
        let w = generate(seed, p);
        let k = pick.index(w.ops.len());
        let crash = if inside { CrashPoint::InsideOp(k) } else { CrashPoint::AfterOp(k) };
        let ranges = written(&w.ops[..=k]);
        let never = |off: u64| ranges.iter().all(|&(a, b)| off < a || off >= b);

        let e = expectation(&w, &all_ok(&w), crash, &FsRules::ext4());

        let limit = p.max_file_bytes();
        for (name, fe) in &e.files {
            for state in &fe.states {
                let probes = state.words.iter().filter(|s| s.start * WORD < limit).flat_map(|s| {
                    let last = (s.end.min(limit / WORD) - 1) * WORD;
                    (0..WORD).flat_map(move |i| [s.start * WORD + i, last + i])
                });
                for off in probes.chain((0..64).map(|i| (seed.rotate_left(i) ^ i as u64) % limit)) {
                    if never(off) {
                        let allowed = state.allowed_bytes(off);
                        prop_assert!(allowed.len() == 1 && allowed.contains(&0), "{} byte {}: {:?} at {:?}", name, off, allowed, crash);
                    }
                }
            }
        }
    }

    #[test]
    fn allowed_sets_only_grow_between_durable_points(seed in any::<u64>(), p in profile(), pick in any::<Index>()) {
        let w = generate(seed, p);
        // A pwrite through an O_DSYNC/O_SYNC descriptor is a durability point too.
        let points = w.durability_points();
        let ks: Vec<usize> = (0..w.ops.len() - 1).filter(|&k| !points[k + 1]).collect();
        prop_assume!(!ks.is_empty());
        let k = *pick.get(&ks);

        let a = expectation(&w, &all_ok(&w), CrashPoint::AfterOp(k), &FsRules::ext4());
        let b = expectation(&w, &all_ok(&w), CrashPoint::AfterOp(k + 1), &FsRules::ext4());

        for (name, ea) in &a.files {
            let eb = &b.files[name];
            prop_assert!(ea.existence == eb.existence || eb.existence == Existence::Either, "{}: {:?} -> {:?}", name, ea.existence, eb.existence);
            for sa in &ea.states {
                let sb = eb.states.iter().find(|s| s.inode == sa.inode).expect("candidate inodes only grow");
                for r in &sa.sizes.0 {
                    prop_assert!(sb.sizes.0.iter().any(|q| q.lo <= r.lo && r.hi <= q.hi), "{}: sizes {} -> {}", name, sa.sizes, sb.sizes);
                }
                for span in sa.words.iter().filter(|s| s.start * WORD < p.max_file_bytes()) {
                    for wi in [span.start, span.end.min(p.max_file_bytes() / WORD) - 1] {
                        let before = sa.allowed_versions(wi);
                        let after = sb.allowed_versions(wi);
                        prop_assert!(before.iter().all(|v| after.contains(v)), "{} word {}: {:?} -> {:?}", name, wi, before, after);
                    }
                }
            }
        }
    }

    #[test]
    fn the_live_state_always_passes(seed in any::<u64>(), p in profile(), pick in any::<Index>()) {
        let w = generate(seed, p);
        let n = w.ops.len();
        let k = pick.index(n);
        let final_live = live_observed(&w, &all_ok(&w));
        let mid_live = live_observed(&prefix(&w, k), &all_ok(&w));

        for rules in all_rules() {
            for (crash, live) in [
                (CrashPoint::AfterOp(n - 1), &final_live),
                (CrashPoint::InsideOp(n - 1), &final_live),
                (CrashPoint::AfterOp(k), &mid_live),
                (CrashPoint::InsideOp(k), &mid_live),
            ] {
                let e = expectation(&w, &all_ok(&w), crash, &rules);
                prop_assert_eq!(e.check(live).verdict, Verdict::Pass, "{} {:?}: {:?}", rules.name, crash, titles(&e, live));
            }
        }
    }

    #[test]
    fn a_durable_word_flipped_to_zero_is_always_data_loss(seed in any::<u64>(), p in profile(), pick_j in any::<Index>(), pick_w in any::<Index>()) {
        let w = generate(seed, p);
        let j = pick_j.index(w.ops.len());
        let FlipSetup { e, live, words } = durable_nonzero_words(&w, j);
        prop_assume!(!words.is_empty());
        let (name, wi) = pick_w.get(&words).clone();
        let mut obs = live_observed(&prefix(&w, j), &all_ok(&w));
        drop(live);
        let data = &mut obs.get_mut(&name).expect("live file").data;
        data[(wi * WORD) as usize..((wi + 1) * WORD) as usize].fill(0);

        let r = e.check(&obs);

        prop_assert_eq!(r.verdict, Verdict::DataLoss);
        prop_assert!(r.findings.iter().any(|f| f.file == name && f.start <= wi * WORD && wi * WORD < f.end), "{:?}", r.findings);
    }
}

/// The flip property above must not be vacuous: most generated workloads have a durable,
/// non-zero word of a file that must exist at their last op.
#[test]
fn most_workloads_have_durable_words_to_flip() {
    for p in Profile::ALL {
        let hits = (0..40u64)
            .filter(|&seed| {
                let w = generate(seed, p);
                !durable_nonzero_words(&w, w.ops.len() - 1).words.is_empty()
            })
            .count();
        assert!(
            hits >= 20,
            "{p}: only {hits}/40 workloads end with a durable non-zero word"
        );
    }
}
