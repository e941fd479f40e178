//! Which seeds a campaign runs: the configured list, and with a time budget, more seeds
//! after it until the budget is spent.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Hands out seeds to workers.
#[derive(Debug)]
pub struct SeedSource {
    listed: Vec<u64>,
    next: usize,
    /// The next seed past the list (None once `u64::MAX` was handed out).
    extra: Option<u64>,
    done: BTreeSet<u64>,
    deadline: Option<Instant>,
    /// A shard's filter on the seeds past the list (`None`: every one).
    drawn: Option<crate::config::shard::DrawnShare>,
}

impl SeedSource {
    /// Seeds from `listed` (skipping `done` ones); with `budget`, then `max(listed)+1, …`
    /// until the budget ends (a budget too long for the clock is cut to
    /// [`crate::config::limits::MAX_TIME_BUDGET`]).
    pub fn new(listed: Vec<u64>, done: BTreeSet<u64>, budget: Option<Duration>) -> Self {
        let extra = listed.iter().max().map_or(Some(0), |m| m.checked_add(1));
        let now = Instant::now();
        SeedSource {
            listed,
            next: 0,
            extra,
            done,
            deadline: budget.and_then(|b| {
                now.checked_add(b)
                    .or_else(|| now.checked_add(crate::config::limits::MAX_TIME_BUDGET))
            }),
            drawn: None,
        }
    }

    /// Past the list, draw only the seeds of a shard ([`crate::config::shard`]): from the first
    /// seed past the campaign's whole list, those `drawn` owns.
    pub fn sharded(mut self, drawn: crate::config::shard::DrawnShare) -> Self {
        self.extra = drawn.first;
        self.drawn = Some(drawn);
        self
    }

    /// The next listed seed not done yet, or `None` when the list is exhausted or the
    /// budget spent.
    pub fn next_listed(&mut self) -> Option<u64> {
        while let Some(&s) = self.listed.get(self.next) {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            self.next += 1;
            if !self.done.contains(&s) {
                return Some(s);
            }
        }
        None
    }

    /// The next seed to run, or `None` when the list is exhausted (and the budget, if any,
    /// is spent).
    pub fn next_seed(&mut self) -> Option<u64> {
        if let Some(s) = self.next_listed() {
            return Some(s);
        }
        if self.next < self.listed.len() {
            return None;
        }
        let d = self.deadline?;
        loop {
            if Instant::now() >= d {
                return None;
            }
            let s = self.extra?;
            self.extra = s.checked_add(1);
            let ours = self.drawn.is_none_or(|d| d.owns(s));
            if ours && !self.done.contains(&s) {
                return Some(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_beyond_the_clock_does_not_panic() {
        let mut s = SeedSource::new(vec![1], BTreeSet::new(), Some(Duration::MAX));

        let seeds = (s.next_seed(), s.next_seed());

        assert_eq!(seeds, (Some(1), Some(2)));
    }

    #[test]
    fn seeds_past_the_list_end_at_u64_max() {
        let mut s = SeedSource::new(
            vec![u64::MAX - 1],
            BTreeSet::new(),
            Some(Duration::from_secs(60)),
        );

        let seeds = (s.next_seed(), s.next_seed(), s.next_seed());

        assert_eq!(seeds, (Some(u64::MAX - 1), Some(u64::MAX), None));
    }

    #[test]
    fn listed_seeds_skip_finished_ones() {
        let mut s = SeedSource::new(vec![1, 2, 3], [2].into_iter().collect(), None);
        assert_eq!(
            (s.next_seed(), s.next_seed(), s.next_seed()),
            (Some(1), Some(3), None)
        );
    }

    #[test]
    fn a_budget_continues_past_the_list_until_spent() {
        let mut s = SeedSource::new(vec![5], BTreeSet::new(), Some(Duration::from_secs(60)));
        assert_eq!(
            (s.next_seed(), s.next_seed(), s.next_seed()),
            (Some(5), Some(6), Some(7))
        );
        let mut spent = SeedSource::new(vec![5], BTreeSet::new(), Some(Duration::ZERO));
        assert_eq!(spent.next_seed(), None);
    }
}
