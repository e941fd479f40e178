//! Which seeds a campaign runs: the configured list, and with a time budget, more seeds
//! after it until the budget is spent. Also parsing durations like `8h`, `1h30m`, `90s`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Longest time budget: 30 days.
pub const MAX_TIME_BUDGET: Duration = Duration::from_secs(30 * 86_400);

/// Parse `8h`, `30m`, `90s`, `1h30m`, `2d` (no fractions), at most [`MAX_TIME_BUDGET`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let not_a_duration = || format!("`{s}` is not a duration (use e.g. 8h, 30m, 1h30m, 90s)");
    let too_long = || {
        format!(
            "`{s}` is longer than the limit of {} days",
            MAX_TIME_BUDGET.as_secs() / 86_400
        )
    };
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        if num.is_empty() {
            return Err(not_a_duration());
        }
        // Digits only: the one parse error left is overflow.
        let n: u64 = num.parse().map_err(|_| too_long())?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("`{s}`: unknown unit `{c}` (use s, m, h, d)")),
        };
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(too_long)?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(not_a_duration());
    }
    let d = Duration::from_secs(total);
    if d > MAX_TIME_BUDGET {
        return Err(too_long());
    }
    Ok(d)
}

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
    drawn: Option<super::shard::DrawnShare>,
}

impl SeedSource {
    /// Seeds from `listed` (skipping `done` ones); with `budget`, then `max(listed)+1, …`
    /// until the budget ends (a budget too long for the clock is cut to
    /// [`MAX_TIME_BUDGET`]).
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
                    .or_else(|| now.checked_add(MAX_TIME_BUDGET))
            }),
            drawn: None,
        }
    }

    /// Past the list, draw only the seeds of a shard ([`super::shard`]): from the first
    /// seed past the campaign's whole list, those `drawn` owns.
    pub fn sharded(mut self, drawn: super::shard::DrawnShare) -> Self {
        self.extra = drawn.first;
        self.drawn = Some(drawn);
        self
    }

    /// The next seed to run, or `None` when the list is exhausted (and the budget, if any,
    /// is spent).
    pub fn next_seed(&mut self) -> Option<u64> {
        while let Some(&s) = self.listed.get(self.next) {
            self.next += 1;
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            if !self.done.contains(&s) {
                return Some(s);
            }
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
    fn durations_parse() {
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("8").is_err());
        assert!(parse_duration("8x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_duration("30d"), Ok(MAX_TIME_BUDGET));
    }

    #[test]
    fn durations_past_the_limit_or_the_integer_range_are_errors() {
        let inputs = [
            "30d1s",
            "721h",
            "99999999999999h",
            "18446744073709551615s1s",
            "307445734561825861m",
            "99999999999999999999999999s",
        ];

        let results: Vec<_> = inputs.iter().map(|s| parse_duration(s)).collect();

        for (input, r) in inputs.iter().zip(&results) {
            let msg = r.as_ref().expect_err(input);
            assert!(
                msg.contains("longer than the limit of 30 days"),
                "{input}: {msg}"
            );
        }
    }

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
