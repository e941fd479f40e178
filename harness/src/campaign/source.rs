//! Where a campaign's items come from ([`ItemSource`]: the workloads, then the listed seeds,
//! then more seeds until the time budget ends, or in a guided campaign the guided draws of
//! [`super::guided`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use workloads::Workload;

use super::budget::SeedSource;
use super::guided::GuidedSource;
use crate::config::shard::Share;
use crate::records::TrialItem;

/// An item drawn, with its workload when the source made it (a guided derivation).
pub type Drawn = (TrialItem, Option<Arc<Workload>>);

/// Hands out items to workers: every workload not yet finished, then the seeds
/// ([`SeedSource`]); in a guided campaign, after the listed seeds, the guided draws.
#[derive(Debug)]
pub struct ItemSource {
    workloads: std::vec::IntoIter<String>,
    seeds: SeedSource,
    guided: Option<GuidedSource>,
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
            guided: None,
        }
    }

    /// After the listed seeds, draw from `guided` (whose fresh seeds come from past the
    /// list); the workloads it derived in earlier runs that are not `done` run first.
    pub fn with_guided(
        mut self,
        guided: GuidedSource,
        derived: &[String],
        done: &BTreeSet<TrialItem>,
    ) -> Self {
        let mut pending: Vec<String> = self.workloads.collect();
        pending.extend(
            derived
                .iter()
                .filter(|n| !done.contains(&TrialItem::Workload((*n).clone())))
                .cloned(),
        );
        self.workloads = pending.into_iter();
        self.guided = Some(guided);
        self
    }

    /// The guided source, in a guided campaign.
    pub fn guided(&mut self) -> Option<&mut GuidedSource> {
        self.guided.as_mut()
    }

    /// Items of one shard's share ([`crate::config::shard::share`]), skipping the `done` ones; with
    /// `budget`, more of the shard's seeds until it ends.
    pub fn of_share(share: Share, done: &BTreeSet<TrialItem>, budget: Option<Duration>) -> Self {
        let mut src = ItemSource::new(share.workloads, share.seeds, done, budget);
        if let Some(d) = share.drawn {
            src.seeds = src.seeds.sharded(d);
        }
        src
    }

    /// The next item, or `None` when there is none left; `Err` when a guided derivation
    /// cannot be recorded.
    pub fn next_item(&mut self) -> Result<Option<Drawn>, String> {
        if let Some(n) = self.workloads.next() {
            return Ok(Some((TrialItem::Workload(n), None)));
        }
        let Some(g) = self.guided.as_mut() else {
            return Ok(self.seeds.next_seed().map(|s| (TrialItem::Seed(s), None)));
        };
        if let Some(s) = self.seeds.next_listed() {
            return Ok(Some((TrialItem::Seed(s), None)));
        }
        g.next(&mut self.seeds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_come_first_and_finished_items_are_skipped() {
        let done: BTreeSet<TrialItem> = [TrialItem::Workload("b".into()), TrialItem::Seed(2)]
            .into_iter()
            .collect();
        let mut src = ItemSource::new(vec!["a".into(), "b".into()], vec![1, 2, 3], &done, None);

        let items: Vec<TrialItem> = std::iter::from_fn(|| src.next_item().expect("no guided"))
            .map(|(i, _)| i)
            .collect();

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
        let shard: crate::config::shard::Shard = "2/2".parse().expect("shard");
        let share =
            crate::config::shard::share(&["a".into(), "b".into()], &[1, 2, 3], Some(shard), 0);
        let done: BTreeSet<TrialItem> = [TrialItem::Seed(2)].into_iter().collect();
        let mut src = ItemSource::of_share(share, &done, Some(Duration::from_secs(60)));

        let items: Vec<TrialItem> = (0..4)
            .filter_map(|_| src.next_item().expect("no guided"))
            .map(|(i, _)| i)
            .collect();

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
