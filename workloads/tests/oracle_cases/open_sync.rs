//! Per-write durability through open flags: every `pwrite` through a descriptor opened
//! `O_DSYNC` or `O_SYNC` is its own promise (its whole words and a size covering them);
//! stores through a mapping of the same file, and writes through a descriptor opened
//! without the flag, promise nothing.

use workloads::oracle::{expectation, CrashPoint, FsRules, Verdict};
use workloads::{Op, OpOutcome, OpenSync, Workload};

use crate::common::*;

fn create_sync(f: &str, sync: OpenSync) -> Op {
    Op::Create {
        file: f.into(),
        sync,
        direct: false,
    }
}

fn open_sync(f: &str, sync: OpenSync) -> Op {
    Op::Open {
        file: f.into(),
        sync,
        direct: false,
    }
}

const FLAGS: [OpenSync; 2] = [OpenSync::Dsync, OpenSync::Sync];

fn every_rules() -> [FsRules; 3] {
    [FsRules::ext4(), FsRules::xfs(), FsRules::generic()]
}

#[test]
fn a_pwrite_through_an_o_dsync_or_o_sync_descriptor_makes_its_words_and_size_durable() {
    for sync in FLAGS {
        // Written [4, 100) into a 200-byte file: words 1..12 (bytes 8..96) wholly inside.
        let w = wl(vec![
            create("f0"),
            pwrite("f0", 0, 200),
            fsync("f0"),
            open_sync("f0", sync),
            pwrite("f0", 4, 96),
        ]);

        for rules in every_rules() {
            let e = after(&w, 4, &rules);
            for off in (8..96).step_by(8) {
                assert_eq!(
                    bytes_at(&e, "f0", off),
                    set(&[pat(4, off, 1)[0]]),
                    "{sync:?} {} byte {off}",
                    rules.name
                );
            }
            // Ragged edge words: old or new.
            assert_eq!(
                bytes_at(&e, "f0", 4),
                set(&[pat(1, 4, 1)[0], pat(4, 4, 1)[0]])
            );
            let mut data = pat(1, 0, 200);
            data[4..100].copy_from_slice(&pat(4, 4, 96));
            assert_eq!(e.check(&one("f0", data.clone())).verdict, Verdict::Pass);
            data[48..56].copy_from_slice(&pat(1, 48, 8));
            let r = e.check(&one("f0", data));
            assert_eq!(r.verdict, Verdict::DataLoss, "{sync:?} {}", rules.name);
            assert_eq!(r.findings[0].promised_by, Some(4));
            assert_eq!((r.findings[0].start, r.findings[0].end), (48, 56));
        }
    }
}

#[test]
fn an_o_dsync_pwrite_past_eof_promises_the_size_but_not_earlier_plain_writes() {
    for sync in FLAGS {
        let w = wl(vec![
            create_sync("f0", sync),
            pwrite("f0", 0, 4096),
            open("f0"),
            pwrite("f0", 4096, 4096),
            open_sync("f0", sync),
            pwrite("f0", 8192, 4096),
        ]);

        let e = after(&w, 5, &FsRules::ext4());
        let f0 = &e.files["f0"].states[0];
        assert_eq!(f0.sizes.single(), Some(12288), "{sync:?}");
        // Op 1 went through the O_*SYNC descriptor of the create: durable.
        assert_eq!(bytes_at(&e, "f0", 8), set(&[pat(1, 8, 1)[0]]));
        // Op 3 went through a plain descriptor (the open replaced it): not promised.
        assert!(bytes_at(&e, "f0", 4096).contains(&0));
        let mut data = pat(1, 0, 4096);
        data.extend(vec![0; 4096]);
        data.extend(pat(5, 8192, 4096));
        assert_eq!(e.check(&one("f0", data.clone())).verdict, Verdict::Pass);
        data.truncate(8192);
        assert_eq!(e.check(&one("f0", data)).verdict, Verdict::SizeLoss);
    }
}

#[test]
fn stores_through_a_mapping_of_an_o_sync_file_are_not_promised() {
    for sync in FLAGS {
        let w = wl(vec![
            create("f0"),
            truncate("f0", 8192),
            fsync("f0"),
            open_sync("f0", sync),
            mmap("f0", 8192, false),
            store("f0", 0, 4096),
            pwrite("f0", 4096, 64),
        ]);

        for rules in every_rules() {
            let e = after(&w, 6, &rules);
            // The store may be lost entirely; the pwrite may not.
            assert_eq!(bytes_at(&e, "f0", 0), set(&[0, pat(5, 0, 1)[0]]));
            assert_eq!(bytes_at(&e, "f0", 4096), set(&[pat(6, 4096, 1)[0]]));
            let mut data = vec![0; 8192];
            data[4096..4160].copy_from_slice(&pat(6, 4096, 64));
            assert_eq!(
                e.check(&one("f0", data)).verdict,
                Verdict::Pass,
                "{sync:?} {}",
                rules.name
            );
        }
    }
}

#[test]
fn the_flag_follows_the_descriptor_through_a_rename_and_ends_with_close() {
    let w = wl(vec![
        create_sync("a", OpenSync::Dsync),
        Op::Rename {
            from: "a".into(),
            to: "b".into(),
        },
        pwrite("b", 0, 64),
        Op::Close { file: "b".into() },
        open("b"),
        pwrite("b", 64, 64),
    ]);

    let e = after(&w, 5, &FsRules::xfs());
    // Through the renamed O_DSYNC descriptor: durable (if the name survives at all).
    assert!(e.files["b"]
        .states
        .iter()
        .all(|s| s.allowed_bytes(8) == set(&[pat(2, 8, 1)[0]])));
    // Through the plain descriptor opened after close: not promised.
    assert!(bytes_at(&e, "b", 64).contains(&0));
    assert_eq!(
        w.labels(),
        [
            "create o_dsync",
            "rename",
            "pwrite o_dsync",
            "close",
            "open",
            "pwrite"
        ]
    );
    assert_eq!(
        w.crash_point_after(),
        [false, false, true, false, false, false]
    );
}

#[test]
fn a_failed_or_unknown_pwrite_through_an_o_sync_descriptor_promises_nothing() {
    let w = wl(vec![create_sync("f0", OpenSync::Sync), pwrite("f0", 0, 64)]);
    let mut failed = all_ok(&w);
    failed[1] = Some(OpOutcome::failed(28)); // ENOSPC
    let mut unknown = all_ok(&w);
    unknown[1] = None;

    for out in [failed, unknown] {
        let e = expectation(&w, &out, CrashPoint::AfterOp(1), &FsRules::ext4());
        assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    }
    // A short write promises only the bytes it wrote.
    let mut short = all_ok(&w);
    short[1] = Some(OpOutcome::ok(16));
    let e = expectation(&w, &short, CrashPoint::AfterOp(1), &FsRules::ext4());
    assert_eq!(e.files["f0"].states[0].sizes.single(), Some(16));
    assert_eq!(e.check(&one("f0", pat(1, 0, 16))).verdict, Verdict::Pass);
    // Crash inside it: nothing promised.
    let e = expectation(&w, &all_ok(&w), CrashPoint::InsideOp(1), &FsRules::ext4());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
}

#[test]
fn a_failed_open_keeps_the_old_descriptor_and_its_flag() {
    // The agent keeps the descriptor it held when an open fails; so does the oracle.
    let w = wl(vec![
        create_sync("f0", OpenSync::Dsync),
        open("f0"),
        pwrite("f0", 0, 64),
    ]);
    let mut out = all_ok(&w);
    out[1] = Some(OpOutcome::failed(24)); // EMFILE
    let e = expectation(&w, &out, CrashPoint::AfterOp(2), &FsRules::ext4());
    assert_eq!(bytes_at(&e, "f0", 0), set(&[pat(2, 0, 1)[0]]));
}

fn open(f: &str) -> Op {
    Op::open(f)
}

#[test]
fn open_flags_round_trip_through_yaml_and_old_yaml_means_none() {
    let w = wl(vec![
        create_sync("f0", OpenSync::Sync),
        open_sync("f0", OpenSync::Dsync),
        open("f0"),
    ]);
    let yaml = serde_yaml::to_string(&w).expect("serialize");
    assert!(
        yaml.contains("sync: sync") && yaml.contains("sync: dsync"),
        "{yaml}"
    );
    let back: Workload = serde_yaml::from_str(&yaml).expect("parse");
    assert_eq!(back, w);
    // A plain open serializes as before (no `sync` key).
    let plain = serde_yaml::to_string(&wl(vec![open("f0")])).expect("serialize");
    assert!(!plain.contains("sync"), "{plain}");
}
