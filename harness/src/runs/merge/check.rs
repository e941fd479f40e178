//! The pure half of `powercut report merge`: whether run directories are shards of one
//! campaign (same config apart from where and how fast it ran, same kernels, images and
//! versions, one split, no shard twice, no item in two of them), and the merged journal:
//! every directory's events, in shard order, under one header.

use std::collections::BTreeMap;

use crate::config::shard::{describe, Shard};
use crate::config::CampaignConfig;
use crate::journal::events::{Event, JOURNAL_VERSION};
use crate::journal::fold::CampaignState;
use crate::journal::{self, JournalContents};
use crate::records::item::TrialItem;
use crate::rundir::RunInfo;

/// Config keys that say where and how fast a shard ran, not what it tested: they may differ
/// between the directories of one campaign.
pub const RUN_ONLY_KEYS: [&str; 6] = [
    "shard",
    "output",
    "workers",
    "checkers",
    "min_free_mib",
    "keep_failure_images",
];

/// One run directory to merge, read.
#[derive(Debug, Clone)]
pub struct Source {
    /// The directory as given (for messages).
    pub dir: String,
    /// Its `config.yaml`.
    pub config: CampaignConfig,
    /// Its `run-info.json`.
    pub info: RunInfo,
    /// Its `journal.jsonl`.
    pub journal: JournalContents,
}

impl Source {
    /// Its shard (from `config.yaml`; the journal header must agree).
    pub fn shard(&self) -> Option<Shard> {
        self.config.shard
    }

    /// `dir (shard K/N)`, for messages.
    pub fn label(&self) -> String {
        format!("{} (shard {})", self.dir, describe(self.shard()))
    }
}

/// Why run directories cannot be merged (bad input: exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// A value of a config key as YAML on one line (`(not set)` when absent).
fn show(v: Option<&serde_yaml::Value>) -> String {
    match v {
        None | Some(serde_yaml::Value::Null) => "null".to_owned(),
        Some(v) => serde_yaml::to_string(v)
            .map_or_else(|_| "?".to_owned(), |s| s.trim().replace('\n', " ")),
    }
}

/// The first config key (other than [`RUN_ONLY_KEYS`]) whose value differs: the key and
/// both values.
pub fn config_difference(
    a: &CampaignConfig,
    b: &CampaignConfig,
) -> Option<(String, String, String)> {
    let (Ok(serde_yaml::Value::Mapping(a)), Ok(serde_yaml::Value::Mapping(b))) =
        (serde_yaml::to_value(a), serde_yaml::to_value(b))
    else {
        return Some(("(config)".into(), "unreadable".into(), "unreadable".into()));
    };
    a.keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| !RUN_ONLY_KEYS.contains(&k.as_str().unwrap_or("")))
        .find(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            (
                k.as_str().unwrap_or("?").to_owned(),
                show(a.get(k)),
                show(b.get(k)),
            )
        })
}

/// The first `run-info.json` field that differs between two directories of one campaign
/// (the accelerator may: it changes speed, not verdicts): the field and both values.
pub fn info_difference(a: &RunInfo, b: &RunInfo) -> Option<(String, String, String)> {
    let fields: [(&str, String, String); 6] = [
        ("powercut", a.powercut.clone(), b.powercut.clone()),
        ("rng", a.rng.clone(), b.rng.clone()),
        ("kernel", a.kernel.clone(), b.kernel.clone()),
        ("image", a.image.clone(), b.image.clone()),
        ("modules", json(&a.modules), json(&b.modules)),
        ("kernels", json(&a.kernels), json(&b.kernels)),
    ];
    fields
        .into_iter()
        .find(|(_, x, y)| x != y)
        .map(|(f, x, y)| (f.to_owned(), x, y))
}

/// A value as one line of JSON, for a refusal.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
}

/// The item a per-item event is about.
fn item_of(e: &Event) -> Option<&TrialItem> {
    match e {
        Event::SeedStarted { item }
        | Event::RunFailed { item, .. }
        | Event::RunDone { item, .. }
        | Event::FailureSaved { item, .. }
        | Event::SeedDone { item } => Some(item),
        Event::Checked(r) => Some(&r.item),
        Event::Journal { .. } | Event::Started { .. } | Event::Stopped { .. } => None,
    }
}

/// Check that `sources` are run directories of one campaign that can be merged; returns
/// the order to merge them in (by shard) and the shards of the split that are missing.
pub fn check(sources: &[Source]) -> Result<(Vec<usize>, Vec<Shard>), Refusal> {
    let Some(first) = sources.first() else {
        return Err(Refusal(
            "nothing to merge: give at least one run directory".into(),
        ));
    };
    for s in sources {
        if s.journal.shard() != s.shard() {
            return Err(Refusal(format!(
                "{}/journal.jsonl:1 records shard {} but {}/config.yaml shard {}: the run directory is inconsistent",
                s.dir,
                describe(s.journal.shard()),
                s.dir,
                describe(s.shard())
            )));
        }
    }
    for s in &sources[1..] {
        if let Some((field, a, b)) = config_difference(&first.config, &s.config) {
            return Err(Refusal(format!(
                "not one campaign: config.yaml `{field}` is {a} in {} but {b} in {}",
                first.dir, s.dir
            )));
        }
        if let Some((field, a, b)) = info_difference(&first.info, &s.info) {
            return Err(Refusal(format!(
                "not one campaign: run-info.json `{field}` is {a} in {} but {b} in {}",
                first.dir, s.dir
            )));
        }
    }
    let missing = check_shards(sources)?;
    check_overlap(sources)?;
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|i| sources[*i].shard());
    Ok((order, missing))
}

/// One split (every directory a shard of the same N, or one whole campaign), no shard twice;
/// returns the shards of the split that are missing.
fn check_shards(sources: &[Source]) -> Result<Vec<Shard>, Refusal> {
    let mut seen: BTreeMap<Option<Shard>, &Source> = BTreeMap::new();
    let first = &sources[0];
    for s in sources {
        let count = |x: &Source| x.shard().map(Shard::count);
        if count(s) != count(first) {
            return Err(Refusal(format!(
                "not one split: {} and {} are shards of different splits; merge the shards of one --shard K/N split",
                first.label(),
                s.label()
            )));
        }
        if let Some(other) = seen.insert(s.shard(), s) {
            let what = s
                .shard()
                .map_or_else(|| "the whole campaign".to_owned(), |k| format!("shard {k}"));
            return Err(Refusal(format!(
                "{what} is given twice: {} and {}; merging them would count its items twice",
                other.dir, s.dir
            )));
        }
    }
    let Some(n) = first.shard().map(Shard::count) else {
        return Ok(Vec::new());
    };
    Ok((1..=n)
        .filter_map(|k| Shard::new(k, n).ok())
        .filter(|k| !seen.contains_key(&Some(*k)))
        .collect())
}

/// No (kernel, item) in two directories.
fn check_overlap(sources: &[Source]) -> Result<(), Refusal> {
    let mut owner: BTreeMap<(Option<&str>, &TrialItem), &Source> = BTreeMap::new();
    for s in sources {
        for (e, k) in s.journal.events.iter().zip(&s.journal.kernels) {
            let Some(item) = item_of(e) else { continue };
            let prev = *owner.entry((k.as_deref(), item)).or_insert(s);
            if !std::ptr::eq(prev, s) {
                let on = k
                    .as_deref()
                    .map_or_else(String::new, |k| format!(" on kernel {k}"));
                return Err(Refusal(format!(
                    "{item}{on} ran in both {} and {}: merging would count it twice (were these shards of one split, each run once?)",
                    prev.label(),
                    s.label()
                )));
            }
        }
    }
    Ok(())
}

/// The merged journal: a header without a shard, then every event of each source (in
/// `order`), kernel tags kept, the `dir` of each `failure_saved` renamed by its source's
/// map (`failures/<old>` → `failures/<new>`); then, per kernel, one `stopped` event naming
/// every source whose campaign stopped early (a later source's `started` would hide it).
pub fn merged_journal(
    sources: &[Source],
    order: &[usize],
    renames: &[BTreeMap<String, String>],
) -> Result<String, serde_json::Error> {
    let mut text = journal::line(
        &Event::Journal {
            version: JOURNAL_VERSION,
            powercut: env!("CARGO_PKG_VERSION").to_owned(),
            shard: None,
        },
        None,
    )?;
    let mut kernels: Vec<Option<String>> = Vec::new();
    for &i in order {
        let s = &sources[i];
        for (e, k) in s.journal.events.iter().zip(&s.journal.kernels).skip(1) {
            if !kernels.contains(k) {
                kernels.push(k.clone());
            }
            let e = match e {
                Event::FailureSaved {
                    item,
                    title,
                    dir,
                    bucket,
                } => Event::FailureSaved {
                    item: item.clone(),
                    title: title.clone(),
                    dir: renames
                        .get(i)
                        .and_then(|m| m.get(dir))
                        .unwrap_or(dir)
                        .clone(),
                    bucket: bucket.clone(),
                },
                other => other.clone(),
            };
            text.push_str(&journal::line(&e, k.as_deref())?);
        }
    }
    for k in &kernels {
        let reasons: Vec<String> = order
            .iter()
            .map(|&i| &sources[i])
            .filter_map(|s| {
                let stopped = CampaignState::of(&s.journal.of_kernel(k.as_deref())).stopped?;
                Some(format!("{}: {stopped}", s.label()))
            })
            .collect();
        if !reasons.is_empty() {
            let stopped = Event::Stopped {
                reason: reasons.join("; "),
            };
            text.push_str(&journal::line(&stopped, k.as_deref())?);
        }
    }
    Ok(text)
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
