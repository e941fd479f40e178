//! Metadata: `fsync`, `sync`, `syncfs` and `O_SYNC`/`RWF_SYNC` writes promise the mode,
//! times and xattrs of their inode; `fdatasync`, `O_DSYNC`/`RWF_DSYNC` and msync do not; a
//! value not yet promised may be the durable one or any set since; a time the kernel set
//! may be anything.

use std::collections::BTreeMap;

use workloads::meta::{xattr_value, FileMeta, Timestamp, Xattr, CREATE_MODE};
use workloads::oracle::{Expectation, FsRules, Observed, Verdict};
use workloads::{Op, OpenSync, RwfFlag};

use crate::common::*;

const T: Timestamp = Timestamp {
    sec: 1_000_000_000,
    nsec: 123_456_789,
};
const OTHER: Timestamp = Timestamp { sec: 5, nsec: 0 };

fn chmod(f: &str, mode: u32) -> Op {
    Op::Chmod {
        file: f.into(),
        mode,
    }
}
fn setxattr(f: &str, name: &str, len: u64) -> Op {
    Op::Setxattr {
        file: f.into(),
        name: name.into(),
        len,
        pattern: None,
    }
}
fn removexattr(f: &str, name: &str) -> Op {
    Op::Removexattr {
        file: f.into(),
        name: name.into(),
    }
}
fn utimens(f: &str) -> Op {
    Op::Utimensat {
        file: f.into(),
        sec: T.sec as u64,
        nsec: T.nsec,
    }
}

fn meta(mode: u32, time: Timestamp, xattrs: Vec<Xattr>) -> FileMeta {
    FileMeta {
        mode,
        atime: time,
        mtime: time,
        xattrs,
    }
}

/// Check `f0` (empty) with metadata `m`: the verdict and the finding titles.
fn check(e: &Expectation, m: FileMeta) -> (Verdict, Vec<String>) {
    let obs = Observed {
        meta: Some(m),
        ..Observed::present(Vec::new())
    };
    let r = e.check(&BTreeMap::from([("f0".to_string(), obs)]));
    (r.verdict, r.findings.iter().map(|f| f.title()).collect())
}

fn rules() -> [FsRules; 3] {
    [FsRules::ext4(), FsRules::xfs(), FsRules::generic()]
}

#[test]
fn fsync_makes_a_chmod_durable_and_names_itself() {
    let w = wl(vec![
        create("f0"),
        fsync("f0"),
        chmod("f0", 0o600),
        fsync("f0"),
    ]);
    for r in rules() {
        let e = after(&w, 3, &r);
        assert_eq!(check(&e, meta(0o600, OTHER, vec![])).0, Verdict::Pass);
        let (v, titles) = check(&e, meta(CREATE_MODE, OTHER, vec![]));
        assert_eq!(v, Verdict::MetadataLoss, "{}", r.name);
        assert_eq!(
            titles,
            ["metadata-loss: f0 mode 0644, allowed 0600 after op 3 (fsync)"]
        );
        let f = &e
            .check(&BTreeMap::from([(
                "f0".to_string(),
                Observed {
                    meta: Some(meta(CREATE_MODE, OTHER, vec![])),
                    ..Observed::present(Vec::new())
                },
            )]))
            .findings[0];
        assert_eq!(f.promised_by, Some(3));
    }
}

#[test]
fn before_a_promise_either_mode_is_allowed_and_fdatasync_promises_none() {
    let w = wl(vec![
        create("f0"),
        fsync("f0"),
        chmod("f0", 0o600),
        chmod("f0", 0o640),
        Op::Fdatasync { file: "f0".into() },
    ]);
    let e = after(&w, 4, &FsRules::ext4());
    for m in [CREATE_MODE, 0o600, 0o640] {
        assert_eq!(check(&e, meta(m, OTHER, vec![])).0, Verdict::Pass, "{m:o}");
    }
    assert_eq!(
        check(&e, meta(0o755, OTHER, vec![])).0,
        Verdict::MetadataLoss
    );
    // After an fsync only the last one.
    let mut w2 = w.clone();
    w2.ops.push(fsync("f0"));
    let e = after(&w2, 5, &FsRules::ext4());
    assert_eq!(
        check(&e, meta(0o600, OTHER, vec![])).0,
        Verdict::MetadataLoss
    );
    assert_eq!(check(&e, meta(0o640, OTHER, vec![])).0, Verdict::Pass);
}

#[test]
fn xattrs_set_removed_and_unknown() {
    let w = wl(vec![
        create("f0"),
        setxattr("f0", "a", 40),
        fsync("f0"),
        removexattr("f0", "a"),
        setxattr("f0", "b", 2000),
    ]);
    let a = || Xattr {
        name: "a".into(),
        value: xattr_value(SEED, 2, 40),
    };
    let b = || Xattr {
        name: "b".into(),
        value: xattr_value(SEED, 5, 2000),
    };
    let e = after(&w, 2, &FsRules::xfs());
    assert_eq!(
        check(&e, meta(CREATE_MODE, OTHER, vec![a()])).0,
        Verdict::Pass
    );
    let (v, t) = check(&e, meta(CREATE_MODE, OTHER, vec![]));
    assert_eq!(v, Verdict::MetadataLoss);
    assert!(
        t[0].starts_with("metadata-loss: f0 xattr user.a absent, allowed 40 bytes "),
        "{t:?}"
    );
    // A value of the wrong bytes (same length) is a loss too.
    let mut wrong = a();
    wrong.value[39] ^= 1;
    assert_eq!(
        check(&e, meta(CREATE_MODE, OTHER, vec![wrong])).0,
        Verdict::MetadataLoss
    );

    // After the removal and the second set, not yet promised: any combination.
    let e = after(&w, 4, &FsRules::xfs());
    for x in [vec![], vec![a()], vec![b()], vec![a(), b()]] {
        assert_eq!(
            check(&e, meta(CREATE_MODE, OTHER, x.clone())).0,
            Verdict::Pass,
            "{x:?}"
        );
    }
    // An xattr no op set must be absent.
    let c = Xattr {
        name: "c".into(),
        value: vec![1],
    };
    let (v, t) = check(&e, meta(CREATE_MODE, OTHER, vec![c]));
    assert_eq!(v, Verdict::MetadataLoss);
    assert_eq!(
        t,
        ["metadata-loss: f0 xattr user.c 1 bytes 01, allowed absent after op 4 (setxattr)"]
    );
}

#[test]
fn explicit_times_are_promised_until_the_kernel_sets_one() {
    let w = wl(vec![
        create("f0"),
        utimens("f0"),
        fsync("f0"),
        pwrite("f0", 0, 8),
    ]);
    let e = after(&w, 2, &FsRules::ext4());
    assert_eq!(check(&e, meta(CREATE_MODE, T, vec![])).0, Verdict::Pass);
    let (v, t) = check(&e, meta(CREATE_MODE, OTHER, vec![]));
    assert_eq!(v, Verdict::MetadataLoss);
    assert_eq!(t.len(), 2, "atime and mtime: {t:?}");
    assert!(
        t[1].contains("mtime 5.000000000, allowed 1000000000.123456789"),
        "{t:?}"
    );
    // The pwrite sets the modification time: any (the access time is still promised).
    let e = after(&w, 3, &FsRules::ext4());
    let m = FileMeta {
        mtime: OTHER,
        ..meta(CREATE_MODE, T, vec![])
    };
    let obs = Observed {
        meta: Some(m),
        ..Observed::present(pat(3, 0, 8))
    };
    let r = e.check(&BTreeMap::from([("f0".to_string(), obs)]));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.findings);
}

#[test]
fn o_sync_and_rwf_sync_writes_promise_metadata_and_dsync_ones_do_not() {
    let cases = [
        (
            Op::Open {
                file: "f0".into(),
                sync: OpenSync::Sync,
                direct: false,
            },
            pwrite("f0", 0, 8),
            true,
        ),
        (
            Op::Open {
                file: "f0".into(),
                sync: OpenSync::Dsync,
                direct: false,
            },
            pwrite("f0", 0, 8),
            false,
        ),
        (Op::open("f0"), pwritev2("f0", 0, 8, RwfFlag::Sync), true),
        (Op::open("f0"), pwritev2("f0", 0, 8, RwfFlag::Dsync), false),
    ];
    for (open, write, promises) in cases {
        let w = wl(vec![
            create("f0"),
            fsync("f0"),
            chmod("f0", 0o600),
            open,
            write,
        ]);
        let e = after(&w, 4, &FsRules::ext4());
        let obs = Observed {
            meta: Some(meta(CREATE_MODE, OTHER, vec![])),
            ..Observed::present(pat(4, 0, 8))
        };
        let v = e.check(&BTreeMap::from([("f0".to_string(), obs)])).verdict;
        let want = if promises {
            Verdict::MetadataLoss
        } else {
            Verdict::Pass
        };
        assert_eq!(v, want, "{:?}", w.ops[3..].to_vec());
    }
}

#[test]
fn sync_and_syncfs_promise_every_files_metadata_and_a_failed_op_changes_nothing() {
    for s in [Op::Sync, Op::Syncfs { file: "f0".into() }] {
        let w = wl(vec![create("f0"), chmod("f0", 0o400), s]);
        let e = after(&w, 2, &FsRules::ext4());
        assert_eq!(
            check(&e, meta(CREATE_MODE, OTHER, vec![])).0,
            Verdict::MetadataLoss
        );
    }
    let w = wl(vec![
        create("f0"),
        fsync("f0"),
        removexattr("f0", "x"),
        fsync("f0"),
    ]);
    let mut outcomes = all_ok(&w);
    outcomes[2] = Some(workloads::OpOutcome::failed(61)); // ENODATA
    let e = workloads::oracle::expectation(
        &w,
        &outcomes,
        workloads::oracle::CrashPoint::AfterOp(3),
        &FsRules::ext4(),
    );
    assert_eq!(check(&e, meta(CREATE_MODE, OTHER, vec![])).0, Verdict::Pass);
}

#[test]
fn metadata_is_not_checked_when_the_read_back_has_none() {
    let w = wl(vec![create("f0"), chmod("f0", 0o600), fsync("f0")]);
    let e = after(&w, 2, &FsRules::ext4());
    let r = e.check(&one("f0", Vec::new()));
    assert_eq!(r.verdict, Verdict::Pass);
}
