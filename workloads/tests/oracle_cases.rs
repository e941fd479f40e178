//! Hand-computed oracle cases, one or more per op kind: what must be durable, what may be
//! lost, and what the checker reports.

use std::collections::{BTreeMap, BTreeSet};

use workloads::oracle::{
    expectation, live_state, CrashPoint, Existence, Expectation, FsRules, Observed, Verdict,
};
use workloads::{FallocMode, Op, OpOutcome, Pattern, Workload};

const SEED: u64 = 42;

fn wl(ops: Vec<Op>) -> Workload {
    Workload {
        name: "case".into(),
        seed: SEED,
        profile: None,
        ops,
    }
}

/// Every op succeeded (pwrite wrote its whole length).
fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| match op {
            Op::Pwrite { len, .. } => Some(OpOutcome::ok(*len as i64)),
            _ => Some(OpOutcome::ok(0)),
        })
        .collect()
}

fn after(w: &Workload, k: usize, rules: &FsRules) -> Expectation {
    expectation(w, &all_ok(w), CrashPoint::AfterOp(k), rules)
}

/// Pattern bytes op `k` writes at `[off, off + len)`.
fn pat(k: usize, off: u64, len: usize) -> Vec<u8> {
    Pattern::new(SEED, k as u32 + 1).bytes(off, len)
}

fn one(name: &str, data: Vec<u8>) -> BTreeMap<String, Observed> {
    BTreeMap::from([(name.to_string(), Observed::present(data))])
}

fn bytes_at(e: &Expectation, file: &str, off: u64) -> BTreeSet<u8> {
    let states = &e.files[file].states;
    states.iter().flat_map(|s| s.allowed_bytes(off)).collect()
}

fn set(v: &[u8]) -> BTreeSet<u8> {
    v.iter().copied().collect()
}

fn create(f: &str) -> Op {
    Op::Create { file: f.into() }
}
fn pwrite(f: &str, off: u64, len: u64) -> Op {
    Op::Pwrite {
        file: f.into(),
        off,
        len,
        pattern: None,
    }
}
fn store(f: &str, off: u64, len: u64) -> Op {
    Op::MmapStore {
        file: f.into(),
        off,
        len,
        pattern: None,
    }
}
fn mmap(f: &str, len: u64, sync: bool) -> Op {
    Op::Mmap {
        file: f.into(),
        len,
        sync,
    }
}
fn fsync(f: &str) -> Op {
    Op::Fsync { file: f.into() }
}
fn truncate(f: &str, size: u64) -> Op {
    Op::Ftruncate {
        file: f.into(),
        size,
    }
}
fn falloc(f: &str, mode: FallocMode, off: u64, len: u64) -> Op {
    Op::Fallocate {
        file: f.into(),
        mode,
        off,
        len,
    }
}

#[test]
fn fsync_makes_pwrite_data_and_size_exact_on_ext4() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);

    let e = after(&w, 2, &FsRules::ext4());

    let f0 = &e.files["f0"];
    assert_eq!(f0.existence, Existence::MustExist);
    assert_eq!(f0.states.len(), 1);
    assert_eq!(f0.states[0].exact_content(), Some(pat(1, 0, 100)));
    assert_eq!(e.check(&one("f0", pat(1, 0, 100))).verdict, Verdict::Pass);
}

#[test]
fn lost_fsynced_word_is_data_loss_with_a_precise_finding() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);
    let e = after(&w, 2, &FsRules::ext4());
    let mut data = pat(1, 0, 100);
    data[8..16].fill(0);

    let r = e.check(&one("f0", data));

    assert_eq!(r.verdict, Verdict::DataLoss);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(f.title(), "data-loss: f0 [8..16) after op 2 (fsync)");
    assert_eq!((f.start, f.end), (8, 16));
    assert_eq!(f.expected.len(), 1);
    assert_eq!(f.expected[0].op, Some(1));
    assert_eq!(f.expected[0].bytes, pat(1, 8, 8));
    assert_eq!(f.found, vec![0; 8]);
    assert_eq!(f.promised_by, Some(2));
}

#[test]
fn short_file_after_fsync_is_size_loss_and_absent_file_is_missing() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);
    let e = after(&w, 2, &FsRules::ext4());

    let short = e.check(&one("f0", pat(1, 0, 96)));
    let absent = e.check(&BTreeMap::new());

    assert_eq!(short.verdict, Verdict::SizeLoss);
    assert_eq!(
        short.findings[0].title(),
        "size-loss: f0 size 96, allowed {100} after op 2 (fsync)"
    );
    assert_eq!(absent.verdict, Verdict::MissingFile);
    assert_eq!(
        absent.findings[0].title(),
        "missing-file: f0 after op 2 (fsync)"
    );
}

#[test]
fn generic_rules_need_fsync_dir_for_a_new_name() {
    let mut w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);
    let before = after(&w, 2, &FsRules::generic());
    w.ops.push(Op::FsyncDir);
    let after_dir = after(&w, 3, &FsRules::generic());

    assert_eq!(before.files["f0"].existence, Existence::Either);
    assert_eq!(before.check(&BTreeMap::new()).verdict, Verdict::Pass);
    assert_eq!(after_dir.files["f0"].existence, Existence::MustExist);
    assert_eq!(
        after_dir.check(&BTreeMap::new()).verdict,
        Verdict::MissingFile
    );
}

#[test]
fn fdatasync_follows_its_own_name_rule() {
    let w = wl(vec![create("f0"), Op::Fdatasync { file: "f0".into() }]);
    let mut rules = FsRules::ext4();
    rules.fdatasync_makes_new_name_durable = false;

    assert_eq!(
        after(&w, 1, &FsRules::ext4()).files["f0"].existence,
        Existence::MustExist
    );
    assert_eq!(
        after(&w, 1, &rules).files["f0"].existence,
        Existence::Either
    );
}

#[test]
fn unsynced_pwrite_may_be_lost_per_word_but_never_garbled() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 64)]);
    let e = after(&w, 1, &FsRules::ext4());
    let mut half = pat(1, 0, 64);
    half[32..].fill(0);
    let mut garbled = pat(1, 0, 64);
    garbled[16..24].fill(0xFF);

    assert_eq!(bytes_at(&e, "f0", 0), set(&[0, pat(1, 0, 1)[0]]));
    assert_eq!(e.check(&one("f0", half)).verdict, Verdict::Pass);
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    assert_eq!(e.check(&one("f0", garbled)).verdict, Verdict::DataLoss);
    assert_eq!(
        e.check(&one("f0", pat(1, 0, 50))).verdict,
        Verdict::SizeLoss
    );
}

#[test]
fn pwrite_past_eof_then_fdatasync_leaves_a_zero_hole() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 4096),
        pwrite("f0", 12288, 5003),
        Op::Fdatasync { file: "f0".into() },
    ]);
    let mut want = pat(1, 0, 4096);
    want.extend(vec![0; 8192]);
    want.extend(pat(2, 12288, 5003));

    let e = after(&w, 3, &FsRules::xfs());

    assert_eq!(e.files["f0"].states[0].exact_content(), Some(want.clone()));
    assert_eq!(live_state(&w, &all_ok(&w))["f0"], want);
}

#[test]
fn short_and_failed_pwrites_write_only_what_they_report() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 100),
        pwrite("f0", 200, 8),
        fsync("f0"),
    ]);
    let outcomes = vec![
        Some(OpOutcome::ok(0)),
        Some(OpOutcome::ok(10)),
        Some(OpOutcome::failed(5)),
        Some(OpOutcome::ok(0)),
    ];

    let e = expectation(&w, &outcomes, CrashPoint::AfterOp(3), &FsRules::ext4());

    assert_eq!(e.files["f0"].states[0].exact_content(), Some(pat(1, 0, 10)));
    assert_eq!(live_state(&w, &outcomes)["f0"], pat(1, 0, 10));
}

#[test]
fn msync_of_a_sub_range_rounds_the_start_down_to_a_page() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 16384),
        fsync("f0"),
        mmap("f0", 16384, false),
        store("f0", 0, 16384),
        Op::Msync {
            file: "f0".into(),
            off: 4200,
            len: 5800,
        },
    ]);
    let p = |off| pat(4, off, 1)[0];

    let e = after(&w, 5, &FsRules::ext4());

    assert_eq!(bytes_at(&e, "f0", 4095), set(&[0, p(4095)]));
    assert_eq!(bytes_at(&e, "f0", 4096), set(&[p(4096)]));
    assert_eq!(bytes_at(&e, "f0", 9999), set(&[p(9999)]));
    assert_eq!(bytes_at(&e, "f0", 10000), set(&[0, p(10000)]));
    assert_eq!(e.files["f0"].states[0].sizes.single(), Some(16384));
}

#[test]
fn msync_makes_the_size_cover_the_synced_range() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 8192),
        mmap("f0", 8192, false),
        store("f0", 0, 8192),
        Op::Msync {
            file: "f0".into(),
            off: 0,
            len: 4096,
        },
    ]);

    let e = after(&w, 4, &FsRules::ext4());

    let sizes = &e.files["f0"].states[0].sizes;
    assert!(!sizes.contains(0) && sizes.contains(8192));
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::SizeLoss);
}

#[test]
fn truncate_down_while_mapped_then_store_below_and_fsync() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 65536),
        mmap("f0", 65536, false),
        store("f0", 0, 65536),
        truncate("f0", 16384),
        store("f0", 8192, 8192),
        fsync("f0"),
    ]);
    let before = after(&w, 5, &FsRules::ext4());
    let synced = after(&w, 6, &FsRules::ext4());
    let mut want = pat(3, 0, 8192);
    want.extend(pat(5, 8192, 8192));

    let sizes = &before.files["f0"].states[0].sizes;
    assert!(sizes.contains(0) && sizes.contains(16384) && sizes.contains(65536));
    assert_eq!(
        bytes_at(&before, "f0", 20000),
        set(&[0, pat(3, 20000, 1)[0]])
    );
    assert_eq!(
        bytes_at(&before, "f0", 9000),
        set(&[0, pat(3, 9000, 1)[0], pat(5, 9000, 1)[0]])
    );
    assert_eq!(synced.files["f0"].states[0].exact_content(), Some(want));
}

#[test]
fn truncate_up_after_fsync_exposes_only_zeros() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 8192),
        fsync("f0"),
        truncate("f0", 65536),
    ]);

    let e = after(&w, 3, &FsRules::ext4());

    let sizes = &e.files["f0"].states[0].sizes;
    assert!(sizes.contains(8192) && sizes.contains(65536) && !sizes.contains(0));
    assert_eq!(bytes_at(&e, "f0", 10000), set(&[0]));
    assert_eq!(bytes_at(&e, "f0", 100), set(&[pat(1, 100, 1)[0]]));
}

#[test]
fn punch_hole_over_dirty_mapped_pages_then_fsync() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 65536),
        mmap("f0", 65536, false),
        store("f0", 0, 65536),
        falloc("f0", FallocMode::PunchHole, 4096, 12288),
        fsync("f0"),
    ]);
    let before = after(&w, 4, &FsRules::ext4());
    let synced = after(&w, 5, &FsRules::ext4());
    let stale = pat(3, 0, 65536);

    assert_eq!(bytes_at(&before, "f0", 5000), set(&[0, stale[5000]]));
    assert_eq!(bytes_at(&synced, "f0", 5000), set(&[0]));
    assert_eq!(bytes_at(&synced, "f0", 20000), set(&[stale[20000]]));
    let r = synced.check(&one("f0", stale));
    assert_eq!(r.verdict, Verdict::DataLoss);
    assert_eq!(
        r.findings[0].title(),
        "data-loss: f0 [4096..16384) after op 5 (fsync)"
    );
    assert_eq!(r.findings[0].expected[0].op, Some(4));
    assert_eq!(r.findings[0].expected[0].bytes, vec![0; 512]);
}

#[test]
fn zero_range_zeroes_and_extends() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 32768),
        mmap("f0", 65536, false),
        store("f0", 0, 32768),
        falloc("f0", FallocMode::ZeroRange, 30000, 10000),
        Op::Fdatasync { file: "f0".into() },
    ]);
    let mut want = pat(3, 0, 30000);
    want.extend(vec![0; 10000]);

    let e = after(&w, 5, &FsRules::ext4());

    assert_eq!(e.files["f0"].states[0].exact_content(), Some(want));
}

#[test]
fn allocate_extends_the_size_and_keep_size_does_not() {
    let w = wl(vec![
        create("f0"),
        falloc("f0", FallocMode::KeepSize, 0, 8192),
        fsync("f0"),
        falloc("f0", FallocMode::Allocate, 0, 5000),
        fsync("f0"),
    ]);

    assert_eq!(
        after(&w, 2, &FsRules::ext4()).files["f0"].states[0].exact_content(),
        Some(vec![])
    );
    assert_eq!(
        after(&w, 4, &FsRules::ext4()).files["f0"].states[0].exact_content(),
        Some(vec![0; 5000])
    );
}

#[test]
fn map_sync_flush_makes_the_flushed_lines_durable() {
    let ops = |sync| {
        wl(vec![
            create("f0"),
            truncate("f0", 65536),
            fsync("f0"),
            mmap("f0", 65536, sync),
            store("f0", 0, 8192),
            Op::Flush {
                file: "f0".into(),
                off: 0,
                len: 4100,
            },
        ])
    };
    let p = |off| pat(4, off, 1)[0];

    let synced = after(&ops(true), 5, &FsRules::ext4());
    let plain = after(&ops(false), 5, &FsRules::ext4());

    assert_eq!(bytes_at(&synced, "f0", 0), set(&[p(0)]));
    assert_eq!(bytes_at(&synced, "f0", 4159), set(&[p(4159)]));
    assert_eq!(bytes_at(&synced, "f0", 4160), set(&[0, p(4160)]));
    assert_eq!(bytes_at(&plain, "f0", 0), set(&[0, p(0)]));
}

#[test]
fn map_sync_flush_does_not_promise_pwrite_data() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 8192),
        fsync("f0"),
        mmap("f0", 8192, true),
        pwrite("f0", 0, 64),
        Op::Flush {
            file: "f0".into(),
            off: 0,
            len: 64,
        },
    ]);

    let e = after(&w, 5, &FsRules::ext4());

    assert_eq!(bytes_at(&e, "f0", 0), set(&[0, pat(4, 0, 1)[0]]));
}

#[test]
fn rename_over_a_file_then_fsync_dir() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 8192),
        fsync("f0"),
        Op::FsyncDir,
        create("tmp"),
        pwrite("tmp", 0, 12000),
        fsync("tmp"),
        Op::Rename {
            from: "tmp".into(),
            to: "f0".into(),
        },
        Op::FsyncDir,
    ]);
    let renamed = after(&w, 7, &FsRules::ext4());
    let synced = after(&w, 8, &FsRules::ext4());
    let old = pat(1, 0, 8192);
    let new = pat(5, 0, 12000);

    // Before the directory fsync the target may show either file, the temp name may be gone.
    assert_eq!(renamed.files["f0"].existence, Existence::MustExist);
    assert_eq!(
        renamed.check(&one("f0", old.clone())).verdict,
        Verdict::Pass
    );
    assert_eq!(
        renamed.check(&one("f0", new.clone())).verdict,
        Verdict::Pass
    );
    assert_eq!(renamed.files["tmp"].existence, Existence::Either);
    // After it, only the new content under the new name.
    assert_eq!(synced.files["tmp"].existence, Existence::MustNotExist);
    assert_eq!(synced.check(&one("f0", new.clone())).verdict, Verdict::Pass);
    assert_eq!(synced.check(&one("f0", old)).verdict, Verdict::DataLoss);
    let both = BTreeMap::from([
        ("f0".to_string(), Observed::present(new.clone())),
        ("tmp".to_string(), Observed::present(new)),
    ]);
    let r = synced.check(&both);
    assert_eq!(r.verdict, Verdict::UnexpectedFile);
    assert_eq!(
        r.findings[0].title(),
        "unexpected-file: tmp after op 8 (fsync_dir)"
    );
}

#[test]
fn unlink_is_durable_only_after_fsync_dir() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 4096),
        fsync("f0"),
        Op::FsyncDir,
        Op::Unlink { file: "f0".into() },
        Op::FsyncDir,
    ]);

    assert_eq!(
        after(&w, 4, &FsRules::ext4()).files["f0"].existence,
        Existence::Either
    );
    assert_eq!(
        after(&w, 5, &FsRules::ext4()).files["f0"].existence,
        Existence::MustNotExist
    );
    assert!(!live_state(&w, &all_ok(&w)).contains_key("f0"));
}

#[test]
fn sync_makes_everything_durable_even_under_generic_rules() {
    let w = wl(vec![
        create("a"),
        pwrite("a", 0, 64),
        create("b"),
        pwrite("b", 8, 8),
        Op::Sync,
    ]);

    let e = after(&w, 4, &FsRules::generic());

    assert_eq!(e.files["a"].existence, Existence::MustExist);
    assert_eq!(e.files["a"].states[0].exact_content(), Some(pat(1, 0, 64)));
    let mut b = vec![0; 8];
    b.extend(pat(3, 8, 8));
    assert_eq!(e.files["b"].states[0].exact_content(), Some(b));
}

#[test]
fn a_crash_inside_fsync_promises_nothing() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);

    let e = expectation(&w, &all_ok(&w), CrashPoint::InsideOp(2), &FsRules::ext4());

    assert_eq!(e.crash_label(), "inside op 2 (fsync)");
    assert_eq!(e.files["f0"].existence, Existence::Either);
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
}

#[test]
fn a_crash_inside_pwrite_allows_any_size_in_between() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100)]);

    let e = expectation(&w, &all_ok(&w), CrashPoint::InsideOp(1), &FsRules::ext4());
    let failed = expectation(
        &w,
        &[Some(OpOutcome::ok(0)), Some(OpOutcome::failed(28))],
        CrashPoint::InsideOp(1),
        &FsRules::ext4(),
    );

    assert_eq!(e.check(&one("f0", pat(1, 0, 37))).verdict, Verdict::Pass);
    assert_eq!(
        failed.check(&one("f0", vec![0; 37])).verdict,
        Verdict::SizeLoss
    );
}

#[test]
fn an_unknown_outcome_taints_the_file() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);
    let outcomes = [Some(OpOutcome::ok(0)), None, Some(OpOutcome::ok(0))];

    let e = expectation(&w, &outcomes, CrashPoint::AfterOp(2), &FsRules::ext4());

    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    assert_eq!(e.check(&one("f0", pat(1, 0, 100))).verdict, Verdict::Pass);
}

#[test]
fn a_partly_covered_word_may_be_torn_until_durable() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 16),
        fsync("f0"),
        mmap("f0", 16, false),
        store("f0", 3, 2),
        fsync("f0"),
    ]);
    let mut torn = vec![0; 16];
    torn[3] = pat(4, 3, 1)[0];

    assert_eq!(
        after(&w, 4, &FsRules::ext4())
            .check(&one("f0", torn.clone()))
            .verdict,
        Verdict::Pass
    );
    assert_eq!(
        after(&w, 5, &FsRules::ext4())
            .check(&one("f0", torn))
            .verdict,
        Verdict::DataLoss
    );
}

#[test]
fn create_of_an_existing_name_truncates_it() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 64),
        fsync("f0"),
        create("f0"),
    ]);

    let e = after(&w, 3, &FsRules::ext4());

    let sizes = &e.files["f0"].states[0].sizes;
    assert!(sizes.contains(0) && sizes.contains(64));
    assert_eq!(bytes_at(&e, "f0", 0), set(&[0, pat(1, 0, 1)[0]]));
    assert_eq!(live_state(&w, &all_ok(&w))["f0"], Vec::<u8>::new());
}

#[test]
fn close_open_and_munmap_change_no_data() {
    let w = wl(vec![
        create("f0"),
        truncate("f0", 64),
        mmap("f0", 64, false),
        store("f0", 0, 64),
        Op::Munmap { file: "f0".into() },
        Op::Close { file: "f0".into() },
        Op::Open { file: "f0".into() },
        fsync("f0"),
    ]);

    let e = after(&w, 7, &FsRules::ext4());

    assert_eq!(e.files["f0"].states[0].exact_content(), Some(pat(3, 0, 64)));
}

#[test]
fn missing_file_outranks_data_loss_and_all_findings_are_kept() {
    let w = wl(vec![
        create("a"),
        pwrite("a", 0, 8),
        fsync("a"),
        create("b"),
        pwrite("b", 0, 8),
        fsync("b"),
    ]);
    let e = after(&w, 5, &FsRules::ext4());
    let observed = BTreeMap::from([("a".to_string(), Observed::present(vec![0; 8]))]);

    let r = e.check(&observed);

    assert_eq!(r.verdict, Verdict::MissingFile);
    let titles: Vec<String> = r.findings.iter().map(|f| f.title()).collect();
    assert_eq!(
        titles,
        [
            "data-loss: a [0..8) after op 5 (fsync)",
            "missing-file: b after op 5 (fsync)"
        ]
    );
}

#[test]
fn expectation_round_trips_through_json() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 3, 100),
        mmap("f0", 4096, true),
        store("f0", 0, 50),
    ]);
    let e = after(&w, 3, &FsRules::xfs());

    let json = serde_json::to_string(&e).expect("serialize");
    let back: Expectation = serde_json::from_str(&json).expect("deserialize");

    assert_eq!(back, e);
}
