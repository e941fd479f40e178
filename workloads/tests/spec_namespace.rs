//! The namespace ops in YAML: each parses to its op, the old `fsync_dir` without a field
//! still means the workload directory, and errors name the field.

use workloads::spec::parse_workload;
use workloads::{Op, RenameFlag};

const HEAD: &str = "name: ns\nseed: 1\nops:\n";

fn parse(ops: &str) -> Result<Vec<Op>, String> {
    parse_workload(&format!("{HEAD}{ops}"), "specs/ns.yaml")
        .map(|w| w.ops)
        .map_err(|e| e.to_string())
}

#[test]
fn namespace_ops_parse_and_round_trip() {
    let ops = parse(concat!(
        "  - {op: mkdir, dir: d0}\n",
        "  - {op: create, file: d0/a}\n",
        "  - {op: link, from: d0/a, to: b}\n",
        "  - {op: symlink, target: d0/a, link: s}\n",
        "  - {op: renameat2, from: b, to: d0/c, flags: noreplace}\n",
        "  - {op: fsync_dir, dir: d0}\n",
        "  - {op: fsync_dir}\n",
        "  - {op: unlink, file: s}\n",
    ))
    .expect("valid");

    assert_eq!(ops[0], Op::Mkdir { dir: "d0".into() });
    assert_eq!(
        ops[4],
        Op::Renameat2 {
            from: "b".into(),
            to: "d0/c".into(),
            flags: RenameFlag::Noreplace
        }
    );
    assert_eq!(
        ops[5],
        Op::FsyncDir {
            dir: Some("d0".into())
        }
    );
    assert_eq!(ops[6], Op::fsync_root());
    let w = workloads::Workload {
        name: "ns".into(),
        seed: 1,
        profile: None,
        ops: ops.clone(),
    };
    let yaml = serde_yaml::to_string(&w).expect("serialize");
    assert!(yaml.contains("op: fsync_dir\n"), "{yaml}");
    assert_eq!(
        parse_workload(&yaml, "round.yaml").expect("reparse").ops,
        ops
    );
}

#[test]
fn bad_namespace_ops_name_the_field() {
    let cases = [
        ("  - {op: mkdir}\n", "missing field `dir` for op `mkdir`"),
        (
            "  - {op: mkdir, dir: /abs}\n",
            "field `dir`: `/abs` is absolute",
        ),
        (
            "  - {op: mkdir, dir: a/b/c/d}\n",
            "3 directories deep; at most 2",
        ),
        (
            "  - {op: create, file: a}\n  - {op: symlink, target: ../up, link: s}\n",
            "field `target`: `../up` has a `..` component",
        ),
        (
            "  - {op: create, file: a}\n  - {op: renameat2, from: a, to: b, flags: dsync}\n",
            "must be exchange, noreplace or whiteout, not `dsync`",
        ),
        (
            "  - {op: create, file: a}\n  - {op: renameat2, from: a, to: b, flags: exchange}\n",
            "field `to`: `b` does not exist here",
        ),
        (
            "  - {op: mkdir, dir: d}\n  - {op: link, from: d, to: e}\n",
            "field `from`: `d` is a directory here, not a regular file",
        ),
        (
            "  - {op: fsync_dir, dir: nope}\n",
            "field `dir`: `nope` is not a directory here",
        ),
    ];
    for (ops, want) in cases {
        let err = parse(ops).expect_err(ops);
        assert!(err.contains(want), "{ops}: {err}");
    }
}
