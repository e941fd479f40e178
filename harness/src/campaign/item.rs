//! What a campaign runs, one trial each: a generated seed or a workload file
//! ([`TrialItem`]), and where the items come from ([`ItemSource`]: the workloads, then the
//! listed seeds, then more seeds until the time budget ends).
//!
//! In the journal an item is one key of the event (`"seed": 7` or `"workload": "name"`), so a
//! journal written before workload items reads unchanged.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budget::SeedSource;
use super::shard::Share;

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
        let quote = crate::vm::cmdline::shell_quote;
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

/// Hands out items to workers: every workload not yet finished, then the seeds
/// ([`SeedSource`]).
#[derive(Debug)]
pub struct ItemSource {
    workloads: std::vec::IntoIter<String>,
    seeds: SeedSource,
}

impl ItemSource {
    /// Items from `workloads` and the `listed` seeds, skipping the `done` ones; with `budget`,
    /// more seeds until it ends.
    pub fn new(
        workloads: Vec<String>,
        listed: Vec<u64>,
        done: &BTreeSet<TrialItem>,
        budget: Option<Duration>,
    ) -> Self {
        let pending: Vec<String> = workloads
            .into_iter()
            .filter(|n| !done.contains(&TrialItem::Workload(n.clone())))
            .collect();
        let done_seeds = done.iter().filter_map(TrialItem::seed).collect();
        ItemSource {
            workloads: pending.into_iter(),
            seeds: SeedSource::new(listed, done_seeds, budget),
        }
    }

    /// Items of one shard's share ([`super::shard::share`]), skipping the `done` ones; with
    /// `budget`, more of the shard's seeds until it ends.
    pub fn of_share(share: Share, done: &BTreeSet<TrialItem>, budget: Option<Duration>) -> Self {
        let mut src = ItemSource::new(share.workloads, share.seeds, done, budget);
        if let Some(d) = share.drawn {
            src.seeds = src.seeds.sharded(d);
        }
        src
    }

    /// The next item, or `None` when there is none left.
    pub fn next_item(&mut self) -> Option<TrialItem> {
        if let Some(n) = self.workloads.next() {
            return Some(TrialItem::Workload(n));
        }
        self.seeds.next_seed().map(TrialItem::Seed)
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

    #[test]
    fn workloads_come_first_and_finished_items_are_skipped() {
        let done: BTreeSet<TrialItem> = [TrialItem::Workload("b".into()), TrialItem::Seed(2)]
            .into_iter()
            .collect();
        let mut src = ItemSource::new(vec!["a".into(), "b".into()], vec![1, 2, 3], &done, None);

        let items: Vec<TrialItem> = std::iter::from_fn(|| src.next_item()).collect();

        assert_eq!(
            items,
            vec![
                TrialItem::Workload("a".into()),
                TrialItem::Seed(1),
                TrialItem::Seed(3)
            ]
        );
    }

    #[test]
    fn a_shard_runs_its_listed_items_then_draws_only_its_own_seeds() {
        let shard: crate::campaign::shard::Shard = "2/2".parse().expect("shard");
        let share =
            crate::campaign::shard::share(&["a".into(), "b".into()], &[1, 2, 3], Some(shard), 0);
        let done: BTreeSet<TrialItem> = [TrialItem::Seed(2)].into_iter().collect();
        let mut src = ItemSource::of_share(share, &done, Some(Duration::from_secs(60)));

        let items: Vec<TrialItem> = (0..4).filter_map(|_| src.next_item()).collect();

        // Positions: a0 b1 1:2 2:3 3:4, then 4:5 5:6 6:7 7:8 …; shard 2/2 owns the odd ones
        // (seed 2 is done already).
        assert_eq!(
            items,
            vec![
                TrialItem::Workload("b".into()),
                TrialItem::Seed(4),
                TrialItem::Seed(6),
                TrialItem::Seed(8)
            ]
        );
    }
}
