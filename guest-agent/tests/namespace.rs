//! The namespace ops on the host file system (a tempdir): directories, hard links, symlinks,
//! `renameat2` with each flag, and the read-back of each kind of name.

use guest_agent::exec::Executor;
use guest_agent::readback::read_files;
use workloads::content::Patterns;
use workloads::{NodeKind, Op, RenameFlag, Workload};

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn namespace_ops_run_and_read_back_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ops = vec![
        Op::Mkdir { dir: s("d0") },
        Op::Mkdir { dir: s("d1") },
        Op::create("d0/a"),
        Op::Pwrite {
            file: s("d0/a"),
            off: 0,
            len: 100,
            pattern: None,
        },
        Op::Link {
            from: s("d0/a"),
            to: s("d1/b"),
        },
        Op::Symlink {
            target: s("d0/a"),
            link: s("d1/s"),
        },
        Op::create("c"),
        Op::Renameat2 {
            from: s("c"),
            to: s("d1/b"),
            flags: RenameFlag::Exchange,
        },
        Op::Renameat2 {
            from: s("d1/b"),
            to: s("d1/n"),
            flags: RenameFlag::Noreplace,
        },
        Op::FsyncDir { dir: Some(s("d1")) },
        Op::Fsync { file: s("d0/a") },
        Op::Mkdir { dir: s("e") },
        Op::Rmdir { dir: s("e") },
        Op::Renameat2 {
            from: s("d1/n"),
            to: s("d0/w"),
            flags: RenameFlag::Whiteout,
        },
    ];
    let w = Workload {
        name: s("ns"),
        seed: 5,
        profile: None,
        ops,
    };

    let outcomes = Executor::run_all(dir.path(), &w).expect("executor");

    let last = outcomes.len() - 1;
    for (k, o) in outcomes.iter().enumerate().take(last) {
        assert!(o.succeeded(), "op {k} {:?}: {o:?}", w.ops[k]);
    }
    // RENAME_WHITEOUT needs CAP_MKNOD and a file system that has whiteouts: where it is
    // refused, the op fails with a named errno and changes nothing.
    let whiteout = outcomes[last].succeeded();
    let names: Vec<String> = ["d0", "d0/a", "d1/b", "d1/s", "c", "e", "d1/n", "d0/w"]
        .map(s)
        .to_vec();
    let none = Patterns {
        seed: 5,
        sources: &[],
    };
    let r = read_files(dir.path(), &names, none);
    assert_eq!(r[0].kind, NodeKind::Dir);
    assert_eq!((r[1].kind, r[1].size, r[1].nlink), (NodeKind::File, 100, 2));
    assert_eq!(
        (r[2].kind, r[2].size),
        (NodeKind::File, 0),
        "exchanged with c"
    );
    assert_eq!(r[3].target.as_deref(), Some("d0/a"));
    assert_eq!(
        (r[4].size, r[4].nlink),
        (100, 2),
        "c is the old link of d0/a"
    );
    assert!(!r[5].exists);
    if whiteout {
        assert_eq!(r[6].kind, NodeKind::Whiteout, "{:?}", r[6]);
        assert!(r[7].exists);
    } else {
        assert_eq!(r[6].kind, NodeKind::File);
        assert!(!r[7].exists);
    }
}

#[test]
fn paths_that_leave_the_directory_fail_with_einval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = Workload {
        name: s("bad"),
        seed: 1,
        profile: None,
        ops: vec![
            Op::Mkdir { dir: s("../x") },
            Op::create("/tmp/y"),
            Op::Symlink {
                target: s("/etc/passwd"),
                link: s("l"),
            },
        ],
    };

    let outcomes = Executor::run_all(dir.path(), &w).expect("executor");

    for o in outcomes {
        assert_eq!(o.errno, Some(libc::EINVAL));
    }
}
