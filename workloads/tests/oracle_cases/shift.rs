//! Collapse and insert range: the old layout, the new one and partly shifted ones with
//! holes are allowed until an fsync, fdatasync or sync; after it only the new layout is.

use workloads::oracle::{live_state, FsRules, Verdict};
use workloads::{FallocMode, Op};

use crate::common::*;

const PAGE: usize = 4096;

/// 8 pages of op 1's data, durable, then a collapse of pages 2 and 3 (op 3), then fsync.
fn collapsed() -> workloads::Workload {
    wl(vec![
        create("f0"),
        pwrite("f0", 0, 8 * PAGE as u64),
        fsync("f0"),
        falloc(
            "f0",
            FallocMode::CollapseRange,
            2 * PAGE as u64,
            2 * PAGE as u64,
        ),
        fsync("f0"),
    ])
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn collapse_before_fsync_allows_old_new_and_partly_shifted_layouts() {
    let w = collapsed();
    let e = after(&w, 3, &FsRules::ext4());
    let old = pat(1, 0, 8 * PAGE);
    let new = concat(&[pat(1, 0, 2 * PAGE), pat(1, 4 * PAGE as u64, 4 * PAGE)]);
    // Page 4 moved to page 2, page 5 not yet; its old place is a hole; size not yet cut.
    let partial = concat(&[
        pat(1, 0, 2 * PAGE),
        pat(1, 4 * PAGE as u64, PAGE),
        vec![0; PAGE],
        pat(1, 4 * PAGE as u64, 4 * PAGE),
    ]);
    let mut garbled = new.clone();
    garbled[2 * PAGE + 16] ^= 0xFF;

    let sizes = &e.files["f0"].states[0].sizes;
    assert!(sizes.contains(8 * PAGE as u64) && sizes.contains(6 * PAGE as u64));
    assert!(!sizes.contains(7 * PAGE as u64));
    assert_eq!(
        bytes_at(&e, "f0", 2 * PAGE as u64),
        set(&[0, old[2 * PAGE], old[4 * PAGE]])
    );
    // Below the range nothing moved: still exact.
    assert_eq!(bytes_at(&e, "f0", PAGE as u64), set(&[old[PAGE]]));
    for (what, data) in [("old", old), ("new", new), ("partial", partial)] {
        let r = e.check(&one("f0", data));
        assert_eq!(r.verdict, Verdict::Pass, "{what}: {:?}", r.findings);
    }
    assert_eq!(e.check(&one("f0", garbled)).verdict, Verdict::DataLoss);
}

#[test]
fn collapse_after_fsync_requires_the_new_layout() {
    let w = collapsed();
    let e = after(&w, 4, &FsRules::xfs());
    let old = pat(1, 0, 8 * PAGE);
    let new = concat(&[pat(1, 0, 2 * PAGE), pat(1, 4 * PAGE as u64, 4 * PAGE)]);

    assert_eq!(e.files["f0"].states[0].exact_content(), Some(new.clone()));
    assert_eq!(e.check(&one("f0", new)).verdict, Verdict::Pass);
    let r = e.check(&one("f0", old[..6 * PAGE].to_vec()));
    let old = old.clone();
    assert_eq!(r.verdict, Verdict::DataLoss);
    assert_eq!(
        r.findings[0].title(),
        "data-loss: f0 [8192..24576) after op 4 (fsync)"
    );
    let uncut = concat(&[
        pat(1, 0, 2 * PAGE),
        pat(1, 4 * PAGE as u64, 4 * PAGE),
        vec![0; 2 * PAGE],
    ]);
    assert_eq!(e.check(&one("f0", uncut)).verdict, Verdict::SizeLoss);
    assert_eq!(e.check(&one("f0", old)).verdict, Verdict::DataLoss);
}

#[test]
fn insert_before_fdatasync_allows_both_sizes_and_the_unshifted_tail() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 4 * PAGE as u64),
        fsync("f0"),
        falloc("f0", FallocMode::InsertRange, PAGE as u64, 2 * PAGE as u64),
        Op::Fdatasync { file: "f0".into() },
    ]);
    let old = pat(1, 0, 4 * PAGE);
    let new = concat(&[
        pat(1, 0, PAGE),
        vec![0; 2 * PAGE],
        pat(1, PAGE as u64, 3 * PAGE),
    ]);
    // The size grew first (xfs and ext4 do), nothing moved yet: the tail reads zeros.
    let grown_only = concat(&[old.clone(), vec![0; 2 * PAGE]]);

    let e = after(&w, 3, &FsRules::ext4());
    for (what, data) in [
        ("old", old.clone()),
        ("new", new.clone()),
        ("grown", grown_only),
    ] {
        let r = e.check(&one("f0", data));
        assert_eq!(r.verdict, Verdict::Pass, "{what}: {:?}", r.findings);
    }
    assert_eq!(
        bytes_at(&e, "f0", PAGE as u64 + 8),
        set(&[0, old[PAGE + 8]])
    );

    let synced = after(&w, 4, &FsRules::ext4());
    assert_eq!(
        synced.files["f0"].states[0].exact_content(),
        Some(new.clone())
    );
    assert_eq!(synced.check(&one("f0", old)).verdict, Verdict::DataLoss);
    let short = new[..4 * PAGE].to_vec();
    assert_eq!(synced.check(&one("f0", short)).verdict, Verdict::SizeLoss);
}

#[test]
fn a_write_after_an_undone_collapse_may_show_at_the_blocks_old_offset() {
    let mut ops = collapsed().ops;
    ops.pop();
    // Op 4 writes page 2 of the new layout: the block that the old layout has at page 4.
    ops.push(pwrite("f0", 2 * PAGE as u64, PAGE as u64));
    let w = wl(ops);
    let e = after(&w, 4, &FsRules::ext4());
    let mut old_layout = pat(1, 0, 8 * PAGE);
    old_layout[4 * PAGE..5 * PAGE].copy_from_slice(&pat(4, 2 * PAGE as u64, PAGE));

    let r = e.check(&one("f0", old_layout.clone()));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.findings);
    // Not at any other offset.
    let mut elsewhere = pat(1, 0, 8 * PAGE);
    elsewhere[5 * PAGE..6 * PAGE].copy_from_slice(&pat(4, 2 * PAGE as u64, PAGE));
    assert_eq!(e.check(&one("f0", elsewhere)).verdict, Verdict::DataLoss);
}

#[test]
fn msync_promises_nothing_a_pending_shift_moved_and_fsync_then_does() {
    let ops = vec![
        create("f0"),
        truncate("f0", 16 * PAGE as u64),
        mmap("f0", 16 * PAGE as u64, false),
        store("f0", 0, 16 * PAGE as u64),
        falloc(
            "f0",
            FallocMode::CollapseRange,
            8 * PAGE as u64,
            PAGE as u64,
        ),
        Op::Msync {
            file: "f0".into(),
            off: 0,
            len: 15 * PAGE as u64,
        },
        fsync("f0"),
    ];
    let w = wl(ops);
    let stored = pat(3, 0, 16 * PAGE);

    let e = after(&w, 5, &FsRules::ext4());
    assert_eq!(bytes_at(&e, "f0", 100), set(&[stored[100]]));
    let moved = 8 * PAGE + 100;
    assert_eq!(
        bytes_at(&e, "f0", moved as u64),
        set(&[0, stored[moved], stored[moved + PAGE]])
    );

    let synced = after(&w, 6, &FsRules::ext4());
    assert_eq!(
        bytes_at(&synced, "f0", moved as u64),
        set(&[stored[moved + PAGE]])
    );
}

#[test]
fn live_state_follows_collapse_and_insert() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 4 * PAGE as u64),
        falloc("f0", FallocMode::InsertRange, 0, PAGE as u64),
        falloc(
            "f0",
            FallocMode::CollapseRange,
            2 * PAGE as u64,
            PAGE as u64,
        ),
    ]);
    let want = concat(&[
        vec![0; PAGE],
        pat(1, 0, PAGE),
        pat(1, 2 * PAGE as u64, 2 * PAGE),
    ]);

    assert_eq!(live_state(&w, &all_ok(&w))["f0"], want);
}

#[test]
fn a_failed_shift_changes_nothing() {
    let w = collapsed();
    let mut outcomes = all_ok(&w);
    outcomes[3] = Some(workloads::OpOutcome::failed(95));
    let e = workloads::oracle::expectation(
        &w,
        &outcomes,
        workloads::oracle::CrashPoint::AfterOp(4),
        &FsRules::ext4(),
    );

    assert_eq!(
        e.files["f0"].states[0].exact_content(),
        Some(pat(1, 0, 8 * PAGE))
    );
}

#[test]
fn the_read_back_sources_of_a_collapse_are_the_pattern_where_written_and_moved() {
    use workloads::content::{decode, encode, Run, Source};
    let w = collapsed();
    let e = after(&w, 3, &FsRules::ext4());
    // Op 1 writes pattern 2; two pages (1,024 words) collapsed: what lay above them moved
    // 1,024 words down.
    let moved = Source {
        id: 2,
        shift: -1024,
    };
    let new = concat(&[pat(1, 0, 2 * PAGE), pat(1, 4 * PAGE as u64, 4 * PAGE)]);

    assert_eq!(e.sources(), vec![moved, Source::at_home(2)]);
    let runs = encode(&new, w.seed, &e.sources());
    assert_eq!(
        runs,
        vec![
            Run::Pattern {
                id: 2,
                shift: 0,
                len: 2 * PAGE as u64
            },
            Run::Pattern {
                id: 2,
                shift: -1024,
                len: 4 * PAGE as u64
            },
        ]
    );
    assert_eq!(decode(&runs, w.seed, 6 * PAGE as u64).unwrap(), new);
}
