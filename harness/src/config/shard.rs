//! Shards (`--shard K/N`, `shard:` in the config): which items of a campaign shard K of N
//! runs, so N machines (CI runners) can split one campaign and `powercut report merge`
//! can put their run directories back together.
//!
//! The rule: a campaign's items form one sequence — its workload inputs in order, then its
//! listed seeds in list order (a seed listed twice counts once, where it first appears),
//! then, under a time budget, the drawn seeds `max(listed) + 1, + 2, …`. On kernel `i` of a
//! kernel matrix (0 for a campaign on one kernel), the item at position `p` of that sequence
//! belongs to shard `((p + i) mod N) + 1`. So every (kernel, item) cell belongs to exactly
//! one shard, every shard gets an even share of the listed items of each kernel (±1), and a
//! drawn seed's shard is known without knowing how far the other shards got.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Most shards one campaign may be split into.
pub const MAX_SHARDS: u32 = 1000;

/// Shard `index` of `count` (1 ≤ index ≤ count ≤ [`MAX_SHARDS`]); written `K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard that is not `K/N` with 1 ≤ K ≤ N ≤ [`MAX_SHARDS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a shard: {why} (write K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}, e.g. 2/4)")]
pub struct ShardError {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

impl Shard {
    /// Shard `index` (1-based) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        let err = |why: String| ShardError {
            text: format!("{index}/{count}"),
            why,
        };
        if count == 0 || count > MAX_SHARDS {
            return Err(err(format!("N must be 1 to {MAX_SHARDS}")));
        }
        if index == 0 || index > count {
            return Err(err(format!("K must be 1 to N ({count})")));
        }
        Ok(Shard { index, count })
    }

    /// K, 1-based.
    pub fn index(self) -> u32 {
        self.index
    }

    /// N.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Does this shard own the item at `position` of the campaign's item sequence on the
    /// kernel at `kernel` of a matrix (0 without one)?
    pub fn owns(self, position: u64, kernel: usize) -> bool {
        let n = u64::from(self.count);
        let k = u64::try_from(kernel).unwrap_or(u64::MAX) % n;
        (position % n + k) % n == u64::from(self.index - 1)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let err = |why: &str| ShardError {
            text: s.to_owned(),
            why: why.to_owned(),
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(|| err("no `/`"))?;
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| err(&format!("`{}` is not a number", x.trim())))
        };
        let (k, n) = (num(k)?, num(n)?);
        Shard::new(k, n).map_err(|e| err(&e.why))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Deserialized from `"K/N"` inside the deserializer's visit, so a YAML error names the
/// field and line.
impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shard, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Shard;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shard \"K/N\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Shard, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

/// A shard as people read it: `K/N`, or `none` for a whole campaign.
pub fn describe(shard: Option<Shard>) -> String {
    shard.map_or_else(|| "none (the whole campaign)".to_owned(), |s| s.to_string())
}

/// The items one shard runs on one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Its workload inputs, in order.
    pub workloads: Vec<String>,
    /// Its listed seeds, in list order.
    pub seeds: Vec<u64>,
    /// Which drawn seeds (past the list, under a time budget) are its own; `None`: all.
    pub drawn: Option<DrawnShare>,
}

/// Which seeds past the list a shard draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawnShare {
    shard: Shard,
    kernel: usize,
    /// The first seed past the list (`None`: the list reaches `u64::MAX`).
    pub first: Option<u64>,
    /// Its position in the item sequence.
    position: u64,
}

impl DrawnShare {
    /// Is `seed` (a seed past the list) this shard's?
    pub fn owns(&self, seed: u64) -> bool {
        match self.first {
            Some(first) if seed >= first => {
                let offset = seed - first;
                // Positions wrap past u64::MAX only for seeds no budget reaches; stay total.
                let p = self.position.wrapping_add(offset);
                self.shard.owns(p, self.kernel)
            }
            _ => false,
        }
    }
}

/// The share of `shard` on kernel `kernel` of a campaign with these workload inputs and
/// listed seeds (see the module doc). Without a shard, everything, unchanged.
pub fn share(workloads: &[String], seeds: &[u64], shard: Option<Shard>, kernel: usize) -> Share {
    let Some(shard) = shard else {
        return Share {
            workloads: workloads.to_vec(),
            seeds: seeds.to_vec(),
            drawn: None,
        };
    };
    let mut seen = BTreeSet::new();
    let unique: Vec<u64> = seeds.iter().copied().filter(|s| seen.insert(*s)).collect();
    let w = workloads.len() as u64;
    let first = match seeds.iter().max() {
        Some(m) => m.checked_add(1),
        None => Some(0),
    };
    Share {
        workloads: workloads
            .iter()
            .enumerate()
            .filter(|(p, _)| shard.owns(*p as u64, kernel))
            .map(|(_, n)| n.clone())
            .collect(),
        seeds: unique
            .iter()
            .enumerate()
            .filter(|(p, _)| shard.owns(w + *p as u64, kernel))
            .map(|(_, s)| *s)
            .collect(),
        drawn: Some(DrawnShare {
            shard,
            kernel,
            first,
            position: w + unique.len() as u64,
        }),
    }
}

impl Share {
    /// How many listed items (workloads and seeds) it has.
    #[cfg(test)]
    pub fn listed(&self) -> usize {
        self.workloads.len() + self.seeds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shard(k: u32, n: u32) -> Shard {
        Shard::new(k, n).expect("valid shard")
    }

    #[test]
    fn shards_parse_and_print_as_k_of_n() {
        let ok: Shard = " 2/4 ".parse().expect("parses");
        let bad: Vec<String> = [
            "0/2", "3/2", "1/0", "1/1001", "2", "a/3", "1/-2", "", "1/2/3",
        ]
        .iter()
        .map(|s| s.parse::<Shard>().expect_err(s).to_string())
        .collect();

        assert_eq!(
            (ok.index(), ok.count(), ok.to_string()),
            (2, 4, "2/4".into())
        );
        assert!(
            bad[0].contains("`0/2` is not a shard: K must be 1 to N"),
            "{}",
            bad[0]
        );
        assert!(bad[1].contains("K must be 1 to N (2)"), "{}", bad[1]);
        assert!(bad[2].contains("N must be 1 to 1000"), "{}", bad[2]);
        assert!(bad[3].contains("N must be 1 to 1000"), "{}", bad[3]);
        assert!(bad[4].contains("no `/`"), "{}", bad[4]);
        assert!(bad[5].contains("`a` is not a number"), "{}", bad[5]);
        assert!(bad.iter().all(|m| m.contains("e.g. 2/4")));
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            "\"2/4\"",
            "serialized as K/N"
        );
        assert!(serde_json::from_str::<Shard>("\"5/4\"").is_err());
    }

    #[test]
    fn one_shard_of_one_is_the_whole_campaign_and_no_shard_changes_nothing() {
        let w = vec!["a".to_owned()];
        let all = share(&w, &[3, 1, 3], None, 0);
        let one = share(&w, &[3, 1, 3], Some(shard(1, 1)), 2);

        assert_eq!(all.seeds, [3, 1, 3], "unsharded: unchanged");
        assert_eq!((one.workloads, one.seeds), (w, vec![3, 1]));
        assert!(one.drawn.expect("drawn").owns(4));
    }

    #[test]
    fn listed_items_alternate_and_drawn_seeds_go_on_from_the_list() {
        let w = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let s1 = share(&w, &[1, 2, 3, 4], Some(shard(1, 2)), 0);
        let s2 = share(&w, &[1, 2, 3, 4], Some(shard(2, 2)), 0);
        let d1 = s1.drawn.expect("drawn");
        let d2 = s2.drawn.expect("drawn");

        // Positions: a0 b1 c2 1:3 2:4 3:5 4:6, then 5:7 6:8 …
        assert_eq!(
            (s1.workloads, s1.seeds),
            (vec!["a".into(), "c".into()], vec![2, 4])
        );
        assert_eq!((s2.workloads, s2.seeds), (vec!["b".into()], vec![1, 3]));
        assert_eq!((d1.owns(6), d1.owns(5), d1.owns(4)), (true, false, false));
        assert_eq!((d2.owns(5), d2.owns(6), d2.owns(3)), (true, false, false));
    }

    #[test]
    fn a_kernel_matrix_rotates_the_shards_over_the_kernels() {
        let k0 = share(&[], &[7], Some(shard(1, 3)), 0);
        let k1 = share(&[], &[7], Some(shard(2, 3)), 1);
        let k2 = share(&[], &[7], Some(shard(3, 3)), 2);
        let k1_other = share(&[], &[7], Some(shard(1, 3)), 1);

        assert_eq!((k0.seeds, k1.seeds, k2.seeds), (vec![7], vec![7], vec![7]));
        assert!(k1_other.seeds.is_empty());
    }

    #[test]
    fn no_seeds_past_u64_max_are_drawn() {
        let s = share(&[], &[u64::MAX], Some(shard(1, 2)), 0);

        assert_eq!(s.drawn.expect("drawn").first, None);
        assert!(!s.drawn.expect("drawn").owns(u64::MAX));
    }

    proptest! {
        /// Every listed item and every drawn seed is in exactly one shard, on every kernel;
        /// the listed ones evenly (±1); and the split depends on nothing but its inputs.
        #[test]
        fn every_item_is_in_exactly_one_shard(
            workloads in 0usize..6,
            seeds in proptest::collection::vec(0u64..50, 0..40),
            n in 1u32..9,
            kernel in 0usize..4,
            drawn in 0u64..200,
        ) {
            let names: Vec<String> = (0..workloads).map(|i| format!("w{i}")).collect();
            let shares: Vec<Share> = (1..=n)
                .map(|k| share(&names, &seeds, Some(shard(k, n)), kernel))
                .collect();
            let again: Vec<Share> = (1..=n)
                .map(|k| share(&names, &seeds, Some(shard(k, n)), kernel))
                .collect();
            prop_assert_eq!(&shares, &again);

            let mut unique: Vec<u64> = seeds.clone();
            unique.sort_unstable();
            unique.dedup();
            let mut all_seeds: Vec<u64> = shares.iter().flat_map(|s| s.seeds.clone()).collect();
            all_seeds.sort_unstable();
            prop_assert_eq!(all_seeds, unique.clone());
            let mut all_names: Vec<String> =
                shares.iter().flat_map(|s| s.workloads.clone()).collect();
            all_names.sort();
            let mut sorted_names = names.clone();
            sorted_names.sort();
            prop_assert_eq!(all_names, sorted_names);
            let sizes: Vec<usize> = shares.iter().map(Share::listed).collect();
            let (lo, hi) = (sizes.iter().min().copied(), sizes.iter().max().copied());
            prop_assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "{:?}", sizes);

            let first = unique.last().map_or(0, |m| m + 1);
            for seed in first..first + drawn {
                let owners = shares
                    .iter()
                    .filter(|s| s.drawn.is_some_and(|d| d.owns(seed)))
                    .count();
                prop_assert_eq!(owners, 1, "drawn seed {}", seed);
            }
            for seed in &unique {
                prop_assert!(shares.iter().all(|s| !s.drawn.is_some_and(|d| d.owns(*seed))));
            }
        }
    }
}
