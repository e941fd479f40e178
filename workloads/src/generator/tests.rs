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

#[test]
fn side_streams_leave_every_main_stream_choice_as_it_was() {
    for profile in Profile::ALL {
        for seed in 0..300 {
            let with = generate_with(seed, profile, side::SideStreams::new(seed, profile));
            let main: Vec<Op> = (with.ops.iter().enumerate())
                .filter(|(k, _)| !with.side_ops.contains(k))
                .map(|(_, op)| {
                    let mut op = op.clone();
                    if let Op::Create { direct, .. } | Op::Open { direct, .. } = &mut op {
                        *direct = false;
                    }
                    op
                })
                .collect();
            let without = generate_with(seed, profile, side::SideStreams::off(seed)).ops;
            // `ensure_durability_op` may add a final fsync that a side fsync made unneeded.
            let trimmed = if without.len() == main.len() + 1 {
                &without[..main.len()]
            } else {
                &without[..]
            };
            assert_eq!(main, trimmed, "{profile} seed {seed}");
        }
    }
}
