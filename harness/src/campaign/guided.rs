//! The guided part of a campaign (`--guided`): after the listed seeds, [`GuidedSource`]
//! draws the next item from the corpus ([`crate::guided`]): a workload derived from a
//! parent chosen by energy (recorded in the run directory as a workload item before it
//! runs), or now and then, and while the corpus is empty, a fresh seed. Each finished run's
//! coverage comes back through [`GuidedSource::observe`]: a run that reached target blocks
//! no entry had becomes an entry (its workload written to the corpus directory) and its
//! parents are credited.
//!
//! Choices come from a ChaCha stream keyed by the item's position in the guided phase, so
//! a guided campaign is reproducible given the same coverage feedback. Fresh seeds take
//! their turns at the share [`fresh_share`] gives from how often fresh seeds and derived
//! workloads have found new blocks so far in this run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use workloads::generator::{generate, Profile};
use workloads::Workload;

use super::budget::SeedSource;
use super::source::Drawn;
use crate::coverage::{CodeMap, SeedCoverage};
use crate::guided::corpus::{count, fresh_share, target_blocks, Corpus, Tally};
use crate::guided::mutate::{derive, Limits, Sources};
use crate::guided::store::{CorpusDir, CorpusLock};
use crate::records::TrialItem;
use crate::rundir::items::RecordedInput;
use crate::rundir::RunDir;

/// The key of the ChaCha stream of guided choices.
pub const GUIDED_RNG_SEED: u64 = 0x6775_6964_6564;

/// Most ops of a derived workload: this many times the profile's largest.
pub const MAX_OPS_FACTOR: usize = 2;

/// What a guided campaign's engine needs besides its config.
#[derive(Debug, Clone)]
pub struct GuidedSetup {
    /// The corpus directory.
    pub corpus: PathBuf,
    /// The workloads it derived in earlier runs of this run directory (`--resume`).
    pub derived: Vec<String>,
    /// The identity of the kernel's code map (the cached map's name): the corpus' blocks
    /// are indices into it.
    pub map_id: String,
    /// The corpus held for this campaign ([`CorpusDir::lock`]).
    pub lock: Arc<CorpusLock>,
}

/// How a guided source is set up.
#[derive(Debug, Clone)]
pub struct GuidedParams {
    /// Generator profile of the donors and fresh seeds.
    pub profile: Profile,
    /// The pmem size derived workloads must fit.
    pub pmem_bytes: u64,
    /// Most items to draw after the listed seeds (over every run of the run directory).
    pub max_items: Option<u64>,
    /// When drawing ends.
    pub deadline: Option<Instant>,
    /// Items the earlier runs drew after the listed seeds.
    pub drawn_before: u64,
    /// Name prefix of derived workloads (`guided-`; a shard's `guided-s2of4-`).
    pub prefix: String,
}

/// The corpus and the draws of a guided campaign.
#[derive(Debug)]
pub struct GuidedSource {
    corpus: Corpus,
    workloads: Vec<Arc<Workload>>,
    store: CorpusDir,
    run: RunDir,
    map_id: String,
    params: GuidedParams,
    limits: Limits,
    next_number: u64,
    drawn: u64,
    parents: BTreeMap<String, Vec<String>>,
    admitted: u64,
    derived: u64,
    /// Fresh seeds drawn in this run's guided phase.
    drawn_fresh: u64,
    /// The fresh seeds drawn whose coverage has not come back yet.
    fresh_pending: std::collections::BTreeSet<u64>,
    /// Fresh seeds and derived workloads: drawn, and found new blocks.
    tally: (Tally, Tally),
    /// Keeps the corpus held while the source lives.
    _lock: Arc<CorpusLock>,
}

impl GuidedSource {
    /// The corpus of `setup` read back (bad entries said once each as warnings), for the
    /// run directory `run`.
    pub fn open(setup: &GuidedSetup, run: RunDir, params: GuidedParams) -> GuidedSource {
        let store = CorpusDir::new(&setup.corpus);
        let loaded = store.load(&setup.map_id, params.pmem_bytes);
        for w in &loaded.warnings {
            tracing::warn!("guided: {w}");
        }
        let next_number = setup
            .derived
            .iter()
            .filter_map(|n| n.strip_prefix(&params.prefix)?.parse::<u64>().ok())
            .max()
            .map_or(1, |m| m.saturating_add(1));
        let limits = Limits {
            max_ops: params.profile.ops().end() * MAX_OPS_FACTOR,
            pmem_bytes: params.pmem_bytes,
        };
        GuidedSource {
            corpus: loaded.corpus,
            workloads: loaded.workloads.into_iter().map(Arc::new).collect(),
            store,
            run,
            map_id: setup.map_id.clone(),
            drawn: params.drawn_before,
            params,
            limits,
            next_number,
            parents: BTreeMap::new(),
            admitted: 0,
            derived: 0,
            drawn_fresh: 0,
            fresh_pending: Default::default(),
            tally: Default::default(),
            _lock: Arc::clone(&setup.lock),
        }
    }

    /// The next item of the guided phase, with its workload when it is derived; `None` when
    /// the phase is over; `Err` when a derived workload cannot be recorded.
    pub fn next(&mut self, seeds: &mut SeedSource) -> Result<Option<Drawn>, String> {
        let over = self.params.max_items.is_some_and(|m| self.drawn >= m)
            || self.params.deadline.is_some_and(|d| Instant::now() >= d);
        if over {
            return Ok(None);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(GUIDED_RNG_SEED);
        rng.set_stream(self.drawn);
        let fresh = self.corpus.entries().is_empty() || self.fresh_turn();
        if !fresh {
            if let Some(drawn) = self.derive_next(&mut rng)? {
                self.drawn += 1;
                return Ok(Some(drawn));
            }
        }
        let seed = seeds.next_seed();
        if let Some(s) = seed {
            self.drawn += 1;
            self.drawn_fresh += 1;
            self.fresh_pending.insert(s);
        }
        Ok(seed.map(|s| (TrialItem::Seed(s), None)))
    }

    /// Is it a fresh seed's turn? Fresh seeds are kept at [`fresh_share`] of this run's
    /// guided draws (a stride, not a coin: the first draw with a corpus derives).
    fn fresh_turn(&self) -> bool {
        let share = fresh_share(self.tally.0, self.tally.1);
        (self.drawn_fresh as f64) < share * (self.drawn_fresh + self.derived) as f64
    }

    /// A derived workload, recorded in the run directory; `None` when no valid derivation
    /// came out (the caller draws a fresh seed).
    fn derive_next(&mut self, rng: &mut ChaCha8Rng) -> Result<Option<Drawn>, String> {
        let Some(p) = self.corpus.choose(rng) else {
            return Ok(None);
        };
        let o = rng.gen_range(0..self.workloads.len());
        let donor = generate(rng.gen(), self.params.profile);
        let name = format!("{}{}", self.params.prefix, self.next_number);
        let src = Sources {
            parent: &self.workloads[p],
            other: (o != p).then(|| self.workloads[o].as_ref()),
            donor: &donor,
        };
        let d = match derive(&src, &name, self.limits, rng) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!("guided: {name}: {e}; drawing a fresh seed");
                return Ok(None);
            }
        };
        let entries = self.corpus.entries();
        let mut parents = vec![entries[p].id.clone()];
        let spliced = d
            .mutations
            .contains(&crate::guided::mutate::Mutation::Splice);
        if spliced && o != p {
            parents.push(entries[o].id.clone());
        }
        let ops: Vec<&str> = d.mutations.iter().map(|m| m.name()).collect();
        tracing::debug!(
            "guided: {name}: {} after {} attempt(s)",
            ops.join(", "),
            d.attempts
        );
        let input = RecordedInput {
            name: name.clone(),
            file: self.store.root().display().to_string(),
            derived: Some(format!("{} of {}", ops.join(", "), parents.join(" and "))),
        };
        self.run
            .add_derived_workload(input, &d.yaml)
            .map_err(|e| format!("recording the derived workload {name}: {e}"))?;
        self.next_number += 1;
        self.derived += 1;
        self.parents.insert(name.clone(), parents);
        Ok(Some((
            TrialItem::Workload(name),
            Some(Arc::new(d.workload)),
        )))
    }

    /// A run of `item` (`workload`) finished with coverage `cov` on `map`: admit it to the
    /// corpus if it reached target blocks no entry had. `Err` when the corpus cannot be
    /// written.
    pub fn observe(
        &mut self,
        item: &TrialItem,
        workload: &Workload,
        cov: &SeedCoverage,
        map: &CodeMap,
    ) -> Result<(), String> {
        let derived = self.parents.remove(&item.short());
        let fresh = item.seed().is_some_and(|s| self.fresh_pending.remove(&s));
        let novel = self.corpus.novel(&target_blocks(cov, map));
        let tally = match (fresh, derived.is_some()) {
            (true, _) => Some(&mut self.tally.0),
            (_, true) => Some(&mut self.tally.1),
            _ => None,
        };
        if let Some(t) = tally {
            t.draws += 1;
            t.finds += u64::from(!novel.is_empty());
        }
        if novel.is_empty() {
            return Ok(());
        }
        let parents = derived.unwrap_or_default();
        let added = count(&novel);
        let origin = format!("{item} of {}", self.run.root().display());
        let yaml = serde_yaml::to_string(workload).map_err(|e| e.to_string())?;
        let id = self.corpus.admit(origin, parents, novel).id.clone();
        self.store
            .save(&id, &yaml, &self.corpus, &self.map_id)
            .map_err(|e| e.to_string())?;
        self.workloads.push(Arc::new(workload.clone()));
        self.admitted += 1;
        tracing::info!("guided: {item} reached {added} new target block(s): corpus entry {id}");
        Ok(())
    }

    /// Write the index (picks changed since the last entry) and say what this run did.
    pub fn finish(&self) -> Result<String, String> {
        if !self.corpus.entries().is_empty() {
            self.store
                .write_index(&self.corpus, &self.map_id)
                .map_err(|e| e.to_string())?;
        }
        let (f, d) = self.tally;
        Ok(format!(
            "guided: {} workload(s) derived ({} added blocks), {} fresh seed(s) ({} added blocks), {} new corpus entr(y/ies); corpus {}: {} entries, {} target blocks",
            self.derived,
            d.finds,
            f.draws,
            f.finds,
            self.admitted,
            self.store.root().display(),
            self.corpus.entries().len(),
            count(self.corpus.seen())
        ))
    }
}

/// The item source of one kernel's run: the share's workloads and seeds, and in a guided
/// campaign the guided draws after them.
pub fn item_source(
    cfg: &crate::config::CampaignConfig,
    env: &super::CampaignEnv,
    share: crate::config::shard::Share,
    done: &std::collections::BTreeSet<TrialItem>,
    budget: Option<std::time::Duration>,
) -> super::source::ItemSource {
    let Some(setup) = env.guided.as_ref() else {
        return super::source::ItemSource::of_share(share, done, budget);
    };
    let listed = share.seeds.clone();
    let drawn_seeds = done
        .iter()
        .filter_map(TrialItem::seed)
        .filter(|s| !listed.contains(s))
        .count();
    let params = GuidedParams {
        profile: cfg.profile.parse().unwrap_or(Profile::Smoke),
        pmem_bytes: cfg.pmem_bytes().unwrap_or(u64::MAX),
        max_items: cfg.guided_items,
        deadline: budget.and_then(|b| Instant::now().checked_add(b)),
        drawn_before: (setup.derived.len() + drawn_seeds) as u64,
        prefix: cfg.shard.map_or_else(
            || "guided-".to_owned(),
            |s| format!("guided-s{}of{}-", s.index(), s.count()),
        ),
    };
    // The seeds past the list: while the time budget lasts, or without one until
    // `guided_items` ends the phase.
    let seeds_budget = Some(budget.unwrap_or(crate::config::limits::MAX_TIME_BUDGET));
    let guided = GuidedSource::open(setup, RunDir::new(&env.dir), params);
    super::source::ItemSource::of_share(share, done, seeds_budget).with_guided(
        guided,
        &setup.derived,
        done,
    )
}

/// At the end of one kernel's run: write the corpus index and say what the guided phase did.
pub fn finish(
    source: &std::sync::Mutex<super::source::ItemSource>,
    sink: &mut dyn crate::journal::sink::EventSink,
) {
    let Ok(mut s) = source.lock() else {
        return;
    };
    let Some(g) = s.guided() else {
        return;
    };
    match g.finish() {
        Ok(line) => sink.note(&line),
        Err(e) => sink.note(&format!("guided: writing the corpus index failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::coverage::map::MapFunction;
    use crate::coverage::seed::FunctionHits;

    fn map() -> CodeMap {
        let mut m = CodeMap::default();
        let f = MapFunction {
            subsystem: "fs/dax.c".into(),
            file: None,
            bytes: 64,
            blocks: (0..16).map(|i| i * 4).collect(),
        };
        m.functions.insert("dax_iomap_rw".into(), f);
        m
    }

    fn cov(blocks: &[u32]) -> SeedCoverage {
        let mut c = SeedCoverage::default();
        let hits = FunctionHits {
            ops: blocks.to_vec(),
            setup: vec![],
        };
        c.functions.insert("dax_iomap_rw".into(), hits);
        c
    }

    fn source(dir: &std::path::Path, max_items: u64) -> (GuidedSource, SeedSource) {
        let corpus = dir.join("corpus");
        let setup = GuidedSetup {
            lock: Arc::new(CorpusDir::new(&corpus).lock().expect("free corpus")),
            corpus,
            derived: vec![],
            map_id: "k".into(),
        };
        let params = GuidedParams {
            profile: Profile::Smoke,
            pmem_bytes: 256 << 20,
            max_items: Some(max_items),
            deadline: None,
            drawn_before: 0,
            prefix: "guided-".into(),
        };
        let seeds = SeedSource::new(vec![], Default::default(), Some(Duration::from_secs(600)));
        (GuidedSource::open(&setup, RunDir::new(dir), params), seeds)
    }

    /// Draw `n` items, feeding each the coverage `feedback` gives it.
    fn campaign(dir: &std::path::Path, n: u64) -> Vec<(String, Option<String>)> {
        let (mut g, mut seeds) = source(dir, n);
        let mut out = Vec::new();
        let mut k = 0;
        while let Some((item, made)) = g.next(&mut seeds).expect("recorded") {
            let w = made
                .unwrap_or_else(|| Arc::new(generate(item.seed().expect("seed"), Profile::Smoke)));
            g.observe(&item, &w, &cov(&[k % 16, (k * 3) % 16]), &map())
                .expect("corpus written");
            k += 1;
            let yaml = item
                .workload()
                .map(|_| serde_yaml::to_string(w.as_ref()).expect("yaml"));
            out.push((item.to_string(), yaml));
        }
        out
    }

    #[test]
    fn a_guided_phase_starts_from_a_fresh_seed_then_derives_recorded_workloads() {
        let dir = tempfile::tempdir().expect("tempdir");

        let drawn = campaign(dir.path(), 6);

        assert_eq!(drawn.len(), 6);
        assert_eq!(drawn[0].0, "seed 0");
        assert_eq!(
            drawn[1].0, "workload guided-1",
            "the first draw with a corpus derives"
        );
        let derived: Vec<&str> = drawn
            .iter()
            .filter(|(_, y)| y.is_some())
            .map(|(i, _)| i.as_str())
            .collect();
        assert!(!derived.is_empty(), "{drawn:?}");
        let run = RunDir::new(dir.path());
        let recorded = run.read_workload_inputs().expect("recorded");
        assert_eq!(recorded.len(), derived.len());
        assert!(recorded.iter().all(|r| r.input.derived.is_some()));
        let index = std::fs::read_to_string(dir.path().join("corpus/index.json")).expect("index");
        assert!(index.contains("\"c000000\""), "{index}");
    }

    #[test]
    fn the_same_feedback_gives_the_same_choices() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );

        let first = campaign(a.path(), 8);
        let second = campaign(b.path(), 8);

        assert_eq!(first, second);
    }
}
