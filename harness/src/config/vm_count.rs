//! `workers` and `checkers`: how many VMs of one kind a campaign runs (a number, `0` for
//! what fits the machine, or `auto` for what the measured balance of runs and checks asks
//! for, see the campaign's `balance` module).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How many VMs of one kind a campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Raw", into = "Raw")]
pub enum VmCount {
    /// What fits the machine: one VM per core and GiB, half of them of this kind (`0`).
    #[default]
    Fit,
    /// One to start with; once the first item is run and checked, as many as the
    /// measured time of runs and checks asks for (`auto`).
    Auto,
    /// Exactly this many (never 0).
    Exactly(usize),
}

/// The YAML form: a number or a word.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Raw {
    Number(u64),
    Word(String),
}

impl TryFrom<Raw> for VmCount {
    type Error = String;

    fn try_from(raw: Raw) -> Result<VmCount, String> {
        match raw {
            Raw::Number(0) => Ok(VmCount::Fit),
            Raw::Number(n) => usize::try_from(n)
                .map(VmCount::Exactly)
                .map_err(|_| format!("{n} is out of range")),
            Raw::Word(w) => w.parse(),
        }
    }
}

impl From<VmCount> for Raw {
    fn from(c: VmCount) -> Raw {
        match c {
            VmCount::Fit => Raw::Number(0),
            VmCount::Auto => Raw::Word("auto".into()),
            VmCount::Exactly(n) => Raw::Number(u64::try_from(n).unwrap_or(u64::MAX)),
        }
    }
}

impl FromStr for VmCount {
    type Err = String;

    fn from_str(s: &str) -> Result<VmCount, String> {
        match s.trim() {
            "auto" => Ok(VmCount::Auto),
            "0" => Ok(VmCount::Fit),
            other => other.parse::<usize>().map(VmCount::Exactly).map_err(|_| {
                format!("`{other}` is not a VM count: a number, 0 (fit the machine) or `auto`")
            }),
        }
    }
}

impl fmt::Display for VmCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmCount::Fit => f.write_str("0"),
            VmCount::Auto => f.write_str("auto"),
            VmCount::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl VmCount {
    /// The fixed number asked for, if any.
    pub fn exactly(self) -> Option<usize> {
        match self {
            VmCount::Exactly(n) => Some(n),
            VmCount::Fit | VmCount::Auto => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_zero_and_auto_parse_from_yaml_and_the_command_line() {
        let yaml = |s: &str| serde_yaml::from_str::<VmCount>(s);
        assert_eq!(yaml("0").unwrap(), VmCount::Fit);
        assert_eq!(yaml("3").unwrap(), VmCount::Exactly(3));
        assert_eq!(yaml("auto").unwrap(), VmCount::Auto);
        assert!(yaml("many").unwrap_err().to_string().contains("`many`"));
        assert!(yaml("-1").is_err());
        assert_eq!("auto".parse::<VmCount>().unwrap(), VmCount::Auto);
        assert_eq!("2".parse::<VmCount>().unwrap(), VmCount::Exactly(2));
        assert!("2.5".parse::<VmCount>().is_err());
    }

    #[test]
    fn each_form_survives_a_round_trip() {
        for c in [VmCount::Fit, VmCount::Auto, VmCount::Exactly(7)] {
            let text = serde_yaml::to_string(&c).unwrap();
            assert_eq!(serde_yaml::from_str::<VmCount>(&text).unwrap(), c, "{text}");
            assert_eq!(c.to_string().parse::<VmCount>().unwrap(), c);
        }
    }
}
