//! The results journal: append-only JSON lines, fsync'd after every entry, so a campaign
//! killed at any point keeps every recorded result and `--resume` skips finished seeds.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use super::{CheckRecord, Totals};

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum JournalEntry {
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
        let mut entries = Vec::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                if let Ok(e) = serde_json::from_str::<JournalEntry>(&line) {
                    entries.push(e);
                }
            }
        }
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
        self.entries
            .iter()
            .filter_map(|e| match e {
                JournalEntry::SeedDone { seed, .. } => Some(*seed),
                JournalEntry::Check(_) => None,
            })
            .collect()
    }

    /// Check records of finished seeds (checks of an unfinished seed are redone).
    pub fn records(&self) -> Vec<CheckRecord> {
        let done = self.finished_seeds();
        self.entries
            .iter()
            .filter_map(|e| match e {
                JournalEntry::Check(r) if done.contains(&r.seed) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Totals of the finished seeds.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in self.records() {
            t.checks += 1;
            match r.verdict {
                Verdict::Pass => t.passed += 1,
                v if v.is_kernel_bug() => {
                    t.failures += 1;
                    if let Some(title) = r.title {
                        t.distinct_failures.insert(title);
                    }
                }
                _ => t.infra += 1,
            }
        }
        for e in &self.entries {
            if let JournalEntry::SeedDone { infra, .. } = e {
                t.seeds += 1;
                if let Some(line) = infra {
                    t.infra += 1;
                    t.infra_problems.push(line.clone());
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(j.totals().passed, 1);
    }
}
