use proptest::prelude::*;

use super::*;

const SEED: u64 = 0x5eed;

fn home(ids: &[u32]) -> Vec<Source> {
    ids.iter().map(|&id| Source::at_home(id)).collect()
}

fn pattern_bytes(id: u32, off: u64, len: usize) -> Vec<u8> {
    Pattern::new(SEED, id).bytes(off, len)
}

#[test]
fn a_file_of_two_patterns_and_a_hole_is_three_runs() {
    // 0..4096 pattern 3, 4096..8192 zeros, 8192..12288 pattern 7 (hand-laid).
    let mut data = pattern_bytes(3, 0, 4096);
    data.extend(vec![0u8; 4096]);
    data.extend(pattern_bytes(7, 8192, 4096));

    let runs = encode(&data, SEED, &home(&[3, 7]));

    assert_eq!(
        runs,
        vec![
            Run::Pattern {
                id: 3,
                shift: 0,
                len: 4096
            },
            Run::Zero { len: 4096 },
            Run::Pattern {
                id: 7,
                shift: 0,
                len: 4096
            },
        ]
    );
    assert_eq!(decode(&runs, SEED, 12288).unwrap(), data);
}

#[test]
fn a_pattern_at_the_wrong_offset_is_kept_literally() {
    // Pattern 3's bytes for offset 8, stored at offset 0: not what pattern 3 writes there.
    let data = pattern_bytes(3, 8, 16);

    let runs = encode(&data, SEED, &home(&[3]));

    assert_eq!(
        runs,
        vec![Run::Hex {
            hex: hex::encode(&data)
        }]
    );
    assert_eq!(decode(&runs, SEED, 16).unwrap(), data);
}

#[test]
fn an_unknown_id_or_another_seed_is_kept_literally() {
    let data = pattern_bytes(9, 0, 64);

    assert!(matches!(
        encode(&data, SEED, &home(&[3]))[..],
        [Run::Hex { .. }]
    ));
    assert!(matches!(
        encode(&data, SEED + 1, &home(&[9]))[..],
        [Run::Hex { .. }]
    ));
}

#[test]
fn a_torn_word_and_an_unaligned_tail_are_literal() {
    // Word 0 half pattern 1, half pattern 2 (a torn 8-byte store); then 5 tail bytes.
    let mut data = pattern_bytes(1, 0, 4);
    data.extend(&pattern_bytes(2, 4, 4));
    data.extend(pattern_bytes(1, 8, 8));
    data.extend([1, 2, 3, 4, 5]);

    let runs = encode(&data, SEED, &home(&[1, 2]));

    assert_eq!(
        runs,
        vec![
            Run::Hex {
                hex: hex::encode(&data[..8])
            },
            Run::Pattern {
                id: 1,
                shift: 0,
                len: 8
            },
            Run::Hex {
                hex: "0102030405".into()
            },
        ]
    );
    assert_eq!(decode(&runs, SEED, 21).unwrap(), data);
}

#[test]
fn ids_that_share_a_tag_are_told_apart() {
    // 0x10003 and 0x3 have the same low 16 bits, so the same tag bytes.
    let mut data = pattern_bytes(0x1_0003, 0, 32);
    data.extend(pattern_bytes(3, 32, 32));

    let runs = encode(&data, SEED, &home(&[3, 0x1_0003]));

    assert_eq!(
        runs,
        vec![
            Run::Pattern {
                id: 0x1_0003,
                shift: 0,
                len: 32
            },
            Run::Pattern {
                id: 3,
                shift: 0,
                len: 32
            },
        ]
    );
}

#[test]
fn a_pattern_moved_by_a_collapse_is_found_with_its_shift() {
    // Pattern 4 written at words 10..14, then a collapse range moved it 10 words down:
    // at word w the file holds pattern 4's word w + 10.
    let data = pattern_bytes(4, 80, 32);
    let moved = Source { id: 4, shift: -10 };

    let runs = encode(&data, SEED, &[Source::at_home(4), moved]);

    assert_eq!(
        runs,
        vec![Run::Pattern {
            id: 4,
            shift: -10,
            len: 32
        }]
    );
    assert_eq!(decode(&runs, SEED, 32).unwrap(), data);
}

#[test]
fn a_pattern_run_off_the_word_grid_is_refused() {
    let runs = vec![
        Run::Hex { hex: "01".into() },
        Run::Pattern {
            id: 1,
            shift: 0,
            len: 8,
        },
    ];

    assert_eq!(
        decode(&runs, SEED, 9),
        Err(DecodeError::Unaligned { at: 1, len: 8 })
    );
}

#[test]
fn an_empty_file_is_no_run() {
    assert_eq!(encode(&[], SEED, &home(&[1])), Vec::<Run>::new());
    assert_eq!(decode(&[], SEED, 0).unwrap(), Vec::<u8>::new());
}

#[test]
fn runs_that_do_not_add_up_to_the_size_are_refused() {
    let runs = vec![
        Run::Zero { len: 8 },
        Run::Pattern {
            id: 1,
            shift: 0,
            len: 8,
        },
    ];

    assert_eq!(
        decode(&runs, SEED, 12),
        Err(DecodeError::Length { got: 16, size: 12 })
    );
    assert_eq!(
        decode(&runs, SEED, 20),
        Err(DecodeError::Length { got: 16, size: 20 })
    );
}

#[test]
fn a_hostile_length_is_refused_before_allocating() {
    let runs = vec![Run::Zero { len: u64::MAX }, Run::Zero { len: u64::MAX }];

    assert!(matches!(
        decode(&runs, SEED, 4096),
        Err(DecodeError::Length { .. })
    ));
    assert_eq!(
        decode(&[], SEED, u64::MAX),
        Err(DecodeError::TooLarge(u64::MAX))
    );
}

#[test]
fn bad_hex_is_refused() {
    let odd = vec![Run::Hex { hex: "abc".into() }];
    let not_hex = vec![Run::Hex { hex: "zz".into() }];

    assert!(decode(&odd, SEED, 1).is_err());
    assert!(matches!(
        decode(&not_hex, SEED, 1),
        Err(DecodeError::Hex(_))
    ));
}

/// A file built the way workloads build them: pieces of patterns at their own offsets,
/// zeros and arbitrary bytes, at arbitrary (unaligned) boundaries.
fn file() -> impl Strategy<Value = (Vec<u8>, Vec<Source>)> {
    let source = (1u32..6, -3i64..3).prop_map(|(id, shift)| Source { id, shift });
    let piece = prop_oneof![
        (source.clone(), 1usize..300).prop_map(|(src, n)| (Some(src), n, Vec::new())),
        (1usize..100).prop_map(|n| (None, n, vec![0u8; n])),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|b| (None, b.len(), b)),
    ];
    (
        proptest::collection::vec(piece, 0..12),
        proptest::collection::vec(source, 0..6),
    )
        .prop_map(|(pieces, sources)| {
            let mut data: Vec<u8> = Vec::new();
            for (src, n, bytes) in pieces {
                match src {
                    Some(src) => {
                        for _ in 0..n {
                            let at = data.len() as u64;
                            data.push(src.word(SEED, at / 8)[(at % 8) as usize]);
                        }
                    }
                    None => data.extend(bytes),
                }
            }
            (data, sources)
        })
}

proptest! {
    /// Whatever the bytes and whatever ids the encoder is told about, decoding gives the
    /// bytes back.
    #[test]
    fn decode_undoes_encode((data, sources) in file()) {
        let runs = encode(&data, SEED, &sources);
        prop_assert_eq!(decode(&runs, SEED, data.len() as u64).unwrap(), data);
    }

    /// The runs survive the JSON line they travel in.
    #[test]
    fn runs_survive_json((data, sources) in file()) {
        let runs = encode(&data, SEED, &sources);
        let back: Vec<Run> = serde_json::from_str(&serde_json::to_string(&runs).unwrap()).unwrap();
        prop_assert_eq!(back, runs);
    }
}
