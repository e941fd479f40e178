//! The corpus directory of a guided campaign: one workload file per entry (`<id>.yaml`)
//! and `index.json` (the kernel its blocks are of, and per entry: origin, parents, blocks
//! added, picks and finds). It outlives a run directory (`--corpus DIR`), so what is read
//! back is hostile input: every file is bounded and validated, and a bad entry is skipped
//! with a warning naming it, never a panic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::Workload;

use super::corpus::{count, Corpus, Entry};

/// The default corpus directory in a run directory.
pub const CORPUS_DIR: &str = "corpus";
/// The index file.
pub const INDEX: &str = "index.json";
/// Version of `index.json`.
pub const INDEX_SCHEMA: u32 = 1;
/// Largest `index.json` read back.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Most entries read back (the rest are skipped with a warning).
pub const MAX_ENTRIES: usize = 10_000;
/// Most blocks one entry may say it added (a map has some 10⁵ blocks).
pub const MAX_ENTRY_BLOCKS: usize = 1_000_000;

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// [`INDEX_SCHEMA`].
    pub schema: u32,
    /// The kernel release of the code map the blocks index into.
    pub kernel: String,
    /// The entries, in the order they were admitted.
    pub entries: Vec<Entry>,
}

/// An error writing the corpus directory.
#[derive(Debug, thiserror::Error)]
#[error("corpus {path}: {source}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The corpus directory held by one campaign (an exclusive lock on `<corpus>/.lock`, which
/// the kernel releases when the process dies); dropped, it is free again.
#[derive(Debug)]
pub struct CorpusLock {
    _file: std::fs::File,
}

/// A corpus read back: the entries with their workloads, and what was skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The corpus (its seen blocks kept only when the index is of the same kernel).
    pub corpus: Corpus,
    /// The workload of each entry, in the corpus' order.
    pub workloads: Vec<Workload>,
    /// One line per skipped file or entry, naming it.
    pub warnings: Vec<String>,
}

/// A corpus directory.
#[derive(Debug, Clone)]
pub struct CorpusDir {
    root: PathBuf,
}

impl CorpusDir {
    /// The corpus in `root` (created when the first entry is written).
    pub fn new(root: &Path) -> CorpusDir {
        CorpusDir {
            root: root.to_owned(),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hold the corpus for this campaign; `Err` (saying so) when another process holds it:
    /// two campaigns adding entries to one corpus would overwrite each other's.
    pub fn lock(&self) -> Result<CorpusLock, String> {
        let path = self.root.join(".lock");
        let what = |e: std::io::Error| format!("locking the corpus {}: {e}", path.display());
        std::fs::create_dir_all(&self.root).map_err(what)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(what)?;
        match file.try_lock() {
            Ok(()) => Ok(CorpusLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "the corpus {} is in use by another campaign (one campaign at a time per --corpus: give this one another directory)",
                self.root.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(what(e)),
        }
    }

    /// The workload file of entry `id`.
    pub fn entry_file(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.yaml"))
    }

    /// Read the corpus back for `kernel` and a pmem of `pmem_bytes`: a missing directory or
    /// index is an empty corpus; an unreadable index, an entry with a bad id or too many
    /// blocks, or a workload file that is missing, too large or invalid is skipped with a
    /// warning.
    pub fn load(&self, kernel: &str, pmem_bytes: u64) -> Loaded {
        let mut out = Loaded::default();
        let path = self.root.join(INDEX);
        let index = match crate::input::read(&path, MAX_INDEX_BYTES, "corpus index") {
            Ok(bytes) => match serde_json::from_slice::<Index>(&bytes) {
                Ok(i) if i.schema == INDEX_SCHEMA => i,
                Ok(i) => {
                    out.warnings.push(format!(
                        "{}: schema {} (this powercut reads {INDEX_SCHEMA}): starting an empty corpus",
                        path.display(),
                        i.schema
                    ));
                    return out;
                }
                Err(e) => {
                    out.warnings
                        .push(format!("{}: {e}: starting an empty corpus", path.display()));
                    return out;
                }
            },
            Err(e) if e.is_not_found() => return out,
            Err(e) => {
                out.warnings
                    .push(format!("{}: {e}: starting an empty corpus", path.display()));
                return out;
            }
        };
        let same_kernel = index.kernel == kernel;
        if !same_kernel && !index.entries.is_empty() {
            out.warnings.push(format!(
                "{}: its blocks are of kernel {}, this campaign's is {kernel}: the workloads are kept as parents, their blocks forgotten",
                path.display(),
                index.kernel
            ));
        }
        let total = index.entries.len();
        let mut entries = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for e in index.entries.into_iter().take(MAX_ENTRIES) {
            if !ids.insert(e.id.clone()) {
                out.warnings.push(format!(
                    "{}: entry id `{}` listed twice: the second is skipped",
                    path.display(),
                    e.id.escape_debug()
                ));
                continue;
            }
            match self.check_entry(&e, pmem_bytes) {
                Ok(w) => {
                    entries.push(e);
                    out.workloads.push(w);
                }
                Err(why) => out.warnings.push(why),
            }
        }
        if total > MAX_ENTRIES {
            out.warnings.push(format!(
                "{}: {total} entries; the first {MAX_ENTRIES} are read",
                path.display()
            ));
        }
        out.corpus = Corpus::of(entries, same_kernel);
        out
    }

    /// The workload of entry `e`, or the warning that skips it.
    fn check_entry(&self, e: &Entry, pmem_bytes: u64) -> Result<Workload, String> {
        let ok_id = e.id.len() <= 32
            && e.id.starts_with('c')
            && e.id[1..].chars().all(|c| c.is_ascii_digit())
            && e.id.len() > 1;
        if !ok_id {
            return Err(format!(
                "{}: entry id `{}` is not `c<digits>`: skipped",
                self.root.join(INDEX).display(),
                e.id.escape_debug()
            ));
        }
        if count(&e.added) > MAX_ENTRY_BLOCKS {
            return Err(format!(
                "{}: entry {} lists more than {MAX_ENTRY_BLOCKS} blocks: skipped",
                self.root.join(INDEX).display(),
                e.id
            ));
        }
        let file = self.entry_file(&e.id);
        let text = crate::input::read_to_string(
            &file,
            workloads::spec::MAX_WORKLOAD_FILE_BYTES,
            "corpus workload",
        )
        .map_err(|err| format!("{}: {err}: skipped", file.display()))?;
        let origin = file.display().to_string();
        let w = workloads::spec::parse_workload(&text, &origin)
            .map_err(|err| format!("{err}: skipped"))?;
        workloads::spec::check_fits(&w, pmem_bytes).map_err(|err| format!("{err}: skipped"))?;
        Ok(w)
    }

    /// Write entry `id`'s workload (`yaml`), then the index of `corpus` for `kernel` (last,
    /// so the index never names a missing file).
    pub fn save(
        &self,
        id: &str,
        yaml: &str,
        corpus: &Corpus,
        kernel: &str,
    ) -> Result<(), StoreError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError { path, source }
        };
        std::fs::create_dir_all(&self.root).map_err(err(&self.root))?;
        let file = self.entry_file(id);
        crate::host::write_atomically(&file, yaml.as_bytes()).map_err(err(&file))?;
        self.write_index(corpus, kernel)
    }

    /// Write the index of `corpus` (its picks and finds change as the campaign goes).
    pub fn write_index(&self, corpus: &Corpus, kernel: &str) -> Result<(), StoreError> {
        let path = self.root.join(INDEX);
        let index = Index {
            schema: INDEX_SCHEMA,
            kernel: kernel.to_owned(),
            entries: corpus.entries().to_vec(),
        };
        let json = serde_json::to_vec_pretty(&index).map_err(|e| StoreError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::host::write_atomically(&path, &json).map_err(|source| StoreError { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guided::corpus::Blocks;

    fn blocks(k: &str, v: &[u32]) -> Blocks {
        [(k.to_owned(), v.iter().copied().collect())]
            .into_iter()
            .collect()
    }

    fn saved(dir: &Path) -> CorpusDir {
        let store = CorpusDir::new(dir);
        let mut c = Corpus::default();
        for (i, seed) in [1u64, 2].into_iter().enumerate() {
            let w = workloads::generator::generate(seed, workloads::generator::Profile::Smoke);
            let yaml = serde_yaml::to_string(&w).expect("yaml");
            let id = c
                .admit(format!("seed {seed}"), vec![], blocks("f", &[i as u32]))
                .id
                .clone();
            store.save(&id, &yaml, &c, "6.12").expect("save");
        }
        store
    }

    #[test]
    fn a_corpus_reads_back_with_its_blocks_on_the_same_kernel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = saved(dir.path());

        let same = store.load("6.12", 256 << 20);
        let other = store.load("7.3", 256 << 20);

        assert!(same.warnings.is_empty(), "{:?}", same.warnings);
        assert_eq!(same.corpus.entries().len(), 2);
        assert_eq!(same.workloads[1].name, "seed-2");
        assert_eq!(count(same.corpus.seen()), 2);
        assert_eq!(other.corpus.entries().len(), 2);
        assert_eq!(count(other.corpus.seen()), 0);
        assert_eq!(other.warnings.len(), 1);
    }

    #[test]
    fn bad_files_and_entries_are_skipped_with_a_warning_naming_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = saved(dir.path());
        std::fs::write(store.entry_file("c000000"), "name: x\nops: [{op: fsync}]\n")
            .expect("write");
        let index = std::fs::read_to_string(dir.path().join(INDEX)).expect("index");
        let hostile = index.replace("\"c000001\"", "\"../../etc/passwd\"");
        std::fs::write(dir.path().join(INDEX), hostile).expect("write");

        let loaded = store.load("6.12", 256 << 20);

        assert_eq!(loaded.corpus.entries().len(), 0);
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("c000000.yaml"));
        assert!(loaded.warnings[1].contains("../../etc/passwd"));
    }

    #[test]
    fn an_id_listed_twice_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = saved(dir.path());
        let index = std::fs::read_to_string(dir.path().join(INDEX)).expect("index");
        let twice = index.replacen("\"c000000\"", "\"c000001\"", 1);
        std::fs::write(dir.path().join(INDEX), twice).expect("write");

        let loaded = store.load("6.12", 256 << 20);

        assert_eq!(loaded.corpus.entries().len(), 1);
        assert!(
            loaded.warnings[0].contains("listed twice"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_corpus_is_held_by_one_campaign_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CorpusDir::new(&dir.path().join("c"));

        let held = store.lock().expect("free");
        let second = store.lock().expect_err("held");
        drop(held);

        assert!(second.contains("in use by another campaign"), "{second}");
        assert!(store.lock().is_ok());
    }

    #[test]
    fn a_garbage_or_missing_index_is_an_empty_corpus() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CorpusDir::new(&dir.path().join("none"));
        assert!(store.load("k", 1 << 30).warnings.is_empty());

        std::fs::write(dir.path().join(INDEX), b"\x00garbage").expect("write");
        let loaded = CorpusDir::new(dir.path()).load("k", 1 << 30);

        assert_eq!(loaded.corpus.entries().len(), 0);
        assert!(loaded.warnings[0].contains(INDEX), "{:?}", loaded.warnings);
    }
}
