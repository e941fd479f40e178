//! Namespace cases: subdirectories, fsync of a file, of its directory and of another
//! directory on ext4/xfs (journal prefix) and POSIX (generic), hard links and link counts,
//! symlink texts, renames across directories, `renameat2` with each flag, whiteouts, and an
//! op the file system refuses.

use std::collections::BTreeMap;

use workloads::oracle::{expectation, CrashPoint, Existence, FsRules, Observed, Verdict};
use workloads::{NodeKind, Op, OpOutcome, RenameFlag};

use crate::common::*;

fn mkdir(d: &str) -> Op {
    Op::Mkdir { dir: d.into() }
}
fn fsync_dir(d: &str) -> Op {
    Op::FsyncDir {
        dir: (!d.is_empty()).then(|| d.to_string()),
    }
}
fn rename2(from: &str, to: &str, flags: RenameFlag) -> Op {
    Op::Renameat2 {
        from: from.into(),
        to: to.into(),
        flags,
    }
}
fn dir() -> Observed {
    Observed::node(NodeKind::Dir, None)
}

#[test]
fn a_file_in_a_new_directory_needs_both_directory_fsyncs_under_posix() {
    let w = wl(vec![
        mkdir("d0"),
        create("d0/f"),
        fsync("d0/f"),
        fsync_dir("d0"),
        fsync_dir(""),
    ]);
    let g = FsRules::generic();

    // fsync of the file promises no name; fsync of d0 promises d0/f only where d0 is sure.
    assert_eq!(after(&w, 2, &g).files["d0/f"].existence, Existence::Either);
    assert_eq!(after(&w, 3, &g).files["d0"].existence, Existence::Either);
    assert_eq!(after(&w, 3, &g).files["d0/f"].existence, Existence::Either);
    let e = after(&w, 4, &g);
    assert_eq!(e.files["d0"].existence, Existence::MustExist);
    assert_eq!(e.files["d0/f"].existence, Existence::MustExist);
}

#[test]
fn on_ext4_and_xfs_an_fsync_commits_every_namespace_op_up_to_the_files_last_one() {
    let w = wl(vec![
        mkdir("d0"),
        mkdir("d1"),
        create("d0/f"),
        create("g"),
        fsync("d0/f"),
    ]);
    for rules in [FsRules::ext4(), FsRules::xfs()] {
        let e = after(&w, 4, &rules);

        // Ops 0..=2 are in the transaction fsync forces or an earlier one.
        assert_eq!(e.files["d0"].existence, Existence::MustExist);
        assert_eq!(e.files["d1"].existence, Existence::MustExist);
        assert_eq!(e.files["d0/f"].existence, Existence::MustExist);
        assert_eq!(e.files["d0/f"].durable_by, Some(4));
        // Op 3 came later: not promised.
        assert_eq!(e.files["g"].existence, Existence::Either);
        let missing = e.check(&BTreeMap::from([("d0".to_string(), dir())]));
        assert_eq!(missing.verdict, Verdict::MissingFile);
        assert_eq!(missing.findings[0].promised_by, Some(4));
    }
}

#[test]
fn fsync_of_another_directory_promises_what_came_before_its_own_last_change() {
    let w = wl(vec![
        mkdir("d0"),
        mkdir("d1"),
        create("d1/f"),
        create("d0/g"),
        fsync_dir("d1"),
    ]);
    let e = after(&w, 4, &FsRules::xfs());

    assert_eq!(e.files["d1/f"].existence, Existence::MustExist);
    assert_eq!(e.files["d0"].existence, Existence::MustExist);
    assert_eq!(
        e.files["d0/g"].existence,
        Existence::Either,
        "after d1's last change"
    );
}

#[test]
fn a_rename_across_directories_is_committed_by_an_fsync_of_the_file() {
    let w = wl(vec![
        mkdir("d0"),
        mkdir("d1"),
        create("d0/f"),
        pwrite("d0/f", 0, 64),
        fsync("d0/f"),
        Op::Rename {
            from: "d0/f".into(),
            to: "d1/f".into(),
        },
        fsync("d1/f"),
    ]);
    let before = after(&w, 5, &FsRules::ext4());
    let e = after(&w, 6, &FsRules::ext4());
    let g = after(&w, 6, &FsRules::generic());

    assert_eq!(before.files["d0/f"].existence, Existence::Either);
    assert_eq!(before.files["d1/f"].existence, Existence::Either);
    assert_eq!(e.files["d0/f"].existence, Existence::MustNotExist);
    assert_eq!(e.files["d1/f"].existence, Existence::MustExist);
    assert_eq!(g.files["d1/f"].existence, Existence::Either);
    let both = BTreeMap::from([
        ("d0".to_string(), dir()),
        ("d1".to_string(), dir()),
        ("d0/f".to_string(), Observed::present(pat(3, 0, 64))),
        ("d1/f".to_string(), Observed::present(pat(3, 0, 64))),
    ]);
    assert_eq!(e.check(&both).verdict, Verdict::UnexpectedFile);
    assert_eq!(g.check(&both).verdict, Verdict::Pass);
}

#[test]
fn a_hard_link_shares_content_and_the_link_count_must_match_the_names() {
    let w = wl(vec![
        create("a"),
        pwrite("a", 0, 16),
        Op::Link {
            from: "a".into(),
            to: "b".into(),
        },
        fsync("a"),
    ]);
    let e = after(&w, 3, &FsRules::ext4());
    let file = |nlink| Observed {
        ino: 12,
        nlink,
        ..Observed::present(pat(1, 0, 16))
    };

    assert_eq!(e.files["b"].existence, Existence::MustExist);
    assert_eq!(e.files["b"].states[0].inode, e.files["a"].states[0].inode);
    let ok = BTreeMap::from([("a".to_string(), file(2)), ("b".to_string(), file(2))]);
    let bad = BTreeMap::from([("a".to_string(), file(3)), ("b".to_string(), file(3))]);
    assert_eq!(e.check(&ok).verdict, Verdict::Pass);
    assert_eq!(e.check(&bad).verdict, Verdict::FsCorrupt);
    // fdatasync does not commit a link (ext4 does not move i_datasync_tid for it).
    let mut wd = w.clone();
    wd.ops[3] = Op::Fdatasync { file: "a".into() };
    assert_eq!(
        after(&wd, 3, &FsRules::ext4()).files["b"].existence,
        Existence::Either
    );
}

#[test]
fn a_symlink_must_hold_its_text() {
    let w = wl(vec![
        Op::Symlink {
            target: "x/y".into(),
            link: "s".into(),
        },
        fsync_dir(""),
    ]);
    let e = after(&w, 1, &FsRules::ext4());
    let found = |t: &str| {
        BTreeMap::from([(
            "s".to_string(),
            Observed::node(NodeKind::Symlink, Some(t.into())),
        )])
    };

    assert_eq!(e.files["s"].existence, Existence::MustExist);
    assert_eq!(e.check(&found("x/y")).verdict, Verdict::Pass);
    assert_eq!(e.check(&found("x/z")).verdict, Verdict::DataLoss);
    let file = BTreeMap::from([("s".to_string(), Observed::present(Vec::new()))]);
    assert_eq!(e.check(&file).verdict, Verdict::UnexpectedFile);
}

#[test]
fn renameat2_exchange_swaps_and_whiteout_leaves_a_whiteout() {
    let w = wl(vec![
        create("a"),
        pwrite("a", 0, 8),
        create("b"),
        fsync_dir(""),
        rename2("a", "b", RenameFlag::Exchange),
        fsync_dir(""),
        rename2("b", "c", RenameFlag::Whiteout),
        fsync_dir(""),
    ]);
    let x = after(&w, 5, &FsRules::xfs());
    let e = after(&w, 7, &FsRules::xfs());

    let (ia, ib) = (x.files["b"].states[0].inode, x.files["a"].states[0].inode);
    assert_eq!((ia, ib), (0, 1), "b now names a's inode and a names b's");
    assert_eq!(e.files["b"].states[0].kind, NodeKind::Whiteout);
    assert_eq!(e.files["c"].states[0].inode, 0);
    let good = BTreeMap::from([
        ("a".to_string(), Observed::present(Vec::new())),
        ("b".to_string(), Observed::node(NodeKind::Whiteout, None)),
        ("c".to_string(), Observed::present(pat(1, 0, 8))),
    ]);
    assert_eq!(e.check(&good).verdict, Verdict::Pass);
    let mut plain = good.clone();
    plain.remove("b");
    assert_eq!(e.check(&plain).verdict, Verdict::MissingFile);
}

#[test]
fn an_exchange_is_not_promised_by_an_fsync_of_an_exchanged_file() {
    let w = wl(vec![
        create("a"),
        create("b"),
        fsync_dir(""),
        rename2("a", "b", RenameFlag::Exchange),
        fsync("a"),
    ]);
    let e = after(&w, 4, &FsRules::xfs());

    // xfs_cross_rename() does not log the files' inodes: both bindings stay possible.
    assert_eq!(e.files["a"].states.len(), 2);
}

#[test]
fn a_refused_op_changes_nothing() {
    // A file system without whiteouts fails RENAME_WHITEOUT with EINVAL.
    let w = wl(vec![
        create("a"),
        fsync_dir(""),
        rename2("a", "c", RenameFlag::Whiteout),
        fsync_dir(""),
    ]);
    let mut outcomes = all_ok(&w);
    outcomes[2] = Some(OpOutcome::failed(22));
    let e = expectation(&w, &outcomes, CrashPoint::AfterOp(3), &FsRules::ext4());

    assert_eq!(e.files["a"].existence, Existence::MustExist);
    assert_eq!(e.files["a"].states[0].kind, NodeKind::File);
    assert_eq!(e.files["c"].existence, Existence::MustNotExist);
}

#[test]
fn rmdir_is_durable_after_an_fsync_of_the_parent() {
    let w = wl(vec![
        mkdir("d0"),
        fsync_dir(""),
        Op::Rmdir { dir: "d0".into() },
        fsync_dir(""),
    ]);

    assert_eq!(
        after(&w, 2, &FsRules::ext4()).files["d0"].existence,
        Existence::Either
    );
    let e = after(&w, 3, &FsRules::ext4());
    assert_eq!(e.files["d0"].existence, Existence::MustNotExist);
    let back = BTreeMap::from([("d0".to_string(), dir())]);
    assert_eq!(e.check(&back).verdict, Verdict::UnexpectedFile);
}
