//! Validation of `fallocate` collapse and insert range: alignment, the range against the
//! file's size, and the sizes they leave for later ops.

use super::*;

fn shift_op(mode: FallocMode, off: u64, len: u64) -> Op {
    Op::Fallocate {
        file: "f0".into(),
        mode,
        off,
        len,
    }
}

/// A 4-page file, then `op`.
fn on_four_pages(op: Op) -> Vec<Op> {
    vec![
        create("f0"),
        Op::Ftruncate {
            file: "f0".into(),
            size: 4 * FS_BLOCK,
        },
        op,
    ]
}

#[test]
fn collapse_and_insert_range_need_block_aligned_ranges_inside_the_file() {
    use FallocMode::{CollapseRange, InsertRange};
    let cases = [
        (shift_op(CollapseRange, 100, FS_BLOCK), "off"),
        (shift_op(InsertRange, FS_BLOCK, 512), "len"),
        // Collapse must end below EOF: reaching it exactly is a truncate, refused.
        (shift_op(CollapseRange, FS_BLOCK, 3 * FS_BLOCK), "len"),
        (shift_op(CollapseRange, 4 * FS_BLOCK, FS_BLOCK), "off"),
        (shift_op(InsertRange, 4 * FS_BLOCK, FS_BLOCK), "off"),
        (shift_op(InsertRange, 0, MAX_FILE_BYTES), "len"),
    ];
    for (op, field) in cases {
        assert_eq!(
            invalid(on_four_pages(op.clone())),
            (2, "fallocate", field),
            "{op:?}"
        );
    }
    for op in [
        shift_op(CollapseRange, FS_BLOCK, 2 * FS_BLOCK),
        shift_op(InsertRange, 3 * FS_BLOCK, FS_BLOCK),
    ] {
        let w = Workload {
            name: "t".into(),
            seed: 0,
            profile: None,
            ops: on_four_pages(op),
        };
        validate(&w).expect("valid shift");
    }
}

#[test]
fn shift_errors_name_the_file_line_mode_and_what_to_do() {
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: ftruncate, file: f0, size: 8192}\n  - {op: fallocate, file: f0, mode: collapse_range, off: 4096, len: 4096}\n");
    assert!(msg.starts_with("specs/bad.yaml:6:"), "{msg}");
    assert!(msg.contains("op 2 (fallocate), field `len`"), "{msg}");
    assert!(
        msg.contains(
            "collapse_range of [4096, 8192) must end below the end of `f0` (size 8192 here)"
        ),
        "{msg}"
    );
    let msg = err("name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: ftruncate, file: f0, size: 8192}\n  - {op: fallocate, file: f0, mode: insert_range, off: 0, len: 1000}\n");
    assert!(
        msg.contains("insert_range needs `len` to be a multiple of the 4096-byte"),
        "{msg}"
    );
}

#[test]
fn sizes_follow_collapse_and_insert_so_later_stores_are_checked_against_them() {
    // After a collapse to 2 pages, a store into page 3 of the (still 4-page) mapping is
    // past EOF; after an insert it is inside again.
    let mut ops = on_four_pages(shift_op(FallocMode::CollapseRange, 0, 2 * FS_BLOCK));
    ops.insert(
        2,
        Op::Mmap {
            file: "f0".into(),
            len: 4 * FS_BLOCK,
            sync: false,
        },
    );
    let store = Op::MmapStore {
        file: "f0".into(),
        off: 3 * FS_BLOCK,
        len: 8,
        pattern: None,
    };
    let mut past = ops.clone();
    past.push(store.clone());
    assert_eq!(invalid(past), (4, "mmap_store", "off"));
    ops.push(shift_op(FallocMode::InsertRange, 0, 2 * FS_BLOCK));
    ops.push(store);
    let w = Workload {
        name: "t".into(),
        seed: 0,
        profile: None,
        ops,
    };
    validate(&w).expect("the store is inside the file again");
}
