//! `workers: auto` / `checkers: auto`: how many workload and checker VMs keep both cores
//! busy, from what the first item's run and checks measured. Pure: the coordinator feeds it
//! times and starts the VMs it asks for.
//!
//! Each VM keeps about one core busy while it works (TCG), so a campaign moves at most
//! `cores / (run + check)` items per second, where `run` and `check` are one item's
//! run time and the sum of its checks' times. It gets there when the workload VMs can
//! produce that rate (`workers ≥ cores · run / (run + check)`) and the checker VMs can take
//! it (`checkers ≥ cores · check / (run + check)`): each count rounded up, at least one,
//! within the machine's memory.

use std::time::Duration;

/// What the first item measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// Its run (VM start, ops, crash images).
    pub run: Duration,
    /// Its checks, summed.
    pub check: Duration,
}

/// The machine and the fixed counts of the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cores.
    pub cores: usize,
    /// Most VMs memory allows at once (both kinds).
    pub max_vms: usize,
    /// `workers` when it is a number.
    pub fixed_workers: Option<usize>,
    /// `checkers` when it is a number.
    pub fixed_checkers: Option<usize>,
}

/// (workload VMs, checker VMs) for `m` within `limits`.
pub fn split(m: Measured, limits: Limits) -> (usize, usize) {
    let cores = limits.cores.max(1) as f64;
    let (run, check) = (m.run.as_secs_f64(), m.check.as_secs_f64());
    let total = run + check;
    let share = |part: f64| {
        if total > 0.0 {
            ((cores * part / total).ceil() as usize).max(1)
        } else {
            1
        }
    };
    let mut workers = limits.fixed_workers.unwrap_or_else(|| share(run));
    let mut checkers = limits.fixed_checkers.unwrap_or_else(|| share(check));
    // Within memory: take VMs away from the kind that has more, never below one, never
    // from a fixed count.
    let max = limits.max_vms.max(2);
    while workers + checkers > max {
        let can_w = limits.fixed_workers.is_none() && workers > 1;
        let can_c = limits.fixed_checkers.is_none() && checkers > 1;
        match (can_w, can_c) {
            (true, true) if workers >= checkers => workers -= 1,
            (_, true) => checkers -= 1,
            (true, false) => workers -= 1,
            (false, false) => break,
        }
    }
    (workers, checkers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cores: usize, max_vms: usize) -> Limits {
        Limits {
            cores,
            max_vms,
            fixed_workers: None,
            fixed_checkers: None,
        }
    }

    fn secs(run: u64, check: u64) -> Measured {
        Measured {
            run: Duration::from_secs(run),
            check: Duration::from_secs(check),
        }
    }

    #[test]
    fn checks_three_times_the_run_on_two_cores_want_two_checkers() {
        // cores · run / total = 2 · 5 / 22 = 0.45 → 1; 2 · 17 / 22 = 1.55 → 2.
        assert_eq!(split(secs(5, 17), limits(2, 24)), (1, 2));
    }

    #[test]
    fn an_even_balance_on_two_cores_is_one_of_each() {
        assert_eq!(split(secs(4, 4), limits(2, 24)), (1, 1));
    }

    #[test]
    fn runs_that_dominate_on_eight_cores_get_most_vms() {
        // 8 · 30 / 40 = 6; 8 · 10 / 40 = 2.
        assert_eq!(split(secs(30, 10), limits(8, 24)), (6, 2));
    }

    #[test]
    fn memory_takes_vms_from_the_larger_kind() {
        // Wanted (6, 2); 5 VMs fit.
        assert_eq!(split(secs(30, 10), limits(8, 5)), (3, 2));
    }

    #[test]
    fn a_fixed_count_is_kept_and_only_the_auto_one_moves() {
        let l = Limits {
            fixed_workers: Some(1),
            ..limits(8, 4)
        };
        // Wanted checkers: 8 · 30 / 40 = 6; memory leaves 3 beside the fixed worker.
        assert_eq!(split(secs(10, 30), l), (1, 3));
    }

    #[test]
    fn nothing_measured_is_one_of_each() {
        assert_eq!(split(Measured::default(), limits(2, 24)), (1, 1));
    }
}
