//! What a campaign runs, one trial each: a generated seed or a workload file
//! ([`TrialItem`]).
//!
//! In the journal an item is one key of the event (`"seed": 7` or `"workload": "name"`), so a
//! journal written before workload items reads unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing a campaign runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialItem {
    /// The generated workload of a seed (`workloads::generator::generate`).
    Seed(u64),
    /// A workload file, by its workload name (unique within a campaign; its file is recorded
    /// in the run directory's `workloads.json`).
    Workload(String),
}

impl TrialItem {
    /// The seed, for a seed item.
    pub fn seed(&self) -> Option<u64> {
        match self {
            TrialItem::Seed(s) => Some(*s),
            TrialItem::Workload(_) => None,
        }
    }

    /// The workload name, for a workload item.
    pub fn workload(&self) -> Option<&str> {
        match self {
            TrialItem::Seed(_) => None,
            TrialItem::Workload(n) => Some(n),
        }
    }

    /// An HTML anchor: `seed-7`, `workload-name`.
    pub fn anchor(&self) -> String {
        match self {
            TrialItem::Seed(s) => format!("seed-{s}"),
            TrialItem::Workload(n) => format!("workload-{n}"),
        }
    }

    /// A short name for file and VM names: the seed number, or the workload name.
    pub fn short(&self) -> String {
        match self {
            TrialItem::Seed(s) => s.to_string(),
            TrialItem::Workload(n) => n.clone(),
        }
    }
}

impl TrialItem {
    /// The one command that re-runs this item of the campaign whose `config.yaml` is
    /// `config`: its workload and planned crash points, on `kernel` (the kernel of a
    /// kernel matrix that ran it; `None` for a campaign on one kernel).
    pub fn reproduce(&self, config: &std::path::Path, kernel: Option<&str>) -> String {
        let quote = crate::host::shell_quote;
        let config = quote(&config.to_string_lossy());
        let what = match self {
            TrialItem::Seed(s) => format!("--seed {s}"),
            TrialItem::Workload(n) => format!("--workload {}", quote(n)),
        };
        let kernel = kernel.map_or(String::new(), |k| format!(" --kernel {}", quote(k)));
        format!("cargo run --release -- repro --config {config} {what}{kernel}")
    }
}

impl fmt::Display for TrialItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrialItem::Seed(s) => write!(f, "seed {s}"),
            TrialItem::Workload(n) => write!(f, "workload {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_one_key_of_their_event() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct E {
            #[serde(flatten)]
            item: TrialItem,
        }

        let s = serde_json::to_string(&E {
            item: TrialItem::Seed(7),
        })
        .expect("json");
        let w = serde_json::to_string(&E {
            item: TrialItem::Workload("a".into()),
        })
        .expect("json");

        assert_eq!(s, r#"{"seed":7}"#);
        assert_eq!(w, r#"{"workload":"a"}"#);
        assert_eq!(
            serde_json::from_str::<E>(&w).expect("back").item,
            TrialItem::Workload("a".into())
        );
    }
}
