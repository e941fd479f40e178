//! The results journal: append-only JSON lines, fsync'd after every entry, so a campaign
//! killed at any point keeps every recorded result and `--resume` skips finished seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use super::{CheckRecord, Totals};
use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A worker started a seed (checks of an earlier, interrupted attempt are void).
    SeedStarted {
        /// Seed.
        seed: u64,
    },
    /// One crash image checked.
    Check(CheckRecord),
    /// A seed finished (all its checks are above it); `infra` if its run failed.
    SeedDone {
        /// Seed.
        seed: u64,
        /// Infrastructure problem, if the run failed.
        infra: Option<String>,
    },
}

/// The open journal and what it already holds.
pub struct Journal {
    file: File,
    entries: Vec<JournalEntry>,
}

impl Journal {
    /// Open (or create) the journal at `path`, reading what is there. A torn last line (a
    /// crash mid-write) is ignored.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let entries = match read_entries(path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // A torn last line gets its newline, so the next entry starts on a line of its own.
        let bytes = std::fs::read(path)?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            file.write_all(b"\n")?;
        }
        Ok(Journal { file, entries })
    }

    /// Append one entry and fsync it.
    pub fn append(&mut self, e: &JournalEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(e).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.entries.push(e.clone());
        Ok(())
    }

    /// Seeds whose runs are complete.
    pub fn finished_seeds(&self) -> BTreeSet<u64> {
        finished_seeds(&self.entries)
    }

    /// Check records of finished seeds, from each seed's last attempt only.
    pub fn records(&self) -> Vec<CheckRecord> {
        records(&self.entries)
    }

    /// Totals of the finished seeds (suppressions re-applied to the recorded titles).
    pub fn totals(&self, suppressions: &[regex::Regex]) -> Totals {
        totals(&self.entries, suppressions)
    }
}

/// Read the entries of the journal at `path` without opening it for writing (reports read
/// run directories this way). A torn line is ignored.
pub fn read_entries(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    let mut entries = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        if let Ok(e) = serde_json::from_str::<JournalEntry>(&line?) {
            entries.push(e);
        }
    }
    Ok(entries)
}

/// Seeds whose runs are complete.
pub fn finished_seeds(entries: &[JournalEntry]) -> BTreeSet<u64> {
    entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::SeedDone { seed, .. } => Some(*seed),
            _ => None,
        })
        .collect()
}

/// Check records of finished seeds, from each seed's last attempt only: an attempt
/// interrupted by a kill is redone from scratch on resume and its checks are void.
pub fn records(entries: &[JournalEntry]) -> Vec<CheckRecord> {
    let mut current: BTreeMap<u64, Vec<CheckRecord>> = BTreeMap::new();
    let mut finished: BTreeMap<u64, Vec<CheckRecord>> = BTreeMap::new();
    for e in entries {
        match e {
            JournalEntry::SeedStarted { seed } => {
                current.insert(*seed, Vec::new());
            }
            JournalEntry::Check(r) => current.entry(r.seed).or_default().push(r.clone()),
            JournalEntry::SeedDone { seed, .. } => {
                finished.insert(*seed, current.remove(seed).unwrap_or_default());
            }
        }
    }
    finished.into_values().flatten().collect()
}

/// Totals of the finished seeds (suppressions re-applied to the recorded titles).
pub fn totals(entries: &[JournalEntry], suppressions: &[regex::Regex]) -> Totals {
    let mut t = Totals::default();
    for mut r in records(entries) {
        r.suppressed = r
            .title
            .as_ref()
            .is_some_and(|title| suppressions.iter().any(|re| re.is_match(title)));
        t.add(&r);
    }
    let mut last_done: BTreeMap<u64, &Option<String>> = BTreeMap::new();
    for e in entries {
        if let JournalEntry::SeedDone { seed, infra } = e {
            last_done.insert(*seed, infra);
        }
    }
    for infra in last_done.values() {
        t.seeds += 1;
        if let Some(line) = infra {
            t.infra += 1;
            t.infra_problems.push(line.clone());
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::Verdict;

    #[test]
    fn journal_survives_reopen_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("j.jsonl");
        let mut j = Journal::open(&p).expect("open");
        j.append(&JournalEntry::Check(CheckRecord {
            seed: 3,
            point: "after op 1 (fsync)".into(),
            verdict: Verdict::Pass,
            title: None,
            millis: 5,
            suppressed: false,
        }))
        .expect("append");
        j.append(&JournalEntry::SeedDone {
            seed: 3,
            infra: None,
        })
        .expect("append");
        drop(j);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open");
        f.write_all(b"{\"entry\":\"che").expect("torn write");
        let mut j = Journal::open(&p).expect("reopen");
        j.append(&JournalEntry::SeedDone {
            seed: 4,
            infra: None,
        })
        .expect("append");
        let j = Journal::open(&p).expect("reopen");
        assert_eq!(
            j.finished_seeds().into_iter().collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(j.totals(&[]).passed, 1);
    }

    fn check(seed: u64, verdict: Verdict) -> JournalEntry {
        JournalEntry::Check(CheckRecord {
            seed,
            point: "after op 1 (fsync)".into(),
            verdict,
            title: (verdict != Verdict::Pass).then(|| format!("{verdict}: f0 after op 1 (fsync)")),
            millis: 1,
            suppressed: false,
        })
    }

    #[test]
    fn an_interrupted_attempt_is_not_counted_twice() {
        let entries = vec![
            JournalEntry::SeedStarted { seed: 1 },
            check(1, Verdict::Pass),
            // killed here; resumed:
            JournalEntry::SeedStarted { seed: 1 },
            check(1, Verdict::Pass),
            check(1, Verdict::DataLoss),
            JournalEntry::SeedDone {
                seed: 1,
                infra: None,
            },
            JournalEntry::SeedStarted { seed: 2 },
            check(2, Verdict::Pass),
        ];
        let t = totals(&entries, &[]);
        assert_eq!((t.seeds, t.checks, t.passed, t.failures), (1, 2, 1, 1));
    }

    #[test]
    fn suppressed_failures_do_not_count_as_failures() {
        let entries = vec![
            JournalEntry::SeedStarted { seed: 1 },
            check(1, Verdict::DataLoss),
            JournalEntry::SeedDone {
                seed: 1,
                infra: None,
            },
        ];
        let re = regex::Regex::new("^data-loss: f0").expect("regex");
        let t = totals(&entries, &[re]);
        assert_eq!((t.failures, t.suppressed.len()), (0, 1));
    }
}
