//! Deriving a new workload from corpus entries, pure: the mutation operators (insert,
//! delete, replace, swap and move ops, change an offset or a length, splice two workloads)
//! and [`derive`], which stacks a few of them and keeps the result only if it passes the
//! validation `powercut workload check` applies (the YAML parsed back as a spec, then the
//! semantic check and the pmem fit); an invalid derivation is drawn again, a bounded number
//! of times.

use rand::seq::SliceRandom;
use rand::Rng;
use workloads::{Op, Workload};

/// Derivations drawn before [`derive`] gives up.
pub const MAX_ATTEMPTS: usize = 32;

/// Most consecutive donor ops one insertion brings.
pub const MAX_INSERTED: usize = 4;

/// Most operators stacked in one derivation.
pub const MAX_STACKED: usize = 4;

/// Largest offset, length or size a mutation writes (2 MiB and a bit past it reach the
/// PMD paths of a DAX file).
pub const MAX_MUTATED_BYTES: u64 = 4 << 20;

/// A mutation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// One to [`MAX_INSERTED`] consecutive ops of the donor inserted at a random place (a
    /// run keeps the ops that open or map a file with the ops that use it).
    Insert,
    /// A random op removed.
    Delete,
    /// A random op replaced by an op of the donor.
    Replace,
    /// Two ops swapped.
    Swap,
    /// One op moved elsewhere.
    Move,
    /// An offset, length or size changed to a value near a page, a cache line or 2 MiB.
    Resize,
    /// The parent's ops up to a point, then the other entry's from a point.
    Splice,
}

impl Mutation {
    /// Every operator.
    pub const ALL: [Mutation; 7] = [
        Mutation::Insert,
        Mutation::Delete,
        Mutation::Replace,
        Mutation::Swap,
        Mutation::Move,
        Mutation::Resize,
        Mutation::Splice,
    ];

    /// Its name, as the run directory's `workloads.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::Insert => "insert",
            Mutation::Delete => "delete",
            Mutation::Replace => "replace",
            Mutation::Swap => "swap",
            Mutation::Move => "move",
            Mutation::Resize => "resize",
            Mutation::Splice => "splice",
        }
    }
}

/// What a derivation draws from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The parent (a corpus entry's workload).
    pub parent: &'a Workload,
    /// A second entry to splice with, if the corpus has one.
    pub other: Option<&'a Workload>,
    /// A freshly generated workload of the campaign's profile: new ops come from it.
    pub donor: &'a Workload,
}

/// Bounds of a derived workload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most ops.
    pub max_ops: usize,
    /// The pmem size its files must fit ([`workloads::spec::check_fits`]).
    pub pmem_bytes: u64,
}

/// A valid derived workload.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The workload, as parsed back from `yaml`.
    pub workload: Workload,
    /// Its YAML (what the run directory saves).
    pub yaml: String,
    /// The operators applied, in order.
    pub mutations: Vec<Mutation>,
    /// Attempts it took (1 = the first derivation was valid).
    pub attempts: usize,
}

/// No valid derivation came out of [`MAX_ATTEMPTS`] draws.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no valid derivation in {attempts} attempts (last: {last})")]
pub struct NoValidDerivation {
    /// Attempts made.
    pub attempts: usize,
    /// Why the last one was refused.
    pub last: String,
}

/// Derive a workload named `name` from `src`: one to [`MAX_STACKED`] operators, the result validated
/// ([`validated`]); redrawn up to [`MAX_ATTEMPTS`] times.
pub fn derive<R: Rng>(
    src: &Sources<'_>,
    name: &str,
    limits: Limits,
    rng: &mut R,
) -> Result<Derived, NoValidDerivation> {
    let mut last = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let mut w = src.parent.clone();
        w.name = name.to_owned();
        let n = rng.gen_range(1..=MAX_STACKED);
        let mut applied = Vec::with_capacity(n);
        for _ in 0..n {
            let m = *Mutation::ALL.choose(rng).unwrap_or(&Mutation::Resize);
            if apply(m, &mut w, src, rng) {
                applied.push(m);
            }
        }
        if applied.is_empty() || w.ops == src.parent.ops {
            last = "the operators changed nothing".into();
            continue;
        }
        if w.ops.len() > limits.max_ops {
            last = format!("{} ops, more than {}", w.ops.len(), limits.max_ops);
            continue;
        }
        match validated(&w, limits.pmem_bytes) {
            Ok((workload, yaml)) => {
                return Ok(Derived {
                    workload,
                    yaml,
                    mutations: applied,
                    attempts: attempt,
                })
            }
            Err(e) => last = e,
        }
    }
    Err(NoValidDerivation {
        attempts: MAX_ATTEMPTS,
        last,
    })
}

/// The validation of `powercut workload check` on `w`: its YAML parsed back as a workload
/// file (schema and semantic check), then the pmem fit. Returns the parsed workload and the
/// YAML, or why it was refused.
pub fn validated(w: &Workload, pmem_bytes: u64) -> Result<(Workload, String), String> {
    let yaml = serde_yaml::to_string(w).map_err(|e| e.to_string())?;
    let back = workloads::spec::parse_workload(&yaml, &w.name).map_err(|e| e.to_string())?;
    workloads::spec::check_fits(&back, pmem_bytes).map_err(|e| e.to_string())?;
    Ok((back, yaml))
}

/// Apply `m` to `w`; `false` when it does not apply (no op to delete, nothing to resize).
fn apply<R: Rng>(m: Mutation, w: &mut Workload, src: &Sources<'_>, rng: &mut R) -> bool {
    let len = w.ops.len();
    match m {
        Mutation::Insert if !src.donor.ops.is_empty() => {
            let donor = &src.donor.ops;
            let from = rng.gen_range(0..donor.len());
            let n = rng.gen_range(1..=MAX_INSERTED).min(donor.len() - from);
            let at = rng.gen_range(0..=len);
            w.ops.splice(at..at, donor[from..from + n].iter().cloned());
            true
        }
        Mutation::Delete if len > 1 => {
            w.ops.remove(rng.gen_range(0..len));
            true
        }
        Mutation::Replace if len > 0 => match src.donor.ops.choose(rng) {
            Some(op) => {
                w.ops[rng.gen_range(0..len)] = op.clone();
                true
            }
            None => false,
        },
        Mutation::Swap if len > 1 => {
            let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
            w.ops.swap(a, b);
            a != b
        }
        Mutation::Move if len > 1 => {
            let op = w.ops.remove(rng.gen_range(0..len));
            w.ops.insert(rng.gen_range(0..len), op);
            true
        }
        Mutation::Resize => resize(w, rng),
        Mutation::Splice => match src.other {
            Some(o) if !o.ops.is_empty() && len > 0 => {
                let cut = rng.gen_range(1..=len);
                let from = rng.gen_range(0..o.ops.len());
                w.ops.truncate(cut);
                w.ops.extend(o.ops[from..].iter().cloned());
                true
            }
            _ => false,
        },
        Mutation::Insert
        | Mutation::Delete
        | Mutation::Replace
        | Mutation::Swap
        | Mutation::Move => false,
    }
}

/// Change one offset, length or size of a random op that has one.
fn resize<R: Rng>(w: &mut Workload, rng: &mut R) -> bool {
    let sized: Vec<usize> = (0..w.ops.len())
        .filter(|&k| !sizes(&mut w.ops[k]).is_empty())
        .collect();
    let Some(&k) = sized.choose(rng) else {
        return false;
    };
    let mut fields = sizes(&mut w.ops[k]);
    let i = rng.gen_range(0..fields.len());
    let old = *fields[i];
    let new = interesting(old, rng);
    *fields[i] = new;
    new != old
}

/// A value near `old` or near a boundary the DAX code cares about (cache line, page, 2 MiB).
fn interesting<R: Rng>(old: u64, rng: &mut R) -> u64 {
    const PAGE: u64 = 4096;
    const PMD: u64 = 2 << 20;
    let v = match rng.gen_range(0..10) {
        0 => 0,
        1 => old.saturating_mul(2),
        2 => old / 2,
        3 => old.saturating_add(PAGE),
        4 => old.saturating_sub(PAGE),
        5 => old.next_multiple_of(PAGE),
        6 => old.saturating_add(64),
        7 => PMD,
        8 => PMD + PAGE,
        _ => PAGE * rng.gen_range(1..=16),
    };
    v.min(MAX_MUTATED_BYTES)
}

/// The offset, length and size fields of `op`.
fn sizes(op: &mut Op) -> Vec<&mut u64> {
    match op {
        Op::Pwrite { off, len, .. }
        | Op::MmapStore { off, len, .. }
        | Op::Flush { off, len, .. }
        | Op::Msync { off, len, .. }
        | Op::Fallocate { off, len, .. }
        | Op::SyncFileRange { off, len, .. }
        | Op::MsyncAsync { off, len, .. }
        | Op::MsyncInvalidate { off, len, .. }
        | Op::Pwritev2 { off, len, .. }
        | Op::UringWrite { off, len, .. } => vec![off, len],
        Op::Mmap { len, .. } => vec![len],
        Op::Ftruncate { size, .. } => vec![size],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use workloads::generator::{generate, Profile};

    use super::*;

    const LIMITS: Limits = Limits {
        max_ops: 400,
        pmem_bytes: 256 << 20,
    };

    fn derive_from(seeds: (u64, u64, u64), profile: Profile, rng: u64) -> Derived {
        let (p, o, d) = (
            generate(seeds.0, profile),
            generate(seeds.1, profile),
            generate(seeds.2, profile),
        );
        let src = Sources {
            parent: &p,
            other: Some(&o),
            donor: &d,
        };
        derive(
            &src,
            "guided-1",
            LIMITS,
            &mut ChaCha8Rng::seed_from_u64(rng),
        )
        .expect("valid")
    }

    #[test]
    fn a_derivation_is_reproducible_from_its_rng_seed() {
        let a = derive_from((1, 2, 3), Profile::Smoke, 9);
        let b = derive_from((1, 2, 3), Profile::Smoke, 9);

        assert_eq!(a.yaml, b.yaml);
        assert_eq!(a.mutations, b.mutations);
        assert_eq!(a.workload.name, "guided-1");
        assert_ne!(a.workload.ops, generate(1, Profile::Smoke).ops);
    }

    #[test]
    fn an_invalid_workload_is_refused_with_the_reason() {
        let mut w = generate(1, Profile::Smoke);
        w.ops.insert(
            0,
            Op::Fsync {
                file: "nope".into(),
            },
        );

        let err = validated(&w, LIMITS.pmem_bytes).expect_err("invalid");

        assert!(err.contains("op 0"), "{err}");
    }

    #[test]
    fn a_parent_nothing_can_change_gives_up_after_the_bounded_attempts() {
        let empty = Workload {
            name: "e".into(),
            seed: 1,
            profile: None,
            ops: vec![],
        };
        let src = Sources {
            parent: &empty,
            other: None,
            donor: &empty,
        };

        let err = derive(&src, "g", LIMITS, &mut ChaCha8Rng::seed_from_u64(1)).expect_err("none");

        assert_eq!(err.attempts, MAX_ATTEMPTS);
    }

    #[test]
    fn every_operator_applies_to_a_generated_workload() {
        let (p, o, d) = (
            generate(3, Profile::Default),
            generate(4, Profile::Default),
            generate(5, Profile::Default),
        );
        let src = Sources {
            parent: &p,
            other: Some(&o),
            donor: &d,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for m in Mutation::ALL {
            let mut w = p.clone();
            let changed = (0..8).any(|_| apply(m, &mut w, &src, &mut rng));
            assert!(changed, "{} never applied", m.name());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_derived_workload_passes_validation(
            a in 0u64..10_000, b in 0u64..10_000, d in 0u64..10_000,
            r in any::<u64>(), deep in any::<bool>(),
        ) {
            let profile = if deep { Profile::Default } else { Profile::Smoke };
            let (p, o, dn) = (generate(a, profile), generate(b, profile), generate(d, profile));
            let src = Sources { parent: &p, other: Some(&o), donor: &dn };

            let got = derive(&src, "guided-7", LIMITS, &mut ChaCha8Rng::seed_from_u64(r));

            let got = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = workloads::spec::parse_workload(&got.yaml, "again");
            prop_assert!(again.is_ok(), "{:?}", again.err());
            prop_assert!(workloads::spec::check_fits(&got.workload, LIMITS.pmem_bytes).is_ok());
            prop_assert!(got.workload.ops.len() <= LIMITS.max_ops);
            prop_assert_eq!(got.workload.name.as_str(), "guided-7");
        }
    }
}
