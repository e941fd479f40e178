//! How lost mmap data was stored: through a MAP_SYNC mapping, and whether a store's write
//! fault allocated the block (the fault is then synchronous: `dax_finish_sync_fault()`).
//! Pure logic over the workload's ops, for failure buckets ([`super::bucket`]): a known bug
//! that needs these conditions (xfs `sync()` skipping MAP_SYNC stores) gets a bucket of its
//! own, so suppressing it hides no other loss of mmap data.

use std::collections::{BTreeMap, HashMap};

use workloads::{FallocMode, Op, Workload};

/// Page size the allocation model uses (the file systems' block size on these images).
const PAGE: u64 = 4096;

/// The store went through a `MAP_SHARED_VALIDATE | MAP_SYNC` mapping.
pub const MAP_SYNC: &str = "map_sync";
/// A store through a MAP_SYNC mapping allocated the block of (a page of) the lost range.
pub const FAULT_ALLOC: &str = "fault_alloc";

/// Who allocated a page's block, as far as the ops tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alloc {
    /// A write(2)-family call, `fallocate`, or a store through a plain mapping.
    Other,
    /// A store through a MAP_SYNC mapping (its write fault was synchronous).
    SyncStore,
}

/// One file (inode) while the ops run.
#[derive(Debug, Default)]
struct File {
    /// Pages with a block, and who allocated it. `None`: unknown (the file was not created
    /// by the workload, or a collapse/insert moved its blocks): no page counts as allocated
    /// by a sync store.
    pages: Option<BTreeMap<u64, Alloc>>,
    /// The file's mapping: `Some(true)` MAP_SYNC, `Some(false)` plain, `None` unmapped.
    mapped_sync: Option<bool>,
}

impl File {
    fn created() -> File {
        File {
            pages: Some(BTreeMap::new()),
            mapped_sync: None,
        }
    }

    /// Blocks of `[off, off+len)` not yet allocated become allocated by `by`.
    fn allocate(&mut self, off: u64, len: u64, by: Alloc) {
        if let Some(pages) = &mut self.pages {
            for p in page_range(off, len) {
                pages.entry(p).or_insert(by);
            }
        }
    }

    /// Whole pages of `[off, off+len)` lose their blocks.
    fn deallocate(&mut self, off: u64, len: u64) {
        if let Some(pages) = &mut self.pages {
            let first = off.div_ceil(PAGE);
            let end = off.saturating_add(len) / PAGE;
            if first < end {
                let gone: Vec<u64> = pages.range(first..end).map(|(&p, _)| p).collect();
                for p in gone {
                    pages.remove(&p);
                }
            }
        }
    }
}

/// Page indexes that `[off, off+len)` touches (bounded by the op's own length).
fn page_range(off: u64, len: u64) -> std::ops::Range<u64> {
    if len == 0 {
        return 0..0;
    }
    off / PAGE..off.saturating_add(len).div_ceil(PAGE)
}

/// How the data that op `writer` (a `mmap_store`) wrote to `[start, end)` was stored:
/// [`MAP_SYNC`] when the store went through a MAP_SYNC mapping, and then [`FAULT_ALLOC`] too
/// when a page of the range had its block allocated by a store through a MAP_SYNC mapping
/// (no write, `fallocate` or plain-mapping store allocated it first). Empty for any other
/// writer. Failed ops are not known here: each op counts as having run.
pub fn store_traits(workload: &Workload, writer: usize, start: u64, end: u64) -> Vec<&'static str> {
    let Some(Op::MmapStore { file: target, .. }) = workload.ops.get(writer) else {
        return Vec::new();
    };
    let mut inodes: Vec<File> = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for op in workload.ops.iter().take(writer) {
        apply(op, &mut inodes, &mut names);
    }
    let Some(f) = names.get(target.as_str()).and_then(|&i| inodes.get(i)) else {
        return Vec::new();
    };
    if f.mapped_sync != Some(true) {
        return Vec::new();
    }
    let sync_alloc = |pages: &BTreeMap<u64, Alloc>| {
        page_range(start, end.saturating_sub(start)).any(|p| match pages.get(&p) {
            // The lost store itself allocates an unallocated page (through this mapping).
            None => true,
            Some(a) => *a == Alloc::SyncStore,
        })
    };
    if f.pages.as_ref().is_some_and(sync_alloc) {
        vec![MAP_SYNC, FAULT_ALLOC]
    } else {
        vec![MAP_SYNC]
    }
}

/// One op's effect on names, mappings and blocks.
fn apply<'w>(op: &'w Op, inodes: &mut Vec<File>, names: &mut HashMap<&'w str, usize>) {
    let mut file_of = |name: &'w str, inodes: &mut Vec<File>| -> usize {
        *names.entry(name).or_insert_with(|| {
            inodes.push(File::default());
            inodes.len() - 1
        })
    };
    match op {
        Op::Create { file, .. } => {
            let i = file_of(file, inodes);
            // O_TRUNC: an existing file loses its blocks; a new one starts empty.
            let mapped = inodes[i].mapped_sync;
            inodes[i] = File {
                mapped_sync: mapped,
                ..File::created()
            };
        }
        Op::Pwrite { file, off, len, .. }
        | Op::Pwritev2 { file, off, len, .. }
        | Op::UringWrite { file, off, len, .. } => {
            let i = file_of(file, inodes);
            inodes[i].allocate(*off, *len, Alloc::Other);
        }
        Op::MmapStore { file, off, len, .. } => {
            let i = file_of(file, inodes);
            let by = match inodes[i].mapped_sync {
                Some(true) => Alloc::SyncStore,
                _ => Alloc::Other,
            };
            inodes[i].allocate(*off, *len, by);
        }
        Op::Mmap { file, sync, .. } => {
            let i = file_of(file, inodes);
            inodes[i].mapped_sync = Some(*sync);
        }
        Op::Munmap { file, .. } | Op::Close { file, .. } => {
            let i = file_of(file, inodes);
            inodes[i].mapped_sync = None;
        }
        Op::Ftruncate { file, size, .. } => {
            let i = file_of(file, inodes);
            inodes[i].deallocate(size.div_ceil(PAGE) * PAGE, u64::MAX / 2);
        }
        Op::Fallocate {
            file,
            mode,
            off,
            len,
        } => {
            let i = file_of(file, inodes);
            match mode {
                FallocMode::Allocate | FallocMode::KeepSize | FallocMode::ZeroRange => {
                    inodes[i].allocate(*off, *len, Alloc::Other)
                }
                FallocMode::PunchHole => inodes[i].deallocate(*off, *len),
                FallocMode::CollapseRange | FallocMode::InsertRange => inodes[i].pages = None,
            }
        }
        Op::Rename { from, to } => {
            if let Some(i) = names.remove(from.as_str()) {
                names.insert(to.as_str(), i);
            } else {
                names.remove(to.as_str());
            }
        }
        Op::Unlink { file, .. } => {
            names.remove(file.as_str());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(yaml: &str) -> Workload {
        serde_yaml::from_str(&format!("name: t\nseed: 1\nops:\n{yaml}")).unwrap()
    }

    #[test]
    fn sparse_file_stored_through_map_sync_is_fault_alloc() {
        // The second finding's spec: ftruncate up (no blocks), MAP_SYNC, store, sync.
        let wl = w("  - {op: create, file: f0}
  - {op: ftruncate, file: f0, size: 65536}
  - {op: fsync, file: f0}
  - {op: mmap, file: f0, len: 65536, sync: true}
  - {op: mmap_store, file: f0, off: 8192, len: 8192}
  - {op: sync}");
        assert_eq!(store_traits(&wl, 4, 8192, 16384), [MAP_SYNC, FAULT_ALLOC]);
    }

    #[test]
    fn written_blocks_stored_through_map_sync_are_not_fault_alloc() {
        let wl = w("  - {op: create, file: f0}
  - {op: pwrite, file: f0, off: 0, len: 16384}
  - {op: mmap, file: f0, len: 16384, sync: true}
  - {op: mmap_store, file: f0, off: 4096, len: 100}");
        assert_eq!(store_traits(&wl, 3, 4096, 4196), [MAP_SYNC]);
    }

    #[test]
    fn plain_mapping_has_no_traits_and_its_blocks_are_not_sync_allocated() {
        let wl = w("  - {op: create, file: f0}
  - {op: ftruncate, file: f0, size: 16384}
  - {op: mmap, file: f0, len: 16384}
  - {op: mmap_store, file: f0, off: 0, len: 4096}
  - {op: munmap, file: f0}
  - {op: mmap, file: f0, len: 16384, sync: true}
  - {op: mmap_store, file: f0, off: 0, len: 64}
  - {op: mmap_store, file: f0, off: 4096, len: 64}");
        assert!(store_traits(&wl, 3, 0, 4096).is_empty());
        // Page 0 was allocated by the plain store; page 1 by the MAP_SYNC store itself.
        assert_eq!(store_traits(&wl, 6, 0, 64), [MAP_SYNC]);
        assert_eq!(store_traits(&wl, 7, 4096, 4160), [MAP_SYNC, FAULT_ALLOC]);
    }

    #[test]
    fn an_earlier_sync_store_that_allocated_the_page_counts() {
        // The lost store did not fault (the page was mapped writable by the first store,
        // whose fault allocated the block): still the synchronous-fault case.
        let wl = w("  - {op: create, file: f0}
  - {op: ftruncate, file: f0, size: 8192}
  - {op: mmap, file: f0, len: 8192, sync: true}
  - {op: mmap_store, file: f0, off: 0, len: 64}
  - {op: mmap_store, file: f0, off: 128, len: 64}");
        assert_eq!(store_traits(&wl, 4, 128, 192), [MAP_SYNC, FAULT_ALLOC]);
    }

    #[test]
    fn punch_truncate_and_recreate_free_blocks_rename_follows_the_file() {
        let wl = w("  - {op: create, file: a}
  - {op: pwrite, file: a, off: 0, len: 16384}
  - {op: fallocate, file: a, mode: punch_hole, off: 4096, len: 4096}
  - {op: ftruncate, file: a, size: 10000}
  - {op: rename, from: a, to: b}
  - {op: mmap, file: b, len: 16384, sync: true}
  - {op: mmap_store, file: b, off: 0, len: 64}
  - {op: mmap_store, file: b, off: 4096, len: 64}
  - {op: mmap_store, file: b, off: 8192, len: 64}
  - {op: mmap_store, file: b, off: 12288, len: 64}");
        assert_eq!(store_traits(&wl, 6, 0, 64), [MAP_SYNC]);
        assert_eq!(store_traits(&wl, 7, 4096, 4160), [MAP_SYNC, FAULT_ALLOC]);
        // Truncating to 10000 keeps the page 8192..12288 (partial), frees 12288.. .
        assert_eq!(store_traits(&wl, 8, 8192, 8256), [MAP_SYNC]);
        assert_eq!(store_traits(&wl, 9, 12288, 12352), [MAP_SYNC, FAULT_ALLOC]);
    }

    #[test]
    fn shifted_or_unknown_files_are_never_fault_alloc() {
        let wl = w("  - {op: open, file: old}
  - {op: mmap, file: old, len: 8192, sync: true}
  - {op: mmap_store, file: old, off: 0, len: 64}
  - {op: create, file: f0}
  - {op: pwrite, file: f0, off: 0, len: 16384}
  - {op: fallocate, file: f0, mode: collapse_range, off: 4096, len: 4096}
  - {op: mmap, file: f0, len: 16384, sync: true}
  - {op: mmap_store, file: f0, off: 8192, len: 64}");
        assert_eq!(store_traits(&wl, 2, 0, 64), [MAP_SYNC]);
        assert_eq!(store_traits(&wl, 7, 8192, 8256), [MAP_SYNC]);
    }

    #[test]
    fn writers_other_than_stores_have_no_traits() {
        let wl = w("  - {op: create, file: f0}
  - {op: pwrite, file: f0, off: 0, len: 64}");
        assert!(store_traits(&wl, 1, 0, 64).is_empty());
        assert!(store_traits(&wl, 99, 0, 64).is_empty());
    }
}
