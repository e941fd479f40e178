//! The oracle's namespace rules: subdirectories, hard links, symlinks, whiteouts, renames
//! across directories and `renameat2`, and what an fsync of a file or of a directory makes
//! durable of them.
//!
//! POSIX (`FsRules::generic`): an fsync of a directory makes its own entries durable, and
//! nothing else is promised about names. ext4 and xfs (`FsRules::journal_prefix`) log every
//! namespace op in a journal transaction that also logs each inode it changes (a new
//! inode; the inode whose link count or ctime a `link`, `unlink`, `rename` or
//! `renameat2` changes; the directories whose entries change), and a journal commits its
//! transactions in order. An fsync forces the transaction that last logged the inode
//! (ext4: `ext4_fsync_journal()` commits `i_sync_tid`, and a directory's fsync forces a
//! full commit; xfs: `xfs_file_fsync()`/`xfs_dir_fsync()` force the log to the inode's
//! `ili_commit_seq`), so every namespace op up to the last one that changed that inode is
//! durable after it returns. An `fdatasync` is only trusted with the op that made the file
//! (ext4 sets `i_datasync_tid` at inode creation but not for a ctime or link-count change).

use super::{Entry, Inode, Model, Name};
use crate::namespace::{parent, NodeKind, RenameFlag};
use crate::op::Op;

impl Model {
    /// Op `k` changed an entry of directory `dir` (`""`: the workload directory).
    pub(super) fn touch_dir(&mut self, dir: &str, k: usize) {
        if dir.is_empty() {
            self.root_ns_op = Some(k);
        } else if let Some(i) = self.names.get(dir).and_then(Name::current) {
            self.inodes[i].last_ns_op = Some(k);
        }
    }

    /// Every namespace op up to op `j` is durable, promised by op `by`.
    fn commit_through(&mut self, j: usize, by: usize) {
        for n in self.names.values_mut() {
            n.commit_through(j, by);
        }
    }

    /// The names an fsync (or, with `datasync`, an fdatasync) of inode `i`, held as `file`,
    /// makes durable as op `k` (the inode is not tainted).
    pub(super) fn fsync_names(&mut self, file: &str, i: usize, datasync: bool, k: usize) {
        let names_it = if datasync {
            self.rules.fdatasync_makes_new_name_durable
        } else {
            self.rules.fsync_makes_new_name_durable
        };
        if !names_it {
            return;
        }
        if self.rules.journal_prefix {
            let ino = &self.inodes[i];
            let through = if datasync {
                ino.created_by
            } else {
                ino.last_ns_op
            };
            if let Some(j) = through {
                self.commit_through(j, k);
            }
            return;
        }
        // Only a name made by `create` of this inode.
        let n = self.name(file);
        if n.created_here && n.current() == Some(i) {
            n.make_durable(k);
        }
    }

    /// `fsync_dir` of `dir` (`""`: the workload directory) as op `k`: its entries are
    /// durable; with `journal_prefix`, every namespace op up to the last one that changed
    /// the directory (its own `mkdir` included).
    pub(super) fn fsync_dir(&mut self, dir: &str, k: usize) {
        let last = if dir.is_empty() {
            self.root_ns_op
        } else {
            match self.names.get(dir).and_then(Name::current) {
                Some(i) if !self.inodes[i].tainted && self.inodes[i].kind == NodeKind::Dir => {
                    self.inodes[i].last_ns_op
                }
                _ => return,
            }
        };
        if self.rules.journal_prefix {
            if let Some(j) = last {
                self.commit_through(j, k);
            }
        }
        for (name, n) in self.names.iter_mut() {
            if parent(name) == dir {
                n.make_durable(k);
            }
        }
    }

    /// `rename(from, to)` as op `k`. Permissive: until a promise, each name may show its
    /// old or new binding independently (a crash may even leave both names or neither).
    pub(super) fn rename(&mut self, from: &str, to: &str, k: usize) {
        let Some(i) = self.names.get(from).and_then(Name::current) else {
            return;
        };
        // Two links to one file: the kernel does nothing (`vfs_rename()`, `source ==
        // target`); validation refuses it, an op of unknown outcome may still get here.
        if from == to || self.names.get(to).and_then(Name::current) == Some(i) {
            return;
        }
        if let Some(old) = self.names.get(to).and_then(Name::current) {
            self.inodes[old].last_ns_op = Some(k);
        }
        self.inodes[i].last_ns_op = Some(k);
        self.name(to).bind(Some(i), k);
        self.name(from).bind(None, k);
        self.touch_dir(parent(from), k);
        self.touch_dir(parent(to), k);
        self.held.remove(to);
        if let Some(e) = self.held.remove(from) {
            self.held.insert(to.to_string(), e);
        }
    }

    /// A new inode of `kind` named `name`, made by op `k`.
    fn make_node(&mut self, name: &str, kind: NodeKind, target: Option<String>, k: usize) {
        let mut ino = Inode::new(kind, k);
        ino.target = target;
        self.inodes.push(ino);
        let i = self.inodes.len() - 1;
        self.name(name).bind(Some(i), k);
        self.touch_dir(parent(name), k);
    }

    /// `mkdir`, `rmdir`, `link`, `symlink` and `renameat2` as op `k`.
    pub(super) fn replay_namespace(&mut self, k: usize, op: &Op) {
        match op {
            Op::Mkdir { dir } => self.make_node(dir, NodeKind::Dir, None, k),
            Op::Symlink { target, link } => {
                self.make_node(link, NodeKind::Symlink, Some(target.clone()), k);
            }
            Op::Rmdir { dir } => {
                if let Some(i) = self.names.get(dir).and_then(Name::current) {
                    self.inodes[i].last_ns_op = Some(k);
                }
                self.name(dir).bind(None, k);
                self.touch_dir(parent(dir), k);
            }
            Op::Link { from, to } => {
                let Some(i) = self.names.get(from).and_then(Name::current) else {
                    return;
                };
                self.inodes[i].last_ns_op = Some(k);
                self.name(to).bind(Some(i), k);
                self.touch_dir(parent(to), k);
            }
            Op::Renameat2 { from, to, flags } => self.renameat2(from, to, *flags, k),
            _ => {}
        }
    }

    fn renameat2(&mut self, from: &str, to: &str, flags: RenameFlag, k: usize) {
        let a = self.names.get(from).and_then(Name::current);
        let b = self.names.get(to).and_then(Name::current);
        match flags {
            RenameFlag::Exchange => {
                let (Some(a), Some(b)) = (a, b) else {
                    return; // ENOENT
                };
                if from == to || a == b {
                    return;
                }
                // Permissive: the exchanged inodes are not taken as logged. ext4 marks
                // both dirty (ext4_cross_rename), but xfs_cross_rename() logs a file's inode
                // only when a directory moved between parents, so an fsync of an exchanged
                // file need not commit the exchange on xfs; an fsync of either directory
                // does.
                self.name(to).bind(Some(a), k);
                self.name(from).bind(Some(b), k);
                self.touch_dir(parent(from), k);
                self.touch_dir(parent(to), k);
                let ea = self.held.remove(from);
                let eb = self.held.remove(to);
                let put = |held: &mut std::collections::BTreeMap<String, Entry>,
                           name: &str,
                           e: Option<Entry>| {
                    if let Some(e) = e {
                        held.insert(name.to_string(), e);
                    }
                };
                put(&mut self.held, to, ea);
                put(&mut self.held, from, eb);
            }
            // EEXIST: nothing changes.
            RenameFlag::Noreplace if b.is_some() => {}
            RenameFlag::Noreplace => self.rename(from, to, k),
            RenameFlag::Whiteout => {
                if a.is_none() || from == to || a == b {
                    return;
                }
                self.rename(from, to, k);
                self.make_node(from, NodeKind::Whiteout, None, k);
            }
        }
    }
}
