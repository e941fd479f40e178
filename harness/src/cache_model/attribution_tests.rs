//! Tests of lost-line attribution: offsets through extents (with a property test against
//! a byte-by-byte reference), symbols, merging, and the sentences.

use super::*;
use proptest::prelude::*;

const DATA: u64 = 2 << 20;

fn ext(logical: u64, physical: u64, length: u64) -> Extent {
    Extent {
        logical,
        physical,
        length,
        flags: 0,
    }
}

fn map() -> FileMap {
    FileMap {
        data_offset: DATA,
        files: vec![
            FileExtents {
                name: "f0".into(),
                extents: vec![ext(0, 0x10_0000, 8192)],
                error: None,
            },
            FileExtents {
                name: "f1".into(),
                extents: vec![ext(0, 0x20_0000, 4096), ext(4096, 0x30_0000, 8192)],
                error: None,
            },
        ],
    }
}

fn lost(off: u64, why: InFlight, pc: u64, op: usize) -> LostLine {
    LostLine {
        off,
        why,
        last_store: 1,
        pc,
        stored_in: Some(CrashPoint::InsideOp(op)),
    }
}

fn kind(k: usize) -> String {
    if k == 9 { "msync" } else { "store" }.to_owned()
}

#[test]
fn pmem_offsets_map_through_the_data_offset_and_the_extents() {
    let m = map();

    assert_eq!(m.locate(DATA + 0x10_0040), Some(("f0", 0x40)));
    assert_eq!(m.locate(DATA + 0x30_0000 + 100), Some(("f1", 4096 + 100)));
    assert_eq!(m.locate(DATA + 0x20_1000), None, "past f1's first extent");
    assert_eq!(m.locate(0x10_0000), None, "before the data offset");
}

#[test]
fn kallsyms_names_kernel_pcs_with_offset_and_module() {
    let s = Symbols::parse(
        "ffffffff81000000 T _stext\n\
         ffffffff81400000 t memcpy_flushcache\n\
         ffffffffc0100000 t ext4_dax_fault\t[ext4]\n\
         0000000000000000 A fixed_percpu_data\n\
         ffffffff82000000 D some_data\n",
    );

    assert_eq!(s.len(), 3);
    assert_eq!(
        s.name(0xffff_ffff_8140_002a).as_deref(),
        Some("memcpy_flushcache+0x2a")
    );
    assert_eq!(
        s.name(0xffff_ffff_c010_0010).as_deref(),
        Some("ext4_dax_fault+0x10 [ext4]")
    );
    assert_eq!(s.name(0x1000), None);
}

#[test]
fn adjacent_lines_with_one_story_merge_into_one_range() {
    let syms = Symbols::default();
    let user = 0x40_1000;
    let lines: Vec<LostLine> = (0..64)
        .map(|i| lost(DATA + 0x30_0000 + i * 64, InFlight::Dirty, user, 5))
        .chain([lost(
            DATA + 0x10_0000,
            InFlight::FlushedUnfenced,
            0xffff_ffff_8140_0000,
            3,
        )])
        .chain([lost(0x1000, InFlight::Dirty, 0xffff_ffff_8140_0000, 3)])
        .collect();

    let r = attribute(&lines, &map(), &syms);

    assert_eq!(r.len(), 3, "{r:#?}");
    assert_eq!(
        (r[0].file.as_deref(), r[0].start, r[0].end),
        (Some("f0"), 0, 64)
    );
    assert_eq!(
        (r[1].file.as_deref(), r[1].start, r[1].end),
        (Some("f1"), 4096, 8192)
    );
    assert_eq!((r[2].file.as_deref(), r[2].start), (None, 0x1000));
    assert_eq!(
        sentence(&r[1], CrashPoint::AfterOp(9), &kind, &|k| k == 9),
        "f1 [4096..8192) written by user stores through mmap in op 5 (store), \
         msync in op 9 returned without a cache-line write-back"
    );
}

#[test]
fn each_in_flight_state_reads_as_its_missing_step() {
    let syms = Symbols::parse("ffffffff81400000 t memcpy_flushcache\n");
    let r = |why| {
        attribute(
            &[lost(DATA + 0x10_0000, why, 0xffff_ffff_8140_0010, 2)],
            &map(),
            &syms,
        )
        .remove(0)
    };
    let after_fsync = CrashPoint::AfterOp(9);

    let flushed = sentence(&r(InFlight::FlushedUnfenced), after_fsync, &kind, &|_| true);
    let nt = sentence(&r(InFlight::NonTemporal), after_fsync, &kind, &|_| true);
    let sampled = sentence(&r(InFlight::Dirty), CrashPoint::AfterOp(4), &kind, &|_| {
        false
    });

    assert!(
        flushed.contains("kernel stores at memcpy_flushcache+0x10"),
        "{flushed}"
    );
    assert!(flushed.ends_with("but no fence after it"), "{flushed}");
    assert!(
        nt.ends_with("without an sfence after the non-temporal stores"),
        "{nt}"
    );
    assert!(
        sampled.ends_with("never flushed at the cut after op 4 (store) returned"),
        "{sampled}"
    );
}

proptest! {
    /// Against a reference: expand every extent into a byte-level table and look the
    /// offset up there.
    #[test]
    fn locate_agrees_with_a_byte_table(
        lens in prop::collection::vec(1u64..6, 1..5),
        gaps in prop::collection::vec(0u64..3, 5),
        data_blocks in 0u64..4,
        probe in 0u64..64,
    ) {
        const B: u64 = 4096;
        let mut phys = 0;
        let mut logical = 0;
        let mut extents = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            phys += gaps[i] * B;
            extents.push(ext(logical, phys, len * B));
            logical += len * B + gaps[(i + 1) % gaps.len()] * B;
            phys += len * B;
        }
        let m = FileMap {
            data_offset: data_blocks * B,
            files: vec![FileExtents { name: "f".into(), extents: extents.clone(), error: None }],
        };
        let off = probe * B + 64 * (probe % 7);
        let mut table = std::collections::HashMap::new();
        for e in &extents {
            for b in 0..e.length / 64 {
                table.insert(m.data_offset + e.physical + b * 64, e.logical + b * 64);
            }
        }

        let got = m.locate(off).map(|(_, o)| o);

        prop_assert_eq!(got, table.get(&off).copied());
    }
}
