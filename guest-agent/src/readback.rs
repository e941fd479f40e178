//! Answers `ReadFiles`: reads named files back whole and reports their bytes as runs of the
//! workload's patterns ([`workloads::content`]), one [`FileReport`] per requested name, in
//! request order. A name that is not a regular file is reported by kind: a directory, a
//! symlink with its text (never followed), a whiteout (a character device 0:0).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use workloads::content::{encode, Patterns};
use workloads::protocol::{FileReport, MAX_REPORTED_TARGET};
use workloads::NodeKind;

use workloads::meta::FileMeta;

use crate::meta::read_meta;

/// Report on each of `names` in `dir`. Every name's metadata is read before any file's
/// data: two names may be hard links to one inode, and reading the first one's data may
/// set the access time (relatime) that the second one's metadata would then show.
pub fn read_files(dir: &Path, names: &[String], patterns: Patterns<'_>) -> Vec<FileReport> {
    let metas: Vec<Result<FileMeta, String>> = names
        .iter()
        .map(|name| read_meta(&dir.join(name)))
        .collect();
    names
        .iter()
        .zip(metas)
        .map(|(name, meta)| read_one(dir, name, patterns, meta))
        .collect()
}

fn report(name: &str, exists: bool) -> FileReport {
    FileReport {
        name: name.to_owned(),
        exists,
        size: 0,
        runs: Vec::new(),
        error: None,
        kind: NodeKind::File,
        target: None,
        ino: 0,
        nlink: 0,
        meta: None,
    }
}

/// What `meta` says the object is.
fn kind_of(meta: &fs::Metadata) -> NodeKind {
    let t = meta.file_type();
    if t.is_file() {
        NodeKind::File
    } else if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_char_device() && meta.rdev() == 0 {
        NodeKind::Whiteout
    } else {
        NodeKind::Other
    }
}

/// A missing file (ENOENT, or ENOTDIR: a directory on its path is something else) is
/// `exists: false`; any other failure keeps `exists: true` (something is there) and carries
/// the error text. A regular file's metadata is read before its data, so that the read's
/// access-time update is not in it.
fn read_one(
    dir: &Path,
    name: &str,
    patterns: Patterns<'_>,
    file_meta: Result<FileMeta, String>,
) -> FileReport {
    let path = dir.join(name);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return report(name, false),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return report(name, false),
        Err(e) => {
            return FileReport {
                error: Some(format!("stat of {}: {e}", path.display())),
                ..report(name, true)
            }
        }
    };
    let kind = kind_of(&meta);
    if kind != NodeKind::File {
        let target = (kind == NodeKind::Symlink).then(|| match fs::read_link(&path) {
            Ok(t) => {
                let mut t = t.to_string_lossy().into_owned();
                if t.len() > MAX_REPORTED_TARGET {
                    let mut cut = MAX_REPORTED_TARGET;
                    while !t.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    t.truncate(cut);
                }
                Ok(t)
            }
            Err(e) => Err(format!("readlink of {}: {e}", path.display())),
        });
        let (target, error) = match target {
            Some(Ok(t)) => (Some(t), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        return FileReport {
            kind,
            target,
            error,
            ..report(name, true)
        };
    }
    let (file_meta, meta_error) = match file_meta {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e)),
    };
    match fs::read(&path) {
        Ok(data) => FileReport {
            size: data.len() as u64,
            runs: encode(&data, patterns.seed, patterns.sources),
            ino: meta.ino(),
            nlink: meta.nlink(),
            meta: file_meta,
            error: meta_error,
            ..report(name, true)
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => report(name, false),
        Err(e) => FileReport {
            size: meta.len(),
            error: Some(format!("reading {}: {e}", path.display())),
            ..report(name, true)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Patterns<'static> = Patterns {
        seed: 0,
        sources: &[],
    };

    #[test]
    fn names_are_reported_by_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/f"), b"x").expect("write");
        fs::hard_link(dir.path().join("sub/f"), dir.path().join("g")).expect("link");
        std::os::unix::fs::symlink("sub/f", dir.path().join("s")).expect("symlink");
        let names: Vec<String> = ["sub", "sub/f", "s", "sub/f/x", "nope"]
            .map(String::from)
            .to_vec();

        let r = read_files(dir.path(), &names, NONE);

        assert_eq!(r[0].kind, NodeKind::Dir);
        assert!(r[0].exists && r[0].error.is_none());
        assert_eq!((r[1].kind, r[1].size, r[1].nlink), (NodeKind::File, 1, 2));
        assert_eq!(r[2].kind, NodeKind::Symlink);
        assert_eq!(r[2].target.as_deref(), Some("sub/f"));
        assert!(!r[3].exists, "ENOTDIR is absent");
        assert!(!r[4].exists);
    }

    #[test]
    fn hard_links_show_the_access_time_before_any_read() {
        use std::os::fd::AsFd;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        std::fs::write(&a, b"data").expect("write");
        let f = std::fs::File::open(&a).expect("open");
        // An old time: a read then moves the access time (relatime: atime <= mtime).
        crate::meta::set_times(f.as_fd(), 1_000_000, 5).expect("futimens");
        std::fs::hard_link(&a, dir.path().join("b")).expect("link");

        let r = read_files(dir.path(), &["a".to_owned(), "b".to_owned()], NONE);

        let atime = |i: usize| r[i].meta.as_ref().expect("meta").atime;
        assert_eq!(atime(0).sec, 1_000_000);
        assert_eq!(
            atime(1).sec,
            1_000_000,
            "b's metadata was read after a's data"
        );
    }
}
