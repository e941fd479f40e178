//! Data and size cases: pwrite, mmap stores, msync, MAP_SYNC flush, truncate, fallocate,
//! torn words.

use workloads::oracle::{expectation, live_state, CrashPoint, Existence, FsRules, Verdict};
use workloads::{FallocMode, Op, OpOutcome};

use crate::common::*;

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
