//! The corpus of a guided campaign, pure: which target blocks have been seen, which
//! workloads added them (entries), each entry's energy, and the seeded choice of the next
//! parent. A run's blocks come from its `coverage.json` ([`target_blocks`]); only blocks of
//! the guided target subsystems, reached during the ops, count.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::coverage::subsystems::is_guided_target;
use crate::coverage::{CodeMap, SeedCoverage};

/// Blocks by function key (as in the code map), block indices into its `blocks`.
pub type Blocks = BTreeMap<String, BTreeSet<u32>>;

/// How many blocks `b` holds.
pub fn count(b: &Blocks) -> usize {
    b.values().map(BTreeSet::len).sum()
}

/// The blocks of a guided target subsystem ([`is_guided_target`]) one run reached during
/// its ops. A function the map does not know, or a block index past its blocks, is left out.
pub fn target_blocks(cov: &SeedCoverage, map: &CodeMap) -> Blocks {
    cov.functions
        .iter()
        .filter_map(|(key, hits)| {
            let f = map.functions.get(key)?;
            if !is_guided_target(&f.subsystem) {
                return None;
            }
            let n = u32::try_from(f.blocks.len()).unwrap_or(u32::MAX);
            let set: BTreeSet<u32> = hits.ops.iter().copied().filter(|&i| i < n).collect();
            (!set.is_empty()).then(|| (key.clone(), set))
        })
        .collect()
}

/// One corpus entry: a workload that reached target blocks no earlier entry had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its id (`c000017`): its workload file is `<id>.yaml` in the corpus directory.
    pub id: String,
    /// The campaign item it came from (`seed 3`, `workload guided-12`) and its run directory.
    pub origin: String,
    /// The entries it was derived from (none for a generated seed).
    #[serde(default)]
    pub parents: Vec<String>,
    /// The target blocks it added, by function key.
    pub added: Blocks,
    /// How often it was chosen as a parent.
    #[serde(default)]
    pub picks: u64,
    /// How many of the workloads derived from it added blocks (became entries).
    #[serde(default)]
    pub finds: u64,
}

impl Entry {
    /// Its energy: how much of the budget derivations from it get, relative to the others.
    /// `(1 + min(added, 100) / 10 + 3 × finds) × 0.9^min(misses, 50)`, where misses are the
    /// picks that found nothing: an entry whose children keep adding blocks is chosen more,
    /// one whose children add nothing fades (never to zero).
    pub fn energy(&self) -> f64 {
        let added = count(&self.added).min(100) as f64;
        let misses = self.picks.saturating_sub(self.finds).min(50) as i32;
        (1.0 + added / 10.0 + 3.0 * self.finds as f64) * 0.9f64.powi(misses)
    }
}

/// The entries and every target block seen so far.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    entries: Vec<Entry>,
    seen: Blocks,
    next_id: u64,
}

impl Corpus {
    /// A corpus of `entries` (read back from a corpus directory). With `keep_blocks` their
    /// added blocks are the seen set (same kernel); without, the seen set starts empty (the
    /// code map differs, so block indices mean other blocks).
    pub fn of(entries: Vec<Entry>, keep_blocks: bool) -> Corpus {
        let mut c = Corpus::default();
        for mut e in entries {
            if keep_blocks {
                merge(&mut c.seen, &e.added);
            } else {
                e.added.clear();
            }
            c.next_id = c
                .next_id
                .max(id_number(&e.id).map_or(0, |n| n.saturating_add(1)));
            c.entries.push(e);
        }
        c
    }

    /// The entries, in the order they were admitted.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every target block seen so far.
    pub fn seen(&self) -> &Blocks {
        &self.seen
    }

    /// The blocks of `blocks` not seen yet.
    pub fn novel(&self, blocks: &Blocks) -> Blocks {
        blocks
            .iter()
            .filter_map(|(k, set)| {
                let old = self.seen.get(k);
                let new: BTreeSet<u32> = set
                    .iter()
                    .copied()
                    .filter(|i| old.is_none_or(|o| !o.contains(i)))
                    .collect();
                (!new.is_empty()).then(|| (k.clone(), new))
            })
            .collect()
    }

    /// Admit a workload that added `novel` (non-empty) blocks, derived from `parents` (each
    /// of which is credited with a find): returns the new entry.
    pub fn admit(&mut self, origin: String, parents: Vec<String>, novel: Blocks) -> &Entry {
        for e in self.entries.iter_mut().filter(|e| parents.contains(&e.id)) {
            e.finds = e.finds.saturating_add(1);
        }
        merge(&mut self.seen, &novel);
        let id = format!("c{:06}", self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        self.entries.push(Entry {
            id,
            origin,
            parents,
            added: novel,
            picks: 0,
            finds: 0,
        });
        &self.entries[self.entries.len() - 1]
    }

    /// Choose the next parent by energy (a weighted draw from `rng`) and count the pick;
    /// `None` for an empty corpus.
    pub fn choose<R: Rng>(&mut self, rng: &mut R) -> Option<usize> {
        let weights: Vec<f64> = self.entries.iter().map(Entry::energy).collect();
        let total: f64 = weights.iter().sum();
        if self.entries.is_empty() || total <= 0.0 || !total.is_finite() {
            return None;
        }
        let mut x = rng.gen_range(0.0..total);
        let mut pick = weights.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                pick = i;
                break;
            }
            x -= w;
        }
        let e = &mut self.entries[pick];
        e.picks = e.picks.saturating_add(1);
        Some(pick)
    }
}

/// How often one way of drawing an item (fresh seeds, derived workloads) was used and how
/// often the item became a corpus entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items drawn this way whose coverage came back.
    pub draws: u64,
    /// Of those, items that became entries.
    pub finds: u64,
}

/// Bounds of [`fresh_share`]: neither way is ever starved.
pub const FRESH_SHARE: (f64, f64) = (0.125, 0.875);

/// The share of draws that should be fresh seeds rather than derivations: each way's
/// find rate with a uniform prior, `(finds + 1) / (draws + 2)`, over their sum, within
/// [`FRESH_SHARE`]. The budget goes to whichever way keeps finding new blocks.
pub fn fresh_share(fresh: Tally, derived: Tally) -> f64 {
    let rate = |t: Tally| (t.finds as f64 + 1.0) / (t.draws as f64 + 2.0);
    let (f, d) = (rate(fresh), rate(derived));
    (f / (f + d)).clamp(FRESH_SHARE.0, FRESH_SHARE.1)
}

/// The number of an entry id `c000017`.
fn id_number(id: &str) -> Option<u64> {
    id.strip_prefix('c')?.parse().ok()
}

fn merge(into: &mut Blocks, from: &Blocks) {
    for (k, set) in from {
        into.entry(k.clone())
            .or_default()
            .extend(set.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::coverage::map::MapFunction;
    use crate::coverage::seed::FunctionHits;

    fn blocks(list: &[(&str, &[u32])]) -> Blocks {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().copied().collect()))
            .collect()
    }

    fn map_fn(subsystem: &str, n: u32) -> MapFunction {
        MapFunction {
            subsystem: subsystem.into(),
            file: None,
            bytes: n * 4,
            blocks: (0..n).map(|i| i * 4).collect(),
        }
    }

    #[test]
    fn only_ops_blocks_of_target_subsystems_count() {
        let mut map = CodeMap::default();
        map.functions
            .insert("dax_fault".into(), map_fn("fs/dax.c", 3));
        map.functions.insert(
            "nd_pmem_probe [nd_pmem]".into(),
            map_fn("drivers/nvdimm (libnvdimm, nd_pmem)", 3),
        );
        let mut cov = SeedCoverage::default();
        let hits = |ops: Vec<u32>, setup: Vec<u32>| FunctionHits { ops, setup };
        cov.functions
            .insert("dax_fault".into(), hits(vec![0, 2, 9], vec![1]));
        cov.functions
            .insert("nd_pmem_probe [nd_pmem]".into(), hits(vec![0], vec![]));
        cov.functions
            .insert("unknown".into(), hits(vec![0], vec![]));

        let t = target_blocks(&cov, &map);

        assert_eq!(t, blocks(&[("dax_fault", &[0, 2])]));
    }

    #[test]
    fn an_admitted_entry_makes_its_blocks_seen_and_credits_its_parents() {
        let mut c = Corpus::default();
        c.admit("seed 1".into(), vec![], blocks(&[("f", &[1, 2])]));

        let novel = c.novel(&blocks(&[("f", &[2, 3]), ("g", &[0])]));
        let id = c.admit("workload guided-1".into(), vec!["c000000".into()], novel);

        assert_eq!(id.id, "c000001");
        assert_eq!(id.added, blocks(&[("f", &[3]), ("g", &[0])]));
        assert_eq!(c.entries()[0].finds, 1);
        assert_eq!(count(c.seen()), 4);
        assert!(c.novel(&blocks(&[("f", &[1, 3])])).is_empty());
    }

    #[test]
    fn entries_whose_children_find_blocks_get_more_energy_and_idle_ones_fade() {
        let e = |picks, finds| Entry {
            id: "c000000".into(),
            origin: String::new(),
            parents: vec![],
            added: blocks(&[("f", &[1])]),
            picks,
            finds,
        };

        assert!(e(4, 2).energy() > e(0, 0).energy());
        assert!(e(10, 0).energy() < e(0, 0).energy());
        assert!(e(1000, 0).energy() > 0.0);
    }

    #[test]
    fn the_fresh_share_follows_the_find_rates_within_bounds() {
        let t = |draws, finds| Tally { draws, finds };

        assert_eq!(fresh_share(t(0, 0), t(0, 0)), 0.5);
        assert!(fresh_share(t(10, 7), t(40, 6)) > 0.7);
        assert!(fresh_share(t(10, 0), t(40, 20)) < 0.2);
        assert_eq!(fresh_share(t(1000, 1000), t(1000, 0)), FRESH_SHARE.1);
        assert_eq!(fresh_share(t(1000, 0), t(1000, 1000)), FRESH_SHARE.0);
    }

    #[test]
    fn the_choice_is_seeded_and_follows_the_energy() {
        let mut c = Corpus::default();
        c.admit("a".into(), vec![], blocks(&[("f", &[1])]));
        c.admit(
            "b".into(),
            vec![],
            blocks(&[("g", &(0..100).collect::<Vec<_>>())]),
        );
        let mut again = c.clone();
        let (mut r1, mut r2) = (ChaCha8Rng::seed_from_u64(7), ChaCha8Rng::seed_from_u64(7));

        let picks: Vec<usize> = (0..40).filter_map(|_| c.choose(&mut r1)).collect();
        let repeat: Vec<usize> = (0..40).filter_map(|_| again.choose(&mut r2)).collect();

        assert_eq!(picks, repeat);
        let of_b = picks.iter().filter(|&&p| p == 1).count();
        assert!(
            of_b > 20,
            "the entry with 100 blocks was chosen {of_b} of 40 times"
        );
        assert_eq!(c.entries()[0].picks + c.entries()[1].picks, 40);
        assert_eq!(Corpus::default().choose(&mut r1), None);
    }

    #[test]
    fn a_corpus_read_back_for_another_kernel_forgets_its_blocks_but_keeps_its_ids() {
        let mut c = Corpus::default();
        c.admit("a".into(), vec![], blocks(&[("f", &[1])]));
        let entries = c.entries().to_vec();

        let same = Corpus::of(entries.clone(), true);
        let mut other = Corpus::of(entries, false);

        assert_eq!(count(same.seen()), 1);
        assert_eq!(count(other.seen()), 0);
        assert_eq!(other.admit("b".into(), vec![], blocks(&[])).id, "c000001");
    }
}
