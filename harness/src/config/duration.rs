//! Durations in a config: `8h`, `1h30m`, `90s`, `2d`, at most [`MAX_TIME_BUDGET`].

use std::time::Duration;

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
}
