//! Tests of spec parsing (error positions and messages) and of semantic validation.

use super::*;

const ORIGIN: &str = "specs/bad.yaml";

fn err(text: &str) -> String {
    parse_workload(text, ORIGIN)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn parses_the_documented_example() {
    let text = "name: mmap-store-fsync
seed: 1
ops:
  - {op: create, file: f0}
  - {op: ftruncate, file: f0, size: 65536}
  - {op: mmap, file: f0, len: 65536}
  - {op: mmap_store, file: f0, off: 0, len: 65536}
  - {op: fsync, file: f0}
";
    let w = parse_workload(text, ORIGIN).expect("valid");
    assert_eq!(w.ops.len(), 5);
    assert_eq!(
        w.ops[2],
        crate::Op::Mmap {
            file: "f0".into(),
            len: 65536,
            sync: false
        }
    );
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: ftruncate, file: f0, sizee: 4}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("unknown field `sizee`"), "{msg}");
    assert!(msg.contains("ops[1]"), "{msg}");
}

#[test]
fn field_of_another_op_kind_is_rejected() {
    let msg =
        err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: fsync_dir, file: f0}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(
        msg.contains("unknown field `file` for op `fsync_dir`"),
        "{msg}"
    );
}

#[test]
fn wrong_type_names_file_line_and_field() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: ftruncate, file: f0, size: abc}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("ops[1].size"), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn negative_length_names_the_field() {
    let msg = err("name: a\nseed: 1\nops:\n  - op: create\n    file: f0\n  - op: pwrite\n    file: f0\n    off: 0\n    len: -5\n");
    assert!(msg.starts_with("specs/bad.yaml:9:"), "{msg}");
    assert!(msg.contains("ops[1].len"), "{msg}");
}

#[test]
fn missing_field_names_file_line_and_field() {
    let msg =
        err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: ftruncate, file: f0}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("missing field `size`"), "{msg}");
}

#[test]
fn missing_workload_field_names_it() {
    let msg = err("name: a\nops: []\n");
    assert!(msg.starts_with("specs/bad.yaml:1:"), "{msg}");
    assert!(msg.contains("missing field `seed`"), "{msg}");
}

#[test]
fn unknown_op_names_file_line_and_lists_kinds() {
    let msg =
        err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: fsyncc, file: f0}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("unknown op `fsyncc`"), "{msg}");
    assert!(msg.contains("`fdatasync`"), "{msg}");
}

#[test]
fn unknown_fallocate_mode_names_the_field() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: fallocate, file: f0, mode: punch, off: 0, len: 1}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("ops[1].mode"), "{msg}");
    assert!(msg.contains("punch_hole"), "{msg}");
}

#[test]
fn semantic_error_names_line_op_and_field() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: pwrite, file: f1, off: 0, len: 8}\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
    assert!(msg.contains("op 1 (pwrite), field `file`"), "{msg}");
}

#[test]
fn syntax_error_has_a_position() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0\n");
    assert!(msg.starts_with("specs/bad.yaml:5:"), "{msg}");
}

fn invalid(ops: Vec<crate::Op>) -> (usize, &'static str, &'static str) {
    let w = Workload {
        name: "t".into(),
        seed: 0,
        profile: None,
        ops,
    };
    match validate(&w) {
        Err(SpecError::Invalid {
            index, kind, field, ..
        }) => (index, kind, field),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

use crate::{FallocMode, Op};

fn create(f: &str) -> Op {
    Op::Create { file: f.into() }
}

#[test]
fn validation_rejects_bad_names() {
    for bad in ["", ".", "..", "a/b", &"x".repeat(65)] {
        assert_eq!(invalid(vec![create(bad)]), (0, "create", "file"), "{bad:?}");
    }
    let ok = Workload {
        name: "t".into(),
        seed: 0,
        profile: None,
        ops: vec![create(&"x".repeat(64))],
    };
    assert!(validate(&ok).is_ok());
}

#[test]
fn validation_tracks_open_mapped_and_existing_names() {
    let pw = |f: &str| Op::Pwrite {
        file: f.into(),
        off: 0,
        len: 8,
        pattern: None,
    };
    assert_eq!(invalid(vec![pw("f0")]), (0, "pwrite", "file"));
    assert_eq!(
        invalid(vec![
            create("f0"),
            Op::Close { file: "f0".into() },
            pw("f0")
        ]),
        (2, "pwrite", "file")
    );
    assert_eq!(
        invalid(vec![Op::Open { file: "f0".into() }]),
        (0, "open", "file")
    );
    assert_eq!(
        invalid(vec![
            create("a"),
            Op::Rename {
                from: "a".into(),
                to: "b".into()
            },
            pw("a")
        ]),
        (2, "pwrite", "file")
    );
    assert_eq!(
        invalid(vec![
            create("a"),
            Op::Unlink { file: "a".into() },
            Op::Unlink { file: "a".into() }
        ]),
        (2, "unlink", "file")
    );
    assert_eq!(
        invalid(vec![Op::Rename {
            from: "a".into(),
            to: "b".into()
        }]),
        (0, "rename", "from")
    );
    let store = Op::MmapStore {
        file: "f0".into(),
        off: 0,
        len: 8,
        pattern: None,
    };
    assert_eq!(
        invalid(vec![create("f0"), store.clone()]),
        (1, "mmap_store", "file")
    );
    let map = Op::Mmap {
        file: "f0".into(),
        len: 4096,
        sync: false,
    };
    // Stores past EOF are rejected: the file is empty.
    assert_eq!(
        invalid(vec![create("f0"), map.clone(), store]),
        (2, "mmap_store", "off")
    );
    let trunc = Op::Ftruncate {
        file: "f0".into(),
        size: 8192,
    };
    let far = Op::MmapStore {
        file: "f0".into(),
        off: 4000,
        len: 200,
        pattern: None,
    };
    assert_eq!(
        invalid(vec![create("f0"), trunc.clone(), map.clone(), far]),
        (3, "mmap_store", "len")
    );
    let msync = Op::Msync {
        file: "f0".into(),
        off: 4096,
        len: 1,
    };
    assert_eq!(
        invalid(vec![create("f0"), trunc, map, msync]),
        (3, "msync", "off")
    );
    let unmapped_after_close = vec![
        create("f0"),
        Op::Ftruncate {
            file: "f0".into(),
            size: 4096,
        },
        Op::Mmap {
            file: "f0".into(),
            len: 4096,
            sync: true,
        },
        Op::Close { file: "f0".into() },
        Op::Open { file: "f0".into() },
        Op::Flush {
            file: "f0".into(),
            off: 0,
            len: 64,
        },
    ];
    assert_eq!(invalid(unmapped_after_close), (5, "flush", "file"));
}

#[test]
fn validation_bounds_offsets_and_lengths() {
    let big = Op::Pwrite {
        file: "f0".into(),
        off: MAX_FILE_BYTES,
        len: 1,
        pattern: None,
    };
    assert_eq!(invalid(vec![create("f0"), big]), (1, "pwrite", "off"));
    let zero = Op::Fallocate {
        file: "f0".into(),
        mode: FallocMode::PunchHole,
        off: 0,
        len: 0,
    };
    assert_eq!(invalid(vec![create("f0"), zero]), (1, "fallocate", "len"));
    let huge = Op::Ftruncate {
        file: "f0".into(),
        size: MAX_FILE_BYTES + 1,
    };
    assert_eq!(invalid(vec![create("f0"), huge]), (1, "ftruncate", "size"));
    let map0 = Op::Mmap {
        file: "f0".into(),
        len: 0,
        sync: false,
    };
    assert_eq!(invalid(vec![create("f0"), map0]), (1, "mmap", "len"));
    let overflow = Op::Pwrite {
        file: "f0".into(),
        off: u64::MAX,
        len: 2,
        pattern: None,
    };
    assert_eq!(invalid(vec![create("f0"), overflow]), (1, "pwrite", "off"));
}
