//! The sync calls beyond fsync/fdatasync/msync/sync: syncfs (everything, like sync),
//! sync_file_range, msync(MS_ASYNC) and msync(MS_INVALIDATE) (nothing: false-alarm traps),
//! and pwritev2 with RWF_DSYNC / RWF_SYNC (each write its own promise).

use workloads::oracle::{expectation, CrashPoint, Existence, FsRules, Verdict};
use workloads::{Op, OpOutcome, RwfFlag};

use crate::common::*;

#[test]
fn syncfs_makes_every_file_and_name_durable_like_sync() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 100),
        create("f1"),
        pwrite("f1", 0, 40),
        Op::Syncfs { file: "f1".into() },
    ]);

    for rules in [FsRules::ext4(), FsRules::xfs(), FsRules::generic()] {
        let e = after(&w, 4, &rules);

        assert_eq!(e.files["f0"].existence, Existence::MustExist);
        assert_eq!(e.files["f1"].existence, Existence::MustExist);
        assert_eq!(
            e.files["f0"].states[0].exact_content(),
            Some(pat(1, 0, 100))
        );
        assert_eq!(e.files["f1"].states[0].exact_content(), Some(pat(3, 0, 40)));
        let mut lost = pat(1, 0, 100);
        lost[96..].fill(0);
        let mut obs = one("f0", lost);
        obs.extend(one("f1", pat(3, 0, 40)));
        let r = e.check(&obs);
        assert_eq!(r.verdict, Verdict::DataLoss, "{}", rules.name);
        assert_eq!(r.findings[0].promised_by, Some(4));
    }
}

#[test]
fn a_failed_syncfs_promises_nothing() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 64),
        Op::Syncfs { file: "f0".into() },
    ]);
    let mut out = all_ok(&w);
    out[2] = Some(OpOutcome::failed(libc_eio()));

    let e = expectation(&w, &out, CrashPoint::AfterOp(2), &FsRules::ext4());

    assert_eq!(e.files["f0"].existence, Existence::Either);
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
}

fn libc_eio() -> i32 {
    5
}

/// After each of these, everything written may still be lost word by word, and the size
/// may be any size set since the last durable point.
#[test]
fn sync_file_range_and_msync_async_and_invalidate_promise_nothing() {
    let traps = [
        Op::SyncFileRange {
            file: "f0".into(),
            off: 0,
            len: 8192,
        },
        Op::MsyncAsync {
            file: "f0".into(),
            off: 0,
            len: 8192,
        },
        Op::MsyncInvalidate {
            file: "f0".into(),
            off: 0,
            len: 8192,
        },
    ];
    for trap in traps {
        let w = wl(vec![
            create("f0"),
            truncate("f0", 8192),
            fsync("f0"),
            mmap("f0", 8192, false),
            store("f0", 0, 4096),
            pwrite("f0", 4096, 4096),
            pwrite("f0", 8192, 100),
            trap.clone(),
        ]);

        for rules in [FsRules::ext4(), FsRules::xfs()] {
            let e = after(&w, 7, &rules);
            let f0 = &e.files["f0"].states[0];

            // Nothing new is durable: the size fsync made durable, zeros everywhere.
            assert!(f0.sizes.contains(8192), "{}: {}", trap.kind(), f0.sizes);
            assert_eq!(
                e.check(&one("f0", vec![0; 8192])).verdict,
                Verdict::Pass,
                "{} {}",
                trap.kind(),
                rules.name
            );
            // Each word still may hold the new data, or the old.
            assert_eq!(bytes_at(&e, "f0", 0), set(&[0, pat(4, 0, 1)[0]]));
            assert_eq!(bytes_at(&e, "f0", 4096), set(&[0, pat(5, 4096, 1)[0]]));
            assert!(f0.words.iter().all(|s| s.durable_by != Some(7)));
        }
    }
}

#[test]
fn pwritev2_dsync_makes_its_whole_words_and_size_durable() {
    for flags in [RwfFlag::Dsync, RwfFlag::Sync] {
        // Written [4, 100): words 1..12 (bytes 8..96) are wholly inside it; word 0 and
        // word 12 are ragged edges, not demanded.
        let w = wl(vec![
            create("f0"),
            pwrite("f0", 0, 200),
            pwritev2("f0", 4, 96, flags),
        ]);

        for rules in [FsRules::ext4(), FsRules::xfs(), FsRules::generic()] {
            let e = after(&w, 2, &rules);
            let f0 = &e.files["f0"].states[0];

            // Size: the write ends at 100, the file's is 200 (not durable): 100..=200 only
            // if set since; here sizes since creation are 0 and 200, so at least 100 → 200.
            assert!(!f0.sizes.contains(0), "{}", f0.sizes);
            assert!(f0.sizes.contains(200));
            for off in (8..96).step_by(8) {
                assert_eq!(
                    bytes_at(&e, "f0", off),
                    set(&[pat(2, off, 1)[0]]),
                    "{} byte {off}",
                    rules.name
                );
            }
            // The edges and the rest keep their histories.
            assert!(bytes_at(&e, "f0", 0).contains(&0));
            assert!(bytes_at(&e, "f0", 100).contains(&0));
            assert!(bytes_at(&e, "f0", 96).contains(&0));

            // Losing a promised word is data loss promised by the pwritev2.
            let mut data = pat(1, 0, 200);
            data[4..100].copy_from_slice(&pat(2, 4, 96));
            assert_eq!(e.check(&one("f0", data.clone())).verdict, Verdict::Pass);
            data[40..48].fill(0);
            let r = e.check(&one("f0", data));
            assert_eq!(r.verdict, Verdict::DataLoss);
            assert_eq!(r.findings[0].promised_by, Some(2));
            assert_eq!((r.findings[0].start, r.findings[0].end), (40, 48));
        }
    }
}

#[test]
fn pwritev2_past_eof_promises_a_size_covering_it_but_not_older_writes() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 4096),
        pwritev2("f0", 8192, 4096, RwfFlag::Dsync),
    ]);

    let e = after(&w, 2, &FsRules::ext4());
    let f0 = &e.files["f0"].states[0];

    assert_eq!(f0.sizes.single(), Some(12288));
    // The earlier plain pwrite is not covered by the range sync.
    assert!(bytes_at(&e, "f0", 0).contains(&0));
    let mut data = vec![0; 8192];
    data.extend(pat(2, 8192, 4096));
    assert_eq!(e.check(&one("f0", data.clone())).verdict, Verdict::Pass);
    data.truncate(8192);
    assert_eq!(e.check(&one("f0", data)).verdict, Verdict::SizeLoss);
}

#[test]
fn a_refused_or_unknown_pwritev2_promises_nothing() {
    let w = wl(vec![create("f0"), pwritev2("f0", 0, 64, RwfFlag::Sync)]);
    let mut refused = all_ok(&w);
    refused[1] = Some(OpOutcome::failed(95)); // EOPNOTSUPP
    let mut unknown = all_ok(&w);
    unknown[1] = None;

    let e = expectation(&w, &refused, CrashPoint::AfterOp(1), &FsRules::ext4());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    // It wrote nothing: its bytes showing up is a failure.
    assert_ne!(e.check(&one("f0", pat(1, 0, 64))).verdict, Verdict::Pass);
    let e = expectation(&w, &unknown, CrashPoint::AfterOp(1), &FsRules::ext4());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    // Crash inside it: anything it may have done, nothing promised.
    let e = expectation(&w, &all_ok(&w), CrashPoint::InsideOp(1), &FsRules::ext4());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
}

#[test]
fn pwritev2_after_a_pending_collapse_leaves_moved_words_undemanded() {
    use workloads::FallocMode;
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 16384),
        fsync("f0"),
        falloc("f0", FallocMode::CollapseRange, 4096, 4096),
        pwritev2("f0", 0, 12288, RwfFlag::Dsync),
    ]);

    let e = after(&w, 4, &FsRules::ext4());
    let f0 = &e.files["f0"].states[0];

    // Below the collapse offset: durable.
    assert_eq!(bytes_at(&e, "f0", 8), set(&[pat(4, 8, 1)[0]]));
    // From it on: the range sync need not carry the new layout (permissive).
    assert!(bytes_at(&e, "f0", 4096).len() > 1);
    assert!(f0.sizes.contains(16384) && f0.sizes.contains(12288));
}
