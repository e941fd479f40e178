//! io_uring: `uring_write` with `RWF_DSYNC`/`RWF_SYNC` promises what `pwritev2` with the
//! flag does (and so does one through an `O_DSYNC`/`O_SYNC` descriptor), one without
//! promises nothing; `uring_fsync` promises what `fsync` does, with `datasync` what
//! `fdatasync` does (no metadata).

use std::collections::BTreeMap;

use workloads::meta::{FileMeta, Timestamp, CREATE_MODE};
use workloads::oracle::{FsRules, Observed, Verdict};
use workloads::{Op, OpenSync, RwfFlag, Workload};

use crate::common::*;

fn uring_write(f: &str, off: u64, len: u64, flags: Option<RwfFlag>) -> Op {
    Op::UringWrite {
        file: f.into(),
        off,
        len,
        pattern: None,
        flags,
    }
}

#[test]
fn a_flagged_uring_write_makes_its_words_and_size_durable_and_a_plain_one_nothing() {
    for flags in [Some(RwfFlag::Dsync), Some(RwfFlag::Sync), None] {
        let w = wl(vec![
            create("f0"),
            fsync("f0"),
            uring_write("f0", 0, 4096, flags),
        ]);
        let e = after(&w, 2, &FsRules::ext4());
        let lost = e.check(&one("f0", Vec::new()));
        if flags.is_some() {
            assert_eq!(lost.verdict, Verdict::SizeLoss, "{flags:?}");
            assert_eq!(bytes_at(&e, "f0", 8), set(&[pat(2, 8, 1)[0]]), "{flags:?}");
        } else {
            assert_eq!(lost.verdict, Verdict::Pass);
        }
        assert_eq!(e.check(&one("f0", pat(2, 0, 4096))).verdict, Verdict::Pass);
        assert!(w.durability_points()[2] == flags.is_some(), "{flags:?}");
    }
}

#[test]
fn a_plain_uring_write_through_an_o_dsync_descriptor_is_a_promise() {
    let w = wl(vec![
        Op::Create {
            file: "f0".into(),
            sync: OpenSync::Dsync,
            direct: false,
        },
        uring_write("f0", 0, 64, None),
    ]);
    assert_eq!(w.labels()[1], "uring_write o_dsync");
    assert!(w.durability_points()[1]);
    let e = after(&w, 1, &FsRules::xfs());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::SizeLoss);
}

#[test]
fn uring_fsync_promises_data_and_with_datasync_no_metadata() {
    for datasync in [false, true] {
        let w = wl(vec![
            create("f0"),
            pwrite("f0", 0, 100),
            Op::Chmod {
                file: "f0".into(),
                mode: 0o600,
            },
            Op::UringFsync {
                file: "f0".into(),
                datasync,
            },
        ]);
        let e = after(&w, 3, &FsRules::ext4());
        assert_eq!(
            e.check(&one("f0", pat(1, 0, 50))).verdict,
            Verdict::SizeLoss
        );
        let any = Timestamp { sec: 1, nsec: 2 };
        let obs = Observed {
            meta: Some(FileMeta {
                mode: CREATE_MODE,
                atime: any,
                mtime: any,
                xattrs: Vec::new(),
            }),
            ..Observed::present(pat(1, 0, 100))
        };
        let v = e.check(&BTreeMap::from([("f0".to_string(), obs)])).verdict;
        let want = if datasync {
            Verdict::Pass
        } else {
            Verdict::MetadataLoss
        };
        assert_eq!(v, want, "datasync {datasync}");
    }
}

#[test]
fn o_direct_opens_promise_nothing_more() {
    let w: Workload = wl(vec![
        Op::Create {
            file: "f0".into(),
            sync: OpenSync::None,
            direct: true,
        },
        pwrite("f0", 0, 4096),
    ]);
    let e = after(&w, 1, &FsRules::ext4());
    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    assert!(!w.durability_points()[1]);
}
