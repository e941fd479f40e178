//! `powercut workload mix`: what the generator makes and where the campaign cuts the power,
//! per op kind: how often each kind is generated over a seed list and how many crash points
//! fall right after it (and inside it), with the campaign's own crash plan.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use workloads::generator::{generate, Profile};
use workloads::SYNC_LABELS;

use crate::config::{parse_seeds, CrashPointConfig};
use crate::trial::plan::plan;

/// Counts for one op label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCount {
    /// Ops of this kind generated.
    pub generated: usize,
    /// Crash points right after one of them (`after` points of the plan).
    pub after: usize,
    /// Crash points inside one of them.
    pub inside: usize,
}

/// The mix of a profile over a seed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Workloads generated.
    pub workloads: usize,
    /// Ops generated in all.
    pub ops: usize,
    /// Per op label (`fsync`, `fallocate punch_hole`, `pwritev2 dsync`, …).
    pub kinds: BTreeMap<String, KindCount>,
}

impl Mix {
    /// The sync-call labels with fewer than `min` crash points right after them.
    pub fn short_of(&self, min: usize) -> Vec<&'static str> {
        SYNC_LABELS
            .iter()
            .copied()
            .filter(|l| self.kinds.get(*l).map_or(0, |c| c.after) < min)
            .collect()
    }
}

/// Generate the workload of every seed under `profile` and plan its crash points as a
/// campaign with `cfg` does (the plan of a seed is seeded by the seed).
pub fn mix(profile: Profile, seeds: &[u64], cfg: &CrashPointConfig) -> Mix {
    let mut m = Mix {
        workloads: 0,
        ops: 0,
        kinds: BTreeMap::new(),
    };
    for &seed in seeds {
        let w = generate(seed, profile);
        let p = plan(&w, cfg, seed);
        m.workloads += 1;
        m.ops += w.ops.len();
        for (k, label) in w.labels().into_iter().enumerate() {
            let c = m.kinds.entry(label).or_default();
            c.generated += 1;
            c.after += usize::from(p.after.contains(&k));
            c.inside += usize::from(p.inside.contains(&k));
        }
    }
    m
}

/// The seed list of `--seeds`: a count `N` (seeds 1 to N), or a list as in a campaign
/// config (`A..B`, `A..=B`, `1,2,7`).
pub fn seeds_arg(s: &str) -> Result<Vec<u64>, String> {
    let t = s.trim();
    if t.contains("..") || t.contains(',') {
        return parse_seeds(t);
    }
    match t.parse::<u64>() {
        Ok(0) => Err("--seeds 0 names no seeds".into()),
        Ok(n) => parse_seeds(&format!("1..={n}")),
        Err(_) => Err(format!(
            "`{t}` is not a seed count or list (use 100, \"1..5\" or \"1,2,7\")"
        )),
    }
}

/// The table `workload mix` prints.
pub fn render(
    m: &Mix,
    profile: Profile,
    seeds: &str,
    cfg: &CrashPointConfig,
    min: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "profile {profile}, seeds {seeds}: {} workloads, {} ops; crash plan: after every sync call {}, {} random after, {} inside",
        m.workloads,
        m.ops,
        if cfg.after_durability_ops { "yes" } else { "no" },
        cfg.random_after,
        cfg.inside
    );
    let _ = writeln!(
        out,
        "file systems: ext4 and xfs alike (neither the generator nor the crash plan depends on the file system)"
    );
    let _ = writeln!(
        out,
        "{:<26} {:>9} {:>7} {:>7}",
        "op", "generated", "after", "inside"
    );
    for (label, c) in &m.kinds {
        let mark = if SYNC_LABELS.contains(&label.as_str()) {
            " *"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>7} {:>7}{mark}",
            label, c.generated, c.after, c.inside
        );
    }
    for l in SYNC_LABELS.iter().filter(|l| !m.kinds.contains_key(**l)) {
        let _ = writeln!(out, "{:<26} {:>9} {:>7} {:>7} *", l, 0, 0, 0);
    }
    let short = m.short_of(min);
    if short.is_empty() {
        let _ = writeln!(
            out,
            "* sync calls: each has at least {min} crash points right after it"
        );
    } else {
        let _ = writeln!(
            out,
            "* sync calls: fewer than {min} crash points right after: {}",
            short.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sync_call_gets_five_crash_points_per_hundred_default_seeds() {
        let seeds = seeds_arg("100").expect("count");
        let m = mix(Profile::Default, &seeds, &CrashPointConfig::default());

        assert_eq!(m.workloads, 100);
        assert_eq!(m.short_of(5), Vec::<&str>::new());
        for mode in ["collapse_range", "insert_range"] {
            let c = m.kinds.get(&format!("fallocate {mode}")).copied();
            assert!(c.is_some_and(|c| c.generated > 0), "{mode}: {c:?}");
        }
    }

    #[test]
    fn the_smoke_campaigns_seed_list_reaches_every_sync_call() {
        for file in ["smoke.yaml", "cache-smoke.yaml", "xfs-smoke.yaml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../ci")
                .join(file);
            let cfg = crate::config::CampaignConfig::load(&path).expect("config");
            let profile: Profile = cfg.profile.parse().expect("profile");
            let m = mix(profile, &cfg.seed_list(), &cfg.crash_points);

            assert_eq!(m.short_of(1), Vec::<&str>::new(), "{file}");
        }
    }

    #[test]
    fn counts_match_the_plan_of_each_seed() {
        let cfg = CrashPointConfig::default();
        let m = mix(Profile::Smoke, &[3], &cfg);
        let w = generate(3, Profile::Smoke);
        let p = plan(&w, &cfg, 3);

        assert_eq!(m.ops, w.ops.len());
        let after: usize = m.kinds.values().map(|c| c.after).sum();
        let inside: usize = m.kinds.values().map(|c| c.inside).sum();
        assert_eq!(after, p.after.len());
        assert_eq!(inside, p.inside.len());
    }

    #[test]
    fn seed_arguments_are_counts_or_lists() {
        assert_eq!(seeds_arg("3"), Ok(vec![1, 2, 3]));
        assert_eq!(seeds_arg("4..6"), Ok(vec![4, 5]));
        assert_eq!(seeds_arg("2,9"), Ok(vec![2, 9]));
        assert!(seeds_arg("0").is_err());
        assert!(seeds_arg("x").unwrap_err().contains("`x`"));
    }
}
