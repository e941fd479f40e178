use workloads::oracle::{expectation, live_state, CrashPoint, FsRules};
use workloads::{Op, OpOutcome, Workload};

use super::*;
use crate::records::finding::CrashLabel;
use crate::records::TrialItem;

fn workload() -> Workload {
    Workload {
        name: "t".into(),
        seed: 1,
        profile: None,
        ops: vec![
            Op::create("f0"),
            Op::Pwrite {
                file: "f0".into(),
                off: 0,
                len: 4096,
                pattern: None,
            },
            Op::Fsync { file: "f0".into() },
        ],
    }
}

fn ok() -> Vec<Option<OpOutcome>> {
    vec![
        Some(OpOutcome::ok(0)),
        Some(OpOutcome::ok(4096)),
        Some(OpOutcome::ok(0)),
    ]
}

fn origin(k: usize) -> StateRef {
    StateRef {
        item: TrialItem::Seed(1),
        at: CrashLabel {
            point: CrashPoint::AfterOp(k),
            kind: "pwrite".into(),
        },
        model: "snapshot".into(),
    }
}

fn names() -> Vec<String> {
    vec!["f0".into()]
}

/// The image as it is before the fsync reaches the medium: the file is empty.
fn empty_file() -> Readback {
    let mut files = BTreeMap::new();
    files.insert("f0".to_owned(), Observed::present(Vec::new()));
    Readback::Mounted {
        files,
        fsck: Ok(()),
    }
}

#[test]
fn one_read_back_is_judged_by_each_state_s_own_promises() {
    let w = workload();
    let rules = FsRules::ext4();
    let before_fsync = expectation(&w, &ok(), CrashPoint::AfterOp(1), &rules);
    let after_fsync = expectation(&w, &ok(), CrashPoint::AfterOp(2), &rules);
    let readback = empty_file();

    let (v_before, _, _) = judge(&readback, &before_fsync);
    let (v_after, findings, _) = judge(&readback, &after_fsync);

    assert_eq!(v_before, Verdict::Pass);
    assert!(v_after.is_kernel_bug(), "{v_after:?}");
    assert!(!findings.is_empty());
}

#[test]
fn the_full_file_passes_after_the_fsync() {
    let w = workload();
    let after_fsync = expectation(&w, &ok(), CrashPoint::AfterOp(2), &FsRules::ext4());
    let files = live_state(&w, &ok())
        .into_iter()
        .map(|(n, d)| (n, Observed::present(d)))
        .collect();

    let (v, findings, detail) = judge(
        &Readback::Mounted {
            files,
            fsck: Ok(()),
        },
        &after_fsync,
    );

    assert_eq!((v, findings.len(), detail.as_str()), (Verdict::Pass, 0, ""));
}

#[test]
fn fsck_damage_turns_a_pass_into_fs_corrupt_and_keeps_a_worse_verdict() {
    let w = workload();
    let rules = FsRules::ext4();
    let before_fsync = expectation(&w, &ok(), CrashPoint::AfterOp(1), &rules);
    let after_fsync = expectation(&w, &ok(), CrashPoint::AfterOp(2), &rules);
    let Readback::Mounted { files, .. } = empty_file() else {
        unreachable!()
    };
    let damaged = Readback::Mounted {
        files,
        fsck: Err("e2fsck -fn (exit 4)".into()),
    };

    let (v_before, _, d) = judge(&damaged, &before_fsync);
    let (v_after, _, _) = judge(&damaged, &after_fsync);

    assert_eq!(v_before, Verdict::FsCorrupt);
    assert!(d.contains("e2fsck"));
    assert!(v_after.is_kernel_bug() && v_after != Verdict::FsCorrupt);
}

#[test]
fn a_mount_failure_is_one_whatever_was_promised() {
    let w = workload();
    let exp = expectation(&w, &ok(), CrashPoint::AfterOp(0), &FsRules::ext4());
    let rb = Readback::MountFailed {
        detail: "bad superblock".into(),
    };

    let (v, findings, detail) = judge(&rb, &exp);

    assert_eq!(v, Verdict::MountFailed);
    assert!(findings.is_empty());
    assert_eq!(detail, "bad superblock");
}

#[test]
fn a_read_back_is_found_by_digest_and_names_only() {
    let mut seen = SeenImages::default();
    seen.insert(
        [1; 32],
        names(),
        Seen {
            readback: empty_file(),
            origin: origin(1),
        },
    );

    let hit = seen
        .get(&[1; 32], &names())
        .expect("same image, same names");
    let other_image = seen.get(&[2; 32], &names());
    let other_names = seen.get(&[1; 32], &["f0".to_owned(), "f1".to_owned()]);

    assert_eq!(hit.origin, origin(1));
    assert_eq!(hit.readback, empty_file());
    assert!(other_image.is_none());
    assert!(other_names.is_none());
}

#[test]
fn the_first_state_checked_stays_the_origin() {
    let mut seen = SeenImages::default();
    for k in [1, 2] {
        seen.insert(
            [1; 32],
            names(),
            Seen {
                readback: empty_file(),
                origin: origin(k),
            },
        );
    }

    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen.get(&[1; 32], &names()).expect("kept").origin,
        origin(1)
    );
}

#[test]
fn the_cache_is_bounded_oldest_first() {
    let mut seen = SeenImages::new(2, 1 << 20);
    for d in 1..=3u8 {
        seen.insert(
            [d; 32],
            names(),
            Seen {
                readback: empty_file(),
                origin: origin(usize::from(d)),
            },
        );
    }

    assert_eq!(seen.len(), 2);
    assert!(seen.get(&[1; 32], &names()).is_none());
    assert!(seen.get(&[3; 32], &names()).is_some());
}

#[test]
fn a_read_back_larger_than_the_byte_bound_is_not_kept() {
    let mut seen = SeenImages::new(8, 10);
    let mut files = BTreeMap::new();
    files.insert("f0".to_owned(), Observed::present(vec![7; 100]));

    seen.insert(
        [1; 32],
        names(),
        Seen {
            readback: Readback::Mounted {
                files,
                fsck: Ok(()),
            },
            origin: origin(1),
        },
    );

    assert!(seen.is_empty());
}
