//! Unit tests of the generator: profile names, workload naming, the open-flag stream.
use super::*;

#[test]
fn profile_names_parse_and_unknown_lists_valid_ones() {
    for p in Profile::ALL {
        assert_eq!(p.name().parse::<Profile>(), Ok(p));
    }
    let err = "huge".parse::<Profile>().expect_err("unknown").to_string();
    assert!(
        err.contains("`huge`") && err.contains("smoke, default, deep"),
        "{err}"
    );
}

#[test]
fn generated_workloads_are_named_after_seed_and_profile() {
    let w = generate(7, Profile::Smoke);
    assert_eq!(w.name, "seed-7");
    assert_eq!(w.profile.as_deref(), Some("smoke"));
    assert_eq!(w.seed, 7);
}

#[test]
fn open_flags_come_from_their_own_stream() {
    // Smoke seed 3 (the cache-model tests' seed, for its mapped stores) draws no flag
    // and keeps its ops; every seed's ops differ from a flag-free run only in flags.
    let w = generate(3, Profile::Smoke);
    assert!(w.ops.iter().all(|op| !matches!(
        op,
        Op::Create { sync, .. } | Op::Open { sync, .. } if !sync.is_none()
    )));
    assert!(w.ops.iter().any(|op| matches!(op, Op::MmapStore { .. })));
    let mut flagged = 0;
    for seed in 1..=50 {
        let w = generate(seed, Profile::Default);
        flagged += w
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Create { sync, .. } | Op::Open { sync, .. } if !sync.is_none()))
            .count();
    }
    assert!(flagged > 0);
}
