//! Which seeds a campaign runs: the configured list, and with a time budget, more seeds
//! after it until the budget is spent. Also parsing durations like `8h`, `1h30m`, `90s`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Parse `8h`, `30m`, `90s`, `1h30m`, `2d` (no fractions).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (use e.g. 8h, 30m, 1h30m, 90s)"))?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("`{s}`: unknown unit `{c}` (use s, m, h, d)")),
        };
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!(
            "`{s}` is not a duration (use e.g. 8h, 30m, 1h30m, 90s)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Hands out seeds to workers.
#[derive(Debug)]
pub struct SeedSource {
    listed: Vec<u64>,
    next: usize,
    extra: u64,
    done: BTreeSet<u64>,
    deadline: Option<Instant>,
}

impl SeedSource {
    /// Seeds from `listed` (skipping `done` ones); with `budget`, then `max(listed)+1, …`
    /// until the budget ends.
    pub fn new(listed: Vec<u64>, done: BTreeSet<u64>, budget: Option<Duration>) -> Self {
        let extra = listed.iter().max().map_or(0, |m| m.saturating_add(1));
        SeedSource {
            listed,
            next: 0,
            extra,
            done,
            deadline: budget.map(|b| Instant::now() + b),
        }
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
            let s = self.extra;
            self.extra = self.extra.saturating_add(1);
            if !self.done.contains(&s) {
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
