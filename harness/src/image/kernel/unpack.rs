//! Unpacking one kernel `.deb` into a staging directory without ever following anything out
//! of it: `dpkg-deb --fsys-tarfile` (under a guard: it dies with powercut) streams the
//! package's file tree, and every entry is checked before it is written (a plain relative
//! path, a regular file, directory, relative symlink or hard link whose target stays inside
//! the staging directory) and bounded in count and size. A package is data, never a path.

use std::io::{Read, Seek};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use super::ImageError;
use crate::host::process::ChildGuard;

/// Largest `.deb` accepted, in bytes.
pub const MAX_DEB_BYTES: u64 = 2 << 30;
/// Most bytes the packages of one kernel may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 8 << 30;
/// Most entries the packages of one kernel may hold.
pub const MAX_ENTRIES: usize = 200_000;

/// What the packages of one kernel unpacked so far (the bounds are on the sum).
#[derive(Debug, Default)]
pub struct Budget {
    bytes: u64,
    entries: usize,
}

/// The kind of a tar entry, as far as checking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link (to an earlier entry).
    HardLink,
    /// Anything else (devices, FIFOs, …): refused.
    Other,
}

/// Check one entry: `path` must be relative and plain (no `..`, no root), a symlink's
/// target relative and inside the staging directory when read from the link's own
/// directory, a hard link's target a plain path. Returns the normalized path (empty: the
/// root itself), or why the entry is refused.
pub fn check_entry(path: &Path, kind: EntryKind, link: Option<&Path>) -> Result<PathBuf, String> {
    let rel = plain(path).ok_or_else(|| {
        format!(
            "entry `{}` is not a plain relative path (absolute, or with `..`)",
            path.display()
        )
    })?;
    match kind {
        EntryKind::File | EntryKind::Dir => {}
        EntryKind::Other => {
            return Err(format!(
                "entry `{}` is a device, FIFO or other special file",
                path.display()
            ))
        }
        EntryKind::HardLink => {
            let target = link.unwrap_or(Path::new(""));
            if plain(target).is_none_or(|t| t.as_os_str().is_empty()) {
                return Err(format!(
                    "hard link `{}` points at `{}`, not a plain path inside the package",
                    path.display(),
                    target.display()
                ));
            }
        }
        EntryKind::Symlink => {
            let target = link.unwrap_or(Path::new(""));
            let mut depth = rel.components().count().saturating_sub(1) as i64;
            let mut ok = !target.as_os_str().is_empty();
            for c in target.components() {
                match c {
                    Component::Normal(_) => depth += 1,
                    Component::CurDir => {}
                    Component::ParentDir => {
                        depth -= 1;
                        ok &= depth >= 0;
                    }
                    Component::RootDir | Component::Prefix(_) => ok = false,
                }
            }
            if !ok {
                return Err(format!(
                    "symlink `{}` -> `{}` points outside the package (absolute, or above its root)",
                    path.display(),
                    target.display()
                ));
            }
        }
    }
    Ok(rel)
}

/// `path` without `.` components, if it is relative with only plain names.
fn plain(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpack `deb` into `root` (an existing staging directory), every entry checked.
pub fn extract_deb(deb: &Path, root: &Path, budget: &mut Budget) -> Result<(), ImageError> {
    let bad = |why: String| ImageError::KernelInput {
        path: deb.to_owned(),
        why,
    };
    let (mut f, _) = crate::input::open_regular(deb, MAX_DEB_BYTES, "kernel package")
        .map_err(|e| bad(e.to_string()))?;
    let mut magic = [0u8; 8];
    if f.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Err(bad("not a Debian package (no `!<arch>` header)".into()));
    }
    drop(f);
    let mut errors = tempfile::tempfile().map_err(|e| ImageError::io(root, e))?;
    let err_out = errors.try_clone().map_err(|e| ImageError::io(root, e))?;
    let mut child = ChildGuard::spawn_with(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb),
        Stdio::piped(),
        err_out.into(),
    )
    .map_err(|e| ImageError::Tool {
        tool: "dpkg-deb (install dpkg with ci/setup)".into(),
        detail: e.to_string(),
    })?;
    let stdout = child.take_stdout().ok_or_else(|| ImageError::Tool {
        tool: "dpkg-deb --fsys-tarfile".into(),
        detail: "no output pipe".into(),
    })?;
    let unpacked = unpack_stream(stdout, root, budget);
    // On an early refusal the rest of the stream is not read: stop dpkg-deb.
    let status = match &unpacked {
        Ok(()) => child.wait_timeout(super::TOOL_TIMEOUT),
        Err(_) => child.kill(),
    };
    let mut dpkg_says = || {
        let mut bytes = Vec::new();
        let _ = errors.rewind();
        let _ = (&mut errors).take(4096).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    };
    match (unpacked, status) {
        (Ok(()), Some(s)) if s.success() => Ok(()),
        (Ok(()), Some(s)) => Err(bad(format!(
            "dpkg-deb cannot read it ({s}): {}",
            dpkg_says()
        ))),
        (Ok(()), None) => Err(bad(format!(
            "dpkg-deb did not finish within {} s",
            super::TOOL_TIMEOUT.as_secs()
        ))),
        (Err(why), _) => {
            let said = dpkg_says();
            Err(bad(if said.is_empty() {
                why
            } else {
                format!("{why} (dpkg-deb: {said})")
            }))
        }
    }
}

/// Unpack a tar stream into `root`, checking every entry first.
fn unpack_stream(stream: impl Read, root: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a file tree: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("a damaged entry: {e}"))?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            _ => EntryKind::Other,
        };
        let size = header.size().unwrap_or(u64::MAX);
        let path = entry
            .path()
            .map_err(|e| format!("an entry with an unreadable path: {e}"))?
            .into_owned();
        let link = entry
            .link_name()
            .map_err(|e| format!("entry `{}`: unreadable link target: {e}", path.display()))?
            .map(|l| l.into_owned());
        let rel = check_entry(&path, kind, link.as_deref())?;
        budget.entries += 1;
        budget.bytes = budget.bytes.saturating_add(size);
        if budget.entries > MAX_ENTRIES || budget.bytes > MAX_UNPACKED_BYTES {
            return Err(format!(
                "the packages unpack to more than {MAX_ENTRIES} entries or {MAX_UNPACKED_BYTES} bytes"
            ));
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        // unpack_in also refuses to write through a directory that resolves outside root.
        match entry.unpack_in(root) {
            Ok(true) => {}
            Ok(false) => return Err(format!("entry `{}` would land outside", path.display())),
            Err(e) => return Err(format!("entry `{}`: {e}", path.display())),
        }
    }
    Ok(())
}

/// Is `p` (which must exist) inside `root` once every symlink is resolved?
pub fn resolves_inside(p: &Path, root: &Path) -> bool {
    match (p.canonicalize(), root.canonicalize()) {
        (Ok(p), Ok(r)) => p.starts_with(r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_entries_and_inside_links_pass() {
        let ok = [
            ("./boot/vmlinuz-6.1", EntryKind::File, None),
            ("./", EntryKind::Dir, None),
            ("lib", EntryKind::Symlink, Some("usr/lib")),
            (
                "usr/lib/modules/6.1/x",
                EntryKind::Symlink,
                Some("../../../lib/y"),
            ),
            ("a/b", EntryKind::HardLink, Some("./c/d")),
        ];

        for (p, k, l) in ok {
            assert!(
                check_entry(Path::new(p), k, l.map(Path::new)).is_ok(),
                "{p} -> {l:?}"
            );
        }
    }

    #[test]
    fn absolute_escaping_and_special_entries_are_refused() {
        let bad = [
            ("/etc/passwd", EntryKind::File, None),
            ("../x", EntryKind::File, None),
            ("lib", EntryKind::Symlink, Some("/some/dir")),
            (
                "boot/vmlinuz-6.1",
                EntryKind::Symlink,
                Some("../../etc/shadow"),
            ),
            ("a", EntryKind::Symlink, Some("b/../../x")),
            ("a", EntryKind::HardLink, Some("/etc/shadow")),
            ("a", EntryKind::HardLink, Some("../x")),
            ("dev/null", EntryKind::Other, None),
        ];

        for (p, k, l) in bad {
            assert!(
                check_entry(Path::new(p), k, l.map(Path::new)).is_err(),
                "{p} -> {l:?}"
            );
        }
    }
}
