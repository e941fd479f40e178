//! Namespace episodes of the generator: short runs of `mkdir`, files made in
//! subdirectories, `link`, `symlink`, renames across directories, `renameat2` with each
//! flag, `unlink`/`rmdir`, each usually followed by the fsync that is meant to promise it
//! (of the file, of its directory, of the other directory, or of the workload directory).
//!
//! Episodes draw from their own RNG stream (stream 2 of the seed) and touch only their own
//! names (`d0`, `d1`, `d0/n0`, …) and links to the main files, so the main stream's choices
//! and the main files' ops are those of a workload without episodes.

use rand::Rng;

use super::Gen;
use crate::namespace::RenameFlag;
use crate::op::Op;

/// Subdirectories an episode may make.
const DIRS: [&str; 2] = ["d0", "d1"];
/// A directory two levels down, made and removed again.
const NESTED: &str = "d0/e";
/// Leaf names of episode files, symlinks and links.
const LEAVES: [&str; 3] = ["n0", "n1", "n2"];

impl Gen {
    /// Every path an episode may use for a file, symlink or link: a leaf in the workload
    /// directory or in one of [`DIRS`].
    fn ns_paths() -> Vec<String> {
        let mut out: Vec<String> = LEAVES.iter().map(|l| (*l).to_string()).collect();
        for d in DIRS {
            out.extend(LEAVES.iter().map(|l| format!("{d}/{l}")));
        }
        out
    }

    fn ns_pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.ns_rng.gen_range(0..items.len())].clone())
    }

    /// The directory `path` is in, as an `fsync_dir` names it.
    fn dir_of(path: &str) -> Option<String> {
        let p = crate::namespace::parent(path);
        (!p.is_empty()).then(|| p.to_string())
    }

    /// The promise that usually follows a namespace op on `path` (of `other` too, for a
    /// rename): an fsync of its directory, of the other directory, of the workload
    /// directory, of the file (when `file` is open), or nothing.
    fn ns_promise(&mut self, path: &str, other: Option<&str>, file: Option<String>) {
        match self.ns_rng.gen_range(0..10) {
            0..=3 => {
                self.emit(Op::FsyncDir {
                    dir: Self::dir_of(path),
                });
            }
            4..=5 => {
                if let Some(o) = other {
                    self.emit(Op::FsyncDir {
                        dir: Self::dir_of(o),
                    });
                } else {
                    self.emit(Op::fsync_root());
                }
            }
            6..=7 => {
                if let Some(file) = file.filter(|f| self.sim.held(f).fd) {
                    self.emit(Op::Fsync { file });
                } else {
                    self.emit(Op::FsyncDir {
                        dir: Self::dir_of(path),
                    });
                }
            }
            _ => {}
        }
    }

    /// One namespace episode.
    pub(super) fn namespace_episode(&mut self) {
        let paths = Self::ns_paths();
        let free: Vec<String> = paths
            .iter()
            .filter(|p| !self.sim.exists(p) && self.sim.is_dir(crate::namespace::parent(p)))
            .cloned()
            .collect();
        let files: Vec<String> = paths
            .iter()
            .filter(|p| self.sim.kind(p) == Some(crate::namespace::NodeKind::File))
            .cloned()
            .collect();
        let movable: Vec<String> = paths
            .iter()
            .filter(|p| self.sim.kind(p).is_some())
            .cloned()
            .collect();
        let missing_dirs: Vec<&str> = DIRS
            .iter()
            .copied()
            .filter(|d| !self.sim.exists(d))
            .collect();
        match self.ns_rng.gen_range(0..100) {
            0..=14 if !missing_dirs.is_empty() => {
                let dir = self.ns_pick(&missing_dirs).unwrap_or("d0").to_string();
                self.emit(Op::Mkdir { dir: dir.clone() });
                if self.ns_rng.gen_bool(0.5) {
                    self.emit(Op::fsync_root());
                } else if self.ns_rng.gen_bool(0.5) {
                    self.emit(Op::FsyncDir { dir: Some(dir) });
                }
            }
            0..=34 => {
                let Some(file) = self.ns_pick(&free) else {
                    return;
                };
                self.emit(Op::create(file.clone()));
                let len = self.ns_rng.gen_range(1..=8192u64);
                self.emit(Op::Pwrite {
                    file: file.clone(),
                    off: 0,
                    len,
                    pattern: None,
                });
                self.ns_promise(&file.clone(), None, Some(file));
            }
            35..=49 => {
                // A link to an episode file or to a main file.
                let mut sources = files.clone();
                sources.extend(
                    self.names
                        .iter()
                        .filter(|n| self.sim.kind(n) == Some(crate::namespace::NodeKind::File))
                        .cloned(),
                );
                let (Some(from), Some(to)) = (self.ns_pick(&sources), self.ns_pick(&free)) else {
                    return;
                };
                self.emit(Op::Link {
                    from: from.clone(),
                    to: to.clone(),
                });
                self.ns_promise(&to, Some(&from), Some(from.clone()));
            }
            50..=57 => {
                let Some(link) = self.ns_pick(&free) else {
                    return;
                };
                let target = self.ns_pick(&paths).unwrap_or_else(|| "n0".into());
                self.emit(Op::Symlink {
                    target,
                    link: link.clone(),
                });
                self.ns_promise(&link, None, None);
            }
            58..=85 => {
                let mut movable = movable;
                let flags = match self.ns_rng.gen_range(0..10) {
                    0..=2 => None,
                    3..=5 => Some(RenameFlag::Exchange),
                    6..=7 => Some(RenameFlag::Noreplace),
                    _ => Some(RenameFlag::Whiteout),
                };
                // An exchange needs two names: make one where there is room.
                if flags == Some(RenameFlag::Exchange) && movable.len() < 2 {
                    let Some(file) = self.ns_pick(&free) else {
                        return;
                    };
                    self.emit(Op::create(file.clone()));
                    movable.push(file);
                }
                let free: Vec<String> = free.into_iter().filter(|f| !self.sim.exists(f)).collect();
                let Some(from) = self.ns_pick(&movable) else {
                    return;
                };
                let targets: Vec<String> = match flags {
                    Some(RenameFlag::Exchange) => movable.clone(),
                    Some(RenameFlag::Noreplace) => free.clone(),
                    _ => free.iter().chain(movable.iter()).cloned().collect(),
                };
                let targets: Vec<String> = targets.into_iter().filter(|t| *t != from).collect();
                let Some(to) = self.ns_pick(&targets) else {
                    return;
                };
                let (f, t) = (from.clone(), to.clone());
                let ok = match flags {
                    None => self.emit(Op::Rename { from: f, to: t }),
                    Some(flags) => self.emit(Op::Renameat2 {
                        from: f,
                        to: t,
                        flags,
                    }),
                };
                if ok {
                    self.ns_promise(&to, Some(&from), Some(to.clone()));
                }
            }
            _ => {
                // Remove a name, or an empty directory (made here when none is empty).
                let empty: Vec<&str> = DIRS
                    .iter()
                    .copied()
                    .filter(|d| self.sim.exists(d) && !self.sim.has_children(d))
                    .collect();
                if self.ns_rng.gen_bool(0.5) {
                    let dir = match self.ns_pick(&empty) {
                        Some(d) => d.to_string(),
                        None if self.sim.is_dir("d0") && !self.sim.exists(NESTED) => {
                            self.emit(Op::Mkdir { dir: NESTED.into() });
                            self.ns_promise(NESTED, None, None);
                            NESTED.to_string()
                        }
                        None => return,
                    };
                    self.emit(Op::Rmdir { dir: dir.clone() });
                    self.ns_promise(&dir, None, None);
                } else if let Some(file) = self.ns_pick(&movable) {
                    self.emit(Op::Unlink { file: file.clone() });
                    self.ns_promise(&file, None, None);
                }
            }
        }
    }
}
