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
    assert!(msg.contains("ops[1]: field `mode`"), "{msg}");
    assert!(msg.contains("punch_hole"), "{msg}");
}

#[test]
fn chmod_takes_octal_permission_bits_and_refuses_more() {
    let ok = |m: &str| {
        parse_workload(
            &format!("name: a\nseed: 1\nops:\n  - {{op: create, file: f0}}\n  - {{op: chmod, file: f0, mode: {m}}}\n"),
            ORIGIN,
        )
    };
    for (m, bits) in [
        ("0o640", 0o640),
        ("\"0640\"", 0o640),
        ("420", 0o644),
        ("0", 0),
    ] {
        let w = ok(m).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(
            w.ops[1],
            Op::Chmod {
                file: "f0".into(),
                mode: bits
            },
            "{m}"
        );
    }
    for m in ["0o1777", "\"0999\"", "punch_hole", "\"\""] {
        let e = ok(m).expect_err(m).to_string();
        assert!(e.contains("ops[1]: field `mode` of op `chmod`"), "{m}: {e}");
    }
    let e = ok("-1").expect_err("negative").to_string();
    assert!(e.contains("ops[1].mode: mode -1 is negative"), "{e}");
}

#[test]
fn metadata_ops_are_bounded() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: setxattr, file: f0, name: a, len: 4096}\n");
    assert!(msg.contains("op 1 (setxattr), field `len`"), "{msg}");
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: setxattr, file: f0, name: \"a/b\", len: 4}\n");
    assert!(msg.contains("op 1 (setxattr), field `name`"), "{msg}");
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: utimensat, file: f0, sec: 1, nsec: 1000000000}\n");
    assert!(msg.contains("op 1 (utimensat), field `nsec`"), "{msg}");
    let msg = err(
        "name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: removexattr, file: f0}\n",
    );
    assert!(msg.contains("missing field `name`"), "{msg}");
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
    Op::create(f)
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
    assert_eq!(invalid(vec![Op::open("f0")]), (0, "open", "file"));
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
        Op::open("f0"),
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

fn sync_ops(n: usize) -> String {
    let mut text = String::from("name: many\nseed: 1\nops:\n");
    text.push_str(&"  - {op: sync}\n".repeat(n));
    text
}

#[test]
fn op_count_is_capped_while_parsing() {
    let at_cap = sync_ops(MAX_OPS);
    let over = sync_ops(MAX_OPS + 1);

    let ok = parse_workload(&at_cap, ORIGIN);
    let msg = err(&over);

    assert_eq!(ok.expect("at the cap").ops.len(), MAX_OPS);
    assert!(msg.starts_with("specs/bad.yaml:4:"), "{msg}");
    assert!(msg.contains("ops: more than 10000 ops"), "{msg}");
}

#[test]
fn op_count_is_capped_for_built_workloads() {
    let w = Workload {
        name: "many".into(),
        seed: 0,
        profile: None,
        ops: vec![Op::Sync; MAX_OPS + 1],
    };

    let e = validate(&w).expect_err("too many ops");

    assert!(matches!(e, SpecError::Field { field: "ops", .. }), "{e:?}");
}

#[test]
fn deep_nesting_is_refused_before_parsing_and_names_the_file() {
    let text = format!("name: a\nseed: 1\nops: {}\n", "[".repeat(2 << 20));

    let start = std::time::Instant::now();
    let msg = err(&text);
    let took = start.elapsed();

    assert!(
        msg.starts_with("specs/bad.yaml: line 3: YAML nested deeper"),
        "{msg}"
    );
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}

#[test]
fn oversized_workload_files_are_refused_unread() {
    let dir = std::env::temp_dir().join(format!("spec-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("huge.yaml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(MAX_WORKLOAD_FILE_BYTES + 1)
        .expect("sparse file");

    let e = load_workload(&path).expect_err("too large");
    std::fs::remove_dir_all(&dir).expect("cleanup");

    let msg = e.to_string();
    assert!(
        msg.contains("huge.yaml") && msg.contains("larger than the limit"),
        "{msg}"
    );
}

/// Every op kind that takes an offset, a length or a size, at the largest accepted value
/// and one past it.
#[test]
fn every_extent_is_bounded_by_max_file_bytes() {
    let f = || "f0".to_string();
    let max = MAX_FILE_BYTES;
    let cases: Vec<(Op, Op, &str)> = vec![
        (
            Op::Pwrite {
                file: f(),
                off: max - 8,
                len: 8,
                pattern: None,
            },
            Op::Pwrite {
                file: f(),
                off: max - 8,
                len: 9,
                pattern: None,
            },
            "len",
        ),
        (
            Op::Fallocate {
                file: f(),
                mode: FallocMode::KeepSize,
                off: 0,
                len: max,
            },
            Op::Fallocate {
                file: f(),
                mode: FallocMode::KeepSize,
                off: 1,
                len: max,
            },
            "len",
        ),
        (
            Op::Fallocate {
                file: f(),
                mode: FallocMode::PunchHole,
                off: max - 1,
                len: 1,
            },
            Op::Fallocate {
                file: f(),
                mode: FallocMode::PunchHole,
                off: u64::MAX,
                len: 1,
            },
            "off",
        ),
        (
            Op::Ftruncate {
                file: f(),
                size: max,
            },
            Op::Ftruncate {
                file: f(),
                size: max + 1,
            },
            "size",
        ),
        (
            Op::Mmap {
                file: f(),
                len: max,
                sync: false,
            },
            Op::Mmap {
                file: f(),
                len: max + 1,
                sync: false,
            },
            "len",
        ),
    ];
    for (ok, bad, field) in cases {
        let good = Workload {
            name: "t".into(),
            seed: 0,
            profile: None,
            ops: vec![create("f0"), ok],
        };

        let kind = bad.kind();
        assert!(validate(&good).is_ok(), "{good:?}");
        assert_eq!(invalid(vec![create("f0"), bad]), (1, kind, field));
    }
}

#[test]
fn mapped_ranges_are_bounded_with_checked_arithmetic() {
    let mapped = |op: Op| {
        vec![
            create("f0"),
            Op::Ftruncate {
                file: "f0".into(),
                size: 8192,
            },
            Op::Mmap {
                file: "f0".into(),
                len: 8192,
                sync: true,
            },
            op,
        ]
    };

    let store = invalid(mapped(Op::MmapStore {
        file: "f0".into(),
        off: u64::MAX,
        len: 1,
        pattern: None,
    }));
    let flush = invalid(mapped(Op::Flush {
        file: "f0".into(),
        off: 64,
        len: u64::MAX,
    }));
    let msync = invalid(mapped(Op::Msync {
        file: "f0".into(),
        off: u64::MAX - 1,
        len: 2,
    }));

    assert_eq!(store, (3, "mmap_store", "off"));
    assert_eq!(flush, (3, "flush", "len"));
    assert_eq!(msync, (3, "msync", "off"));
}

fn fits(ops: Vec<Op>, pmem_bytes: u64) -> Result<(), SpecError> {
    let w = Workload {
        name: "fit".into(),
        seed: 0,
        profile: None,
        ops,
    };
    check_fits(&w, pmem_bytes)
}

#[test]
fn check_fits_allows_half_the_pmem_for_file_data() {
    let write = |file: &str, len: u64| Op::Pwrite {
        file: file.into(),
        off: 0,
        len,
        pattern: None,
    };
    let two_files = |each: u64| vec![create("a"), write("a", each), create("b"), write("b", each)];
    let pmem = 16 << 20;

    let at_half = fits(two_files(4 << 20), pmem);
    let over_half = fits(two_files((4 << 20) + 1), pmem);

    assert!(at_half.is_ok(), "{at_half:?}");
    let msg = over_half.expect_err("too big").to_string();
    assert!(
        msg.contains("fit:") && msg.contains("8388610 bytes"),
        "{msg}"
    );
}

#[test]
fn check_fits_counts_allocations_past_eof_and_rejects_invalid_workloads() {
    let keep = Op::Fallocate {
        file: "a".into(),
        mode: FallocMode::KeepSize,
        off: 0,
        len: 12 << 20,
    };

    let allocated = fits(vec![create("a"), keep], 16 << 20);
    let invalid = fits(
        vec![Op::Fsync {
            file: "nope".into(),
        }],
        16 << 20,
    );

    assert!(matches!(allocated, Err(SpecError::DoesNotFit { need, .. }) if need == 12 << 20));
    assert!(matches!(
        invalid,
        Err(SpecError::Invalid { field: "file", .. })
    ));
}

mod shift;
