//! Name and verdict cases: existence rules per file system, rename, unlink, sync, crash
//! points inside ops, unknown outcomes, and what the checker reports.

use std::collections::BTreeMap;

use workloads::oracle::{
    expectation, live_state, CrashPoint, Existence, Expectation, FsRules, Observed, Verdict,
};
use workloads::{Op, OpOutcome};

use crate::common::*;

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
    w.ops.push(Op::fsync_root());
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
fn rename_over_a_file_then_fsync_dir() {
    let w = wl(vec![
        create("f0"),
        pwrite("f0", 0, 8192),
        fsync("f0"),
        Op::fsync_root(),
        create("tmp"),
        pwrite("tmp", 0, 12000),
        fsync("tmp"),
        Op::Rename {
            from: "tmp".into(),
            to: "f0".into(),
        },
        Op::fsync_root(),
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
        Op::fsync_root(),
        Op::Unlink { file: "f0".into() },
        Op::fsync_root(),
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
fn an_unknown_outcome_taints_the_file() {
    let w = wl(vec![create("f0"), pwrite("f0", 0, 100), fsync("f0")]);
    let outcomes = [Some(OpOutcome::ok(0)), None, Some(OpOutcome::ok(0))];

    let e = expectation(&w, &outcomes, CrashPoint::AfterOp(2), &FsRules::ext4());

    assert_eq!(e.check(&one("f0", Vec::new())).verdict, Verdict::Pass);
    assert_eq!(e.check(&one("f0", pat(1, 0, 100))).verdict, Verdict::Pass);
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
        Op::open("f0"),
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

/// Found in a 7.3.4 sweep (seed 9660): the rename over `f0` was not yet durable, so `f0` may
/// be the old, never-written inode or the renamed one. The renamed inode's durable stores
/// were lost (the dirty-DAX-drop finding); the old inode's one size finding was fewer than
/// the renamed inode's two data findings, so the report blamed the old inode ("data-loss of
/// zeroing", outside the finding's bucket). The inode whose sizes hold the size found is the
/// one the findings are about.
#[test]
fn a_failing_name_is_judged_by_the_inode_whose_size_it_has() {
    let w = wl(vec![
        create("f1"),
        truncate("f1", 8192),
        mmap("f1", 8192, false),
        store("f1", 0, 4096),
        store("f1", 4096, 4096),
        fsync("f1"),
        create("f0"),
        truncate("f0", 16384),
        Op::Close { file: "f0".into() },
        Op::Rename {
            from: "f1".into(),
            to: "f0".into(),
        },
    ]);
    let e = after(&w, 9, &FsRules::ext4());
    assert_eq!(e.files["f0"].states.len(), 2, "{:?}", e.files["f0"]);

    let r = e.check(&one("f0", vec![0; 8192]));

    assert_eq!(r.verdict, Verdict::DataLoss, "{:?}", r.findings);
    assert!(
        r.findings
            .iter()
            .all(|f| f.verdict == Verdict::DataLoss && f.file == "f0"),
        "{:?}",
        r.findings
    );
    assert_eq!(
        r.findings
            .iter()
            .map(|f| (f.start, f.end))
            .collect::<Vec<_>>(),
        vec![(0, 4096), (4096, 8192)]
    );
    // The renamed inode's content passes; so does the old inode's.
    let stored = [pat(3, 0, 4096), pat(4, 4096, 4096)].concat();
    assert_eq!(e.check(&one("f0", stored)).verdict, Verdict::Pass);
    assert_eq!(e.check(&one("f0", vec![0; 16384])).verdict, Verdict::Pass);
}
