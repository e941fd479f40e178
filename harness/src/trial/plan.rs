//! Where to cut the power in one run (pure): after every sync call (durability ops and
//! the sync calls that promise nothing), after seeded
//! random ops, and inside seeded random ops.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use workloads::Workload;

use workloads::oracle::CrashPoint;

use crate::records::CrashPointConfig;

/// Crash points planned for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashPlan {
    /// Take an image after these ops complete (the agent stops at a barrier).
    pub after: BTreeSet<usize>,
    /// Take an image a short time after these ops start.
    pub inside: BTreeSet<usize>,
    /// Delay from op start to the cut, microseconds, per inside point (same order).
    pub inside_delay_us: Vec<u64>,
    /// Cache model: build only these crash states (triage), not the whole cut plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache_model::CutSelector>,
}

impl CrashPlan {
    /// Ops after which the agent must stop: every `after` point, and every `inside` point
    /// (so the next op cannot start before the inside image is taken).
    pub fn barriers(&self) -> Vec<usize> {
        self.after.union(&self.inside).copied().collect()
    }

    /// Number of crash images this plan takes.
    pub fn images(&self) -> usize {
        self.after.len() + self.inside.len()
    }
}

/// Plan crash points for `workload` run with `seed`.
pub fn plan(workload: &Workload, cfg: &CrashPointConfig, seed: u64) -> CrashPlan {
    let n = workload.ops.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x706f_7765_7263_7574);
    let mut after = BTreeSet::new();
    if cfg.after_durability_ops {
        after.extend(
            workload
                .crash_point_after()
                .into_iter()
                .enumerate()
                .filter(|&(_, wants)| wants)
                .map(|(k, _)| k),
        );
    }
    let all: Vec<usize> = (0..n).collect();
    let others: Vec<usize> = all.iter().copied().filter(|k| !after.contains(k)).collect();
    after.extend(others.choose_multiple(&mut rng, cfg.random_after.min(others.len())));
    let inside: BTreeSet<usize> = all
        .choose_multiple(&mut rng, cfg.inside.min(n))
        .copied()
        .collect();
    let inside_delay_us = inside
        .iter()
        .map(|_| rand::Rng::gen_range(&mut rng, 0..2_000))
        .collect();
    CrashPlan {
        after,
        inside,
        inside_delay_us,
        cache: None,
    }
}

/// A crash plan with exactly one crash point (`delay_us` for an inside-op point).
pub fn single_point_plan(point: CrashPoint, delay_us: u64) -> CrashPlan {
    let mut plan = CrashPlan::default();
    match point {
        CrashPoint::AfterOp(k) => {
            plan.after.insert(k);
        }
        CrashPoint::InsideOp(k) => {
            plan.inside.insert(k);
            plan.inside_delay_us.push(delay_us);
        }
    }
    plan
}

/// The delay from op start to the cut a campaign used for an inside-op crash point at op
/// `k`: its seeded plan for this workload, when it had an inside point there; else 0.
pub fn inside_delay_us(workload: &Workload, cfg: &CrashPointConfig, seed: u64, k: usize) -> u64 {
    let p = plan(workload, cfg, seed);
    p.inside
        .iter()
        .zip(&p.inside_delay_us)
        .find(|(i, _)| **i == k)
        .map_or(0, |(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::Op;

    fn wl() -> Workload {
        Workload {
            name: "t".into(),
            seed: 1,
            profile: None,
            ops: vec![
                Op::create("f0"),
                Op::Pwrite {
                    file: "f0".into(),
                    off: 0,
                    len: 10,
                    pattern: None,
                },
                Op::Fsync { file: "f0".into() },
                Op::Pwrite {
                    file: "f0".into(),
                    off: 0,
                    len: 10,
                    pattern: None,
                },
                Op::Close { file: "f0".into() },
            ],
        }
    }

    #[test]
    fn every_durability_op_gets_a_crash_point() {
        let p = plan(
            &wl(),
            &CrashPointConfig {
                after_durability_ops: true,
                random_after: 0,
                inside: 0,
            },
            3,
        );
        assert_eq!(p.after.into_iter().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn plans_are_deterministic_and_bounded() {
        let cfg = CrashPointConfig {
            after_durability_ops: true,
            random_after: 2,
            inside: 1,
        };
        let a = plan(&wl(), &cfg, 9);
        assert_eq!(a, plan(&wl(), &cfg, 9));
        assert_eq!(a.after.len(), 3);
        assert_eq!(a.inside.len(), 1);
        assert!(a.barriers().iter().all(|&k| k < 5));
    }

    #[test]
    fn single_point_plans_take_one_image() {
        let after = single_point_plan(CrashPoint::AfterOp(4), 0);
        let inside = single_point_plan(CrashPoint::InsideOp(2), 700);

        assert_eq!(after.images(), 1);
        assert_eq!(after.barriers(), vec![4]);
        assert_eq!(inside.images(), 1);
        assert_eq!(inside.barriers(), vec![2]);
        assert_eq!(inside.inside_delay_us, vec![700]);
    }

    #[test]
    fn inside_delays_come_from_the_campaign_plan() {
        let w = workloads::generator::generate(3, workloads::generator::Profile::Smoke);
        let cfg = CrashPointConfig::default();
        let p = plan(&w, &cfg, 3);
        let (&k, &d) = p
            .inside
            .iter()
            .zip(&p.inside_delay_us)
            .next()
            .expect("the default config plans one inside point");

        assert_eq!(inside_delay_us(&w, &cfg, 3, k), d);
        assert_eq!(inside_delay_us(&w, &cfg, 3, w.ops.len() + 5), 0);
    }
}
