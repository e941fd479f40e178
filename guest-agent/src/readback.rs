//! Answers `ReadFiles`: reads named files back whole and reports their bytes as runs of the
//! workload's patterns ([`workloads::content`]), one [`FileReport`] per requested name, in
//! request order.

use std::fs;
use std::io;
use std::path::Path;

use workloads::content::{encode, Patterns};
use workloads::protocol::FileReport;

use crate::meta::read_meta;

/// Report on each of `names` in `dir`.
pub fn read_files(dir: &Path, names: &[String], patterns: Patterns<'_>) -> Vec<FileReport> {
    names
        .iter()
        .map(|name| read_one(dir, name, patterns))
        .collect()
}

/// A missing file (ENOENT) is `exists: false`; any other failure keeps `exists: true`
/// (something is there) and carries the error text. The metadata is read first, so that
/// the read's access-time update is not in it.
fn read_one(dir: &Path, name: &str, patterns: Patterns<'_>) -> FileReport {
    let path = dir.join(name);
    let meta = read_meta(&path);
    match fs::read(&path) {
        Ok(data) => {
            let (meta, error) = match meta {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(e)),
            };
            FileReport {
                name: name.to_owned(),
                exists: true,
                size: data.len() as u64,
                runs: encode(&data, patterns.seed, patterns.sources),
                error,
                meta,
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => FileReport {
            name: name.to_owned(),
            exists: false,
            size: 0,
            runs: Vec::new(),
            error: None,
            meta: None,
        },
        Err(e) => FileReport {
            name: name.to_owned(),
            exists: true,
            size: fs::metadata(&path).map_or(0, |m| m.len()),
            runs: Vec::new(),
            error: Some(format!("reading {}: {e}", path.display())),
            meta: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_reported_as_existing_with_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");

        let none = Patterns {
            seed: 0,
            sources: &[],
        };
        let reports = read_files(dir.path(), &["sub".to_owned()], none);

        assert!(reports[0].exists);
        assert!(reports[0].error.is_some());
        assert!(reports[0].runs.is_empty());
    }
}
