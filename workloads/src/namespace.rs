//! The namespace vocabulary: paths of files and subdirectories below the workload directory
//! (`d0/f1`), their bounds and checks, and the `renameat2(2)` flags. Shared by the op model,
//! validation, the generator, the oracle and the agent.

use serde::{Deserialize, Serialize};

/// Most subdirectory levels a path may go down (`d0/d1/f0` is two levels).
pub const MAX_DEPTH: usize = 2;
/// Longest path (all components and slashes), bytes.
pub const MAX_PATH_LEN: usize = 200;
/// Longest symlink text, bytes.
pub const MAX_TARGET_LEN: usize = 200;
/// Longest single component, bytes (the old flat name bound).
pub const MAX_COMPONENT_LEN: usize = 64;

/// The flag of a `renameat2(2)` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenameFlag {
    /// `RENAME_EXCHANGE`: both names exist and swap their files atomically.
    Exchange,
    /// `RENAME_NOREPLACE`: fails with EEXIST if `to` exists.
    Noreplace,
    /// `RENAME_WHITEOUT`: like rename, and a whiteout (a character device 0:0) takes the
    /// place of `from`.
    Whiteout,
}

impl RenameFlag {
    /// Every flag.
    pub const ALL: [RenameFlag; 3] = [
        RenameFlag::Exchange,
        RenameFlag::Noreplace,
        RenameFlag::Whiteout,
    ];

    /// The flag as spelled in YAML.
    pub fn name(self) -> &'static str {
        match self {
            RenameFlag::Exchange => "exchange",
            RenameFlag::Noreplace => "noreplace",
            RenameFlag::Whiteout => "whiteout",
        }
    }

    /// The flag named `s`.
    pub fn from_name(s: &str) -> Option<RenameFlag> {
        RenameFlag::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// What kind of object a name refers to.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A regular file.
    #[default]
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A whiteout: a character device with device number 0:0 (`RENAME_WHITEOUT`).
    Whiteout,
    /// Anything else (another device, a FIFO, a socket): never made by a workload.
    Other,
}

impl NodeKind {
    /// Is this the default kind (left out of JSON)?
    pub fn is_file(&self) -> bool {
        *self == NodeKind::File
    }

    /// Its name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::File => "regular file",
            NodeKind::Dir => "directory",
            NodeKind::Symlink => "symbolic link",
            NodeKind::Whiteout => "whiteout",
            NodeKind::Other => "special file",
        }
    }
}

/// Why a path is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPath(pub String);

/// Check that `path` names something below the workload directory: relative, components
/// separated by single `/`, none empty, `.` or `..`, none longer than
/// [`MAX_COMPONENT_LEN`], at most [`MAX_DEPTH`] directory levels, at most [`MAX_PATH_LEN`]
/// bytes, no NUL.
pub fn check_path(path: &str) -> Result<(), BadPath> {
    if path.is_empty() {
        return Err(BadPath("path is empty".into()));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(BadPath(format!(
            "path is {} bytes long; at most {MAX_PATH_LEN}",
            path.len()
        )));
    }
    if path.contains('\0') {
        return Err(BadPath("path contains NUL".into()));
    }
    if path.starts_with('/') {
        return Err(BadPath(format!(
            "`{path}` is absolute; paths are relative to the workload directory"
        )));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH + 1 {
        return Err(BadPath(format!(
            "`{path}` is {} directories deep; at most {MAX_DEPTH}",
            parts.len() - 1
        )));
    }
    for c in parts {
        if c.is_empty() {
            return Err(BadPath(format!(
                "`{path}` has an empty component (`//` or a trailing `/`)"
            )));
        }
        if c == "." || c == ".." {
            return Err(BadPath(format!("`{path}` has a `{c}` component")));
        }
        if c.len() > MAX_COMPONENT_LEN {
            return Err(BadPath(format!(
                "`{path}` has a component of {} bytes; at most {MAX_COMPONENT_LEN}",
                c.len()
            )));
        }
    }
    Ok(())
}

/// Check a symlink's text: the same rules as a path (relative, no `..`, bounded), so that
/// nothing that follows it can leave the workload directory.
pub fn check_target(target: &str) -> Result<(), BadPath> {
    if target.len() > MAX_TARGET_LEN {
        return Err(BadPath(format!(
            "symlink text is {} bytes long; at most {MAX_TARGET_LEN}",
            target.len()
        )));
    }
    check_path(target)
}

/// The directory holding `path` (`""` for the workload directory).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Every directory above `path`, nearest first, without the workload directory
/// (`a/b/c` → `a/b`, `a`).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        let p = parent(cur);
        if p.is_empty() {
            None
        } else {
            cur = p;
            Some(p)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_bounded_and_relative() {
        assert!(check_path("f0").is_ok());
        assert!(check_path("d0/d1/f0").is_ok());
        assert!(check_path("d0/d1/d2/f0").is_err());
        assert!(check_path("/etc/passwd").is_err());
        assert!(check_path("d0/../f").is_err());
        assert!(check_path("d0//f").is_err());
        assert!(check_path("d0/").is_err());
        assert!(check_path("").is_err());
        assert!(check_path(&"x".repeat(65)).is_err());
        assert!(check_target("../../etc").is_err());
    }

    #[test]
    fn parents_and_ancestors() {
        assert_eq!(parent("f0"), "");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a/b", "a"]);
        assert_eq!(ancestors("f").count(), 0);
    }
}
