//! Tests of the lost-lines report: the extent map checked against the final pmem, and the
//! report's sentences and text.

use super::*;
use crate::cache_model::{Cut, CutAt, CutReason, InFlight, LostLine, Variant};
use workloads::oracle::CrashPoint;
use workloads::protocol::Extent;
use workloads::Op;

const DATA: u64 = 2 << 20;

fn map(data_offset: u64) -> FileMap {
    FileMap {
        data_offset,
        files: vec![FileExtents {
            name: "f1".into(),
            extents: vec![Extent {
                logical: 0,
                physical: 0x1000,
                length: 8192,
                flags: 0,
            }],
            error: None,
        }],
    }
}

fn pmem_with_f1() -> (Vec<u8>, BTreeMap<String, Observed>) {
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8 + 1).collect();
    let mut pmem = vec![0u8; (DATA + 0x4000) as usize];
    let at = (DATA + 0x1000) as usize;
    pmem[at..at + data.len()].copy_from_slice(&data);
    let live = BTreeMap::from([("f1".to_owned(), Observed::present(data))]);
    (pmem, live)
}

#[test]
fn the_measured_data_offset_is_accepted_and_a_wrong_one_refused() {
    let (pmem, live) = pmem_with_f1();
    let mut at = |off: u64, len: usize| {
        pmem.get(off as usize..off as usize + len)
            .map(<[u8]>::to_vec)
    };

    let good = checked_map(map(DATA), &live, &mut at);
    let bad = checked_map(map(DATA + 4096), &live, &mut at);

    assert_eq!(good.map(|m| m.data_offset), Ok(DATA));
    let err = bad.expect_err("wrong offset");
    assert!(err.contains("f1 [0..6000) is not at pmem"), "{err}");
}

fn workload() -> Workload {
    Workload {
        name: "t".into(),
        seed: 1,
        profile: None,
        ops: vec![Op::create("f1"), Op::Fsync { file: "f1".into() }],
    }
}

#[test]
fn the_report_names_file_range_and_missing_write_back() {
    let state = CrashState {
        cut: Cut {
            seq: 900,
            point: CrashPoint::AfterOp(1),
            at: CutAt::OpDone,
            reason: CutReason::DurabilityOpDone,
        },
        variant: Variant::Worst,
        patches: Vec::new(),
        in_flight: 2,
        persisted: 0,
        lost: (0..2)
            .map(|i| LostLine {
                off: DATA + 0x1000 + 64 * i,
                why: InFlight::Dirty,
                last_store: 812,
                pc: 0x40_1000,
                stored_in: Some(CrashPoint::InsideOp(0)),
            })
            .collect(),
        hash: [0; 32],
        subset_seed: None,
    };
    let facts = GuestFacts {
        map: Some(map(DATA)),
        ..GuestFacts::default()
    };

    let r = report(&state, &facts, &workload());
    let text = r.text(0x1_0000_0000);

    assert_eq!(r.ranges.len(), 1);
    assert_eq!(
        r.sentences[0],
        "f1 [0..128) written by user stores through mmap in op 0 (create), \
         fsync in op 1 returned without a cache-line write-back"
    );
    assert_eq!(r.behind("f1", 64, 4096), vec![r.sentences[0].as_str()]);
    assert!(r.behind("f1", 128, 4096).is_empty());
    assert!(
        text.contains("cut: after op 1 at its return (DurabilityOpDone), trace event 900"),
        "{text}"
    );
    assert!(text.contains("0x100201000"), "{text}");
    let back: LostReport =
        serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parse");
    assert_eq!(back, r);
}
