//! The simulation's namespace: subdirectories, hard links, symlinks, whiteouts and the
//! namespace ops (`mkdir`, `rmdir`, `link`, `symlink`, `renameat2`, `fsync_dir` of a
//! directory), and the checks every op on a path needs (its directory exists, it is the
//! right kind of object).

use super::{check_name, problem, Problem, Sim};
use crate::namespace::{check_target, parent, NodeKind, RenameFlag};
use crate::op::Op;

fn gone(field: &'static str, name: &str) -> Problem {
    problem(
        field,
        format!("`{name}` does not exist here (never made, or removed or renamed away)"),
    )
}

impl Sim {
    /// What `name` is, if it exists.
    pub fn kind(&self, name: &str) -> Option<NodeKind> {
        let &i = self.names.get(name)?;
        Some(self.kinds.get(i).copied().unwrap_or_default())
    }

    /// Is `path` an existing directory (`""`: the workload directory)?
    pub fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.kind(path) == Some(NodeKind::Dir)
    }

    /// Does directory `dir` hold any name?
    pub fn has_children(&self, dir: &str) -> bool {
        self.names.keys().any(|n| parent(n) == dir && !n.is_empty())
    }

    /// A new inode of kind `kind` named `name`.
    pub(super) fn new_inode(&mut self, name: &str, kind: NodeKind) -> usize {
        self.sizes.push(0);
        self.extents.push(0);
        self.kinds.push(kind);
        let i = self.sizes.len() - 1;
        self.names.insert(name.to_string(), i);
        i
    }

    /// The directory `name` would be made in must exist.
    pub(super) fn need_dir_of(&self, field: &'static str, name: &str) -> Result<(), Problem> {
        let dir = parent(name);
        if self.is_dir(dir) {
            Ok(())
        } else {
            Err(problem(
                field,
                format!("the directory `{dir}` of `{name}` does not exist here: `mkdir` it first"),
            ))
        }
    }

    /// `name` must be a `kind` (when it exists).
    pub(super) fn need_kind(
        &self,
        field: &'static str,
        name: &str,
        kind: NodeKind,
    ) -> Result<(), Problem> {
        match self.kind(name) {
            Some(k) if k != kind => Err(problem(
                field,
                format!("`{name}` is a {} here, not a {}", k.name(), kind.name()),
            )),
            _ => Ok(()),
        }
    }

    /// `name` must exist and not be a directory (renaming directories is not modelled:
    /// every path below one would change with it).
    pub(super) fn need_renamable(&self, field: &'static str, name: &str) -> Result<(), Problem> {
        match self.kind(name) {
            None => Err(gone(field, name)),
            Some(NodeKind::Dir) => Err(problem(
                field,
                format!("`{name}` is a directory; only files, symlinks and whiteouts are renamed"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// `from` and `to` must not be two links to one file: rename(2) and renameat2(2) then
    /// do nothing at all and return success (`vfs_rename()`: `source == target`), which the
    /// agent's and the oracle's tables of names do not model.
    pub(super) fn need_other_inode(&self, from: &str, to: &str) -> Result<(), Problem> {
        match (self.names.get(from), self.names.get(to)) {
            (Some(a), Some(b)) if a == b && from != to => Err(problem(
                "to",
                format!(
                    "`{from}` and `{to}` are links to one file here: the kernel renames nothing \
                     then (not modelled); unlink one of them instead"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// `name` must not exist and its directory must.
    fn need_new(&self, field: &'static str, name: &str, kind: &str) -> Result<(), Problem> {
        check_name(field, name)?;
        if self.exists(name) {
            return Err(problem(
                field,
                format!("`{name}` exists here; `{kind}` would fail with EEXIST"),
            ));
        }
        self.need_dir_of(field, name)
    }

    /// Check and apply a namespace op; `None` for every other op.
    pub(super) fn apply_namespace(&mut self, op: &Op) -> Option<Result<(), Problem>> {
        let done = match op {
            Op::FsyncDir { dir: Some(dir) } => check_name("dir", dir).and_then(|()| {
                if self.is_dir(dir) {
                    Ok(())
                } else {
                    Err(problem("dir", format!("`{dir}` is not a directory here")))
                }
            }),
            Op::FsyncDir { dir: None } => Ok(()),
            Op::Mkdir { dir } => self.need_new("dir", dir, "mkdir").map(|()| {
                self.new_inode(dir, NodeKind::Dir);
            }),
            Op::Rmdir { dir } => self.rmdir(dir),
            Op::Link { from, to } => self.link(from, to),
            Op::Symlink { target, link } => check_target(target)
                .map_err(|e| problem("target", e.0))
                .and_then(|()| self.need_new("link", link, "symlink"))
                .map(|()| {
                    self.new_inode(link, NodeKind::Symlink);
                }),
            Op::Renameat2 { from, to, flags } => self.renameat2(from, to, *flags),
            _ => return None,
        };
        Some(done)
    }

    fn rmdir(&mut self, dir: &str) -> Result<(), Problem> {
        check_name("dir", dir)?;
        match self.kind(dir) {
            None => return Err(gone("dir", dir)),
            Some(NodeKind::Dir) => {}
            Some(k) => {
                return Err(problem(
                    "dir",
                    format!("`{dir}` is a {}, not a directory", k.name()),
                ))
            }
        }
        if self.has_children(dir) {
            return Err(problem(
                "dir",
                format!("`{dir}` is not empty here; rmdir would fail with ENOTEMPTY"),
            ));
        }
        self.names.remove(dir);
        Ok(())
    }

    fn link(&mut self, from: &str, to: &str) -> Result<(), Problem> {
        check_name("from", from)?;
        let Some(&i) = self.names.get(from) else {
            return Err(gone("from", from));
        };
        self.need_kind("from", from, NodeKind::File)?;
        self.need_new("to", to, "link")?;
        self.names.insert(to.to_string(), i);
        Ok(())
    }

    fn renameat2(&mut self, from: &str, to: &str, flags: RenameFlag) -> Result<(), Problem> {
        check_name("from", from)?;
        check_name("to", to)?;
        self.need_renamable("from", from)?;
        self.need_other_inode(from, to)?;
        if from == to {
            return Err(problem(
                "to",
                "`from` and `to` are the same name (the kernel's answer differs per flag)".into(),
            ));
        }
        match flags {
            RenameFlag::Exchange => self.need_renamable("to", to)?,
            RenameFlag::Noreplace | RenameFlag::Whiteout if self.exists(to) => {
                if flags == RenameFlag::Noreplace {
                    return Err(problem(
                        "to",
                        format!("`{to}` exists here; RENAME_NOREPLACE would fail with EEXIST"),
                    ));
                }
                self.need_renamable("to", to)?;
            }
            _ => {}
        }
        self.need_dir_of("to", to)?;
        let a = self.names.remove(from).unwrap_or_default();
        let held_a = self.held.remove(from);
        let b = self.names.remove(to);
        let held_b = self.held.remove(to);
        self.names.insert(to.to_string(), a);
        if let Some(h) = held_a {
            self.held.insert(to.to_string(), h);
        }
        match flags {
            RenameFlag::Exchange => {
                if let Some(b) = b {
                    self.names.insert(from.to_string(), b);
                }
                if let Some(h) = held_b {
                    self.held.insert(from.to_string(), h);
                }
            }
            RenameFlag::Whiteout => {
                self.new_inode(from, NodeKind::Whiteout);
            }
            RenameFlag::Noreplace => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: &[Op]) -> Result<Sim, (usize, Problem)> {
        let mut sim = Sim::new();
        for (k, op) in ops.iter().enumerate() {
            sim.apply(op).map_err(|p| (k, p))?;
        }
        Ok(sim)
    }

    #[test]
    fn files_in_subdirectories_need_their_directory() {
        let err = run(&[Op::create("d0/f0")]).expect_err("no d0");
        assert!(err.1.message.contains("mkdir"), "{}", err.1.message);

        let sim = run(&[
            Op::Mkdir { dir: "d0".into() },
            Op::create("d0/f0"),
            Op::Link {
                from: "d0/f0".into(),
                to: "g".into(),
            },
        ])
        .expect("valid");
        assert_eq!(sim.kind("g"), Some(NodeKind::File));
        assert!(sim.has_children("d0"));
    }

    #[test]
    fn rmdir_needs_an_empty_directory_and_rename_refuses_directories() {
        let mk = Op::Mkdir { dir: "d0".into() };
        let err = run(&[
            mk.clone(),
            Op::create("d0/f"),
            Op::Rmdir { dir: "d0".into() },
        ])
        .expect_err("not empty");
        assert_eq!(err.0, 2);
        let err = run(&[
            mk,
            Op::Rename {
                from: "d0".into(),
                to: "d1".into(),
            },
        ])
        .expect_err("directory");
        assert_eq!(err.1.field, "from");
    }

    #[test]
    fn renames_between_links_of_one_file_are_refused() {
        let link = Op::Link {
            from: "a".into(),
            to: "b".into(),
        };
        for op in [
            Op::Rename {
                from: "a".into(),
                to: "b".into(),
            },
            Op::Renameat2 {
                from: "b".into(),
                to: "a".into(),
                flags: RenameFlag::Whiteout,
            },
        ] {
            let err = run(&[Op::create("a"), link.clone(), op]).expect_err("same inode");
            assert_eq!((err.0, err.1.field), (2, "to"));
        }
    }

    #[test]
    fn whiteout_leaves_a_whiteout_and_exchange_swaps() {
        let sim = run(&[
            Op::create("a"),
            Op::create("b"),
            Op::Renameat2 {
                from: "a".into(),
                to: "b".into(),
                flags: RenameFlag::Exchange,
            },
            Op::Renameat2 {
                from: "b".into(),
                to: "c".into(),
                flags: RenameFlag::Whiteout,
            },
        ])
        .expect("valid");
        assert_eq!(sim.kind("b"), Some(NodeKind::Whiteout));
        assert!(sim.held("c").fd);
        assert!(sim.held("a").fd);
        let err = run(&[
            Op::create("a"),
            Op::create("b"),
            Op::Renameat2 {
                from: "a".into(),
                to: "b".into(),
                flags: RenameFlag::Noreplace,
            },
        ])
        .expect_err("EEXIST");
        assert!(err.1.message.contains("EEXIST"));
    }
}
