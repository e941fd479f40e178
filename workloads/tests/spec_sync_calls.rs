//! Spec errors of the sync-call ops (syncfs, sync_file_range, msync_async,
//! msync_invalidate, pwritev2): each names the file, the line, the op and the field.

use workloads::spec::parse_workload;
use workloads::{Op, OpenSync, RwfFlag};

const ORIGIN: &str = "specs/bad.yaml";

fn with(ops: &str) -> String {
    format!("name: t\nseed: 1\nops:\n  - {{op: create, file: f0}}\n{ops}")
}

fn err(ops: &str) -> String {
    parse_workload(&with(ops), ORIGIN)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn every_sync_call_parses_with_its_fields() {
    let w = parse_workload(
        &with(
            "  - {op: mmap, file: f0, len: 4096}
  - {op: pwritev2, file: f0, off: 0, len: 100, flags: dsync}
  - {op: pwritev2, file: f0, off: 8, len: 8, flags: sync, pattern: 9}
  - {op: msync_async, file: f0, off: 0, len: 64}
  - {op: msync_invalidate, file: f0, off: 1, len: 64}
  - {op: sync_file_range, file: f0, off: 0, len: 4096}
  - {op: syncfs, file: f0}
",
        ),
        ORIGIN,
    )
    .expect("valid");

    assert_eq!(
        w.ops[2],
        Op::Pwritev2 {
            file: "f0".into(),
            off: 0,
            len: 100,
            pattern: None,
            flags: RwfFlag::Dsync
        }
    );
    assert_eq!(w.ops[3].label(), "pwritev2 sync");
    assert_eq!(w.ops[3].pattern_id(3), Some(9));
    let kinds: Vec<&str> = w.ops[4..].iter().map(Op::kind).collect();
    assert_eq!(
        kinds,
        [
            "msync_async",
            "msync_invalidate",
            "sync_file_range",
            "syncfs"
        ]
    );
    assert!(w.ops[7].is_durability_point() && w.ops[2].is_durability_point());
    assert!(w.ops[4..7]
        .iter()
        .all(|op| op.is_empty_promise() && !op.is_durability_point()));
    assert!(w.ops[2..].iter().all(Op::wants_crash_point_after));
    // Generated YAML round-trips.
    let yaml = serde_yaml::to_string(&w).expect("serialize");
    assert_eq!(parse_workload(&yaml, "again.yaml").expect("valid"), w);
}

#[test]
fn pwritev2_needs_a_known_flag() {
    let missing = err("  - {op: pwritev2, file: f0, off: 0, len: 8}\n");
    assert!(missing.starts_with("specs/bad.yaml:5:"), "{missing}");
    assert!(
        missing.contains("missing field `flags` for op `pwritev2`"),
        "{missing}"
    );

    let unknown = err("  - {op: pwritev2, file: f0, off: 0, len: 8, flags: async}\n");
    assert!(
        unknown.contains("ops[1].flags: unknown variant `async`"),
        "{unknown}"
    );
    assert!(unknown.contains("`dsync`, `sync`"), "{unknown}");

    let other_op = err("  - {op: pwrite, file: f0, off: 0, len: 8, flags: dsync}\n");
    assert!(
        other_op.contains("unknown field `flags` for op `pwrite`"),
        "{other_op}"
    );
}

#[test]
fn msync_variants_need_a_mapping_and_stay_inside_it() {
    let unmapped = err("  - {op: msync_async, file: f0, off: 0, len: 8}\n");
    assert!(
        unmapped.contains("op 1 (msync_async), field `file`: `f0` is not mapped here"),
        "{unmapped}"
    );
    let outside = err("  - {op: mmap, file: f0, len: 4096}\n  - {op: msync_invalidate, file: f0, off: 4000, len: 200}\n");
    assert!(outside.starts_with("specs/bad.yaml:6:"), "{outside}");
    assert!(
        outside.contains("op 2 (msync_invalidate), field `len`"),
        "{outside}"
    );
    assert!(outside.contains("outside the mapping"), "{outside}");
}

#[test]
fn syncfs_and_sync_file_range_need_an_open_file_and_a_bounded_range() {
    let closed = err("  - {op: close, file: f0}\n  - {op: syncfs, file: f0}\n");
    assert!(
        closed.contains("op 2 (syncfs), field `file`: `f0` is not open here"),
        "{closed}"
    );
    let empty = err("  - {op: sync_file_range, file: f0, off: 0, len: 0}\n");
    assert!(
        empty.contains("op 1 (sync_file_range), field `len`: must be greater than 0"),
        "{empty}"
    );
    let huge = err("  - {op: sync_file_range, file: f0, off: 1073741824, len: 1}\n");
    assert!(
        huge.contains("field `off`") && huge.contains("1 GiB"),
        "{huge}"
    );
    let extra = err("  - {op: syncfs, file: f0, off: 3}\n");
    assert!(
        extra.contains("unknown field `off` for op `syncfs`, expected `file`"),
        "{extra}"
    );
    let huge_write = err("  - {op: pwritev2, file: f0, off: 1073741823, len: 2, flags: sync}\n");
    assert!(
        huge_write.contains("op 1 (pwritev2), field `len`"),
        "{huge_write}"
    );
}

#[test]
fn open_flags_parse_on_create_and_open_only() {
    let w = parse_workload(
        &with("  - {op: create, file: f1, sync: dsync}\n  - {op: open, file: f0, sync: sync}\n  - {op: open, file: f1, sync: none}\n  - {op: pwrite, file: f1, off: 0, len: 8}\n  - {op: pwrite, file: f0, off: 0, len: 8}\n"),
        ORIGIN,
    )
    .expect("valid");
    assert_eq!(
        w.ops[1],
        Op::Create {
            file: "f1".into(),
            sync: OpenSync::Dsync,
            direct: false,
        }
    );
    assert_eq!(
        w.ops[2],
        Op::Open {
            file: "f0".into(),
            sync: OpenSync::Sync,
            direct: false,
        }
    );
    assert_eq!(w.ops[3], Op::open("f1"));
    assert_eq!(
        w.labels()[1..],
        [
            "create o_dsync",
            "open o_sync",
            "open",
            "pwrite",
            "pwrite o_sync"
        ]
    );
    let yaml = serde_yaml::to_string(&w).expect("serialize");
    assert_eq!(parse_workload(&yaml, "again.yaml").expect("valid"), w);

    let unknown = err("  - {op: open, file: f0, sync: async}\n");
    assert!(unknown.starts_with("specs/bad.yaml:5:"), "{unknown}");
    assert!(
        unknown.contains(
            "field `sync` of op `open` must be none, dsync (O_DSYNC) or sync (O_SYNC), not `async`"
        ),
        "{unknown}"
    );
    let boolean = err("  - {op: create, file: f1, sync: true}\n");
    assert!(boolean.contains("of op `create` must be none"), "{boolean}");
    let long = err(&format!(
        "  - {{op: create, file: f1, sync: {}}}\n",
        "x".repeat(5000)
    ));
    assert!(long.len() < 400, "{long}");
    let on_mmap = err("  - {op: mmap, file: f0, len: 4096, sync: dsync}\n");
    assert!(
        on_mmap.contains("field `sync` of op `mmap` must be true or false, not `dsync`"),
        "{on_mmap}"
    );
    let on_pwrite = err("  - {op: pwrite, file: f0, off: 0, len: 8, sync: sync}\n");
    assert!(
        on_pwrite.contains("unknown field `sync` for op `pwrite`"),
        "{on_pwrite}"
    );
}
