//! Reading the kernel coverage of one or more run directories (shards, nights, a kernel
//! matrix): each kernel's code map (`coverage-map*.json` in the run directory) and every
//! run's `coverage*.json` in the item directories, merged per kernel into one
//! [`CoverageSummary`] each. A file that cannot be read becomes a note, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use crate::coverage::diff::{diff_coverage, DiffCoverage, PatchFunctions};
use crate::coverage::summary::summarize;
use crate::coverage::{read_json, CodeMap, CoverageSummary, SeedCoverage, PATCH_FILE};
use crate::rundir::{SEEDS, WORKLOADS};

/// Most coverage files read from one run directory.
const MAX_FILES: usize = 200_000;

/// The coverage of `dirs`, one summary per kernel with a map (in release order), and notes
/// on what could not be read.
pub fn read_coverage(dirs: &[&Path]) -> (Vec<CoverageSummary>, Vec<String>) {
    let mut notes = Vec::new();
    let mut maps: BTreeMap<String, CodeMap> = BTreeMap::new();
    let mut seeds: BTreeMap<String, Vec<SeedCoverage>> = BTreeMap::new();
    for dir in dirs {
        for path in map_files(dir) {
            match read_json::<CodeMap>(&path) {
                Ok(m) => {
                    maps.entry(m.kernel.clone()).or_insert(m);
                }
                Err(e) => notes.push(e.to_string()),
            }
        }
        let mut n = 0usize;
        for sub in [SEEDS, WORKLOADS] {
            for item in files(&dir.join(sub), |_| true) {
                let is_cov = |f: &str| {
                    f.starts_with("coverage")
                        && f.ends_with(".json")
                        && !f.starts_with("coverage-map")
                };
                for path in files(&item, is_cov) {
                    n += 1;
                    if n > MAX_FILES {
                        notes.push(format!(
                            "{}: more than {MAX_FILES} coverage files; the rest left out",
                            dir.display()
                        ));
                        break;
                    }
                    match read_json::<SeedCoverage>(&path) {
                        Ok(s) => seeds.entry(s.kernel.clone()).or_default().push(s),
                        Err(e) => notes.push(e.to_string()),
                    }
                }
            }
        }
    }
    for k in seeds.keys().filter(|k| !maps.contains_key(*k)) {
        notes.push(format!(
            "runs of kernel {k} have coverage but no code map: left out"
        ));
    }
    let summaries = maps
        .values()
        .map(|m| summarize(m, seeds.get(&m.kernel).map_or(&[][..], Vec::as_slice)))
        .collect();
    (summaries, notes)
}

/// The diff coverage of the patch recorded in `dir` (`coverage-diff.json`, from
/// `--coverage-diff`) against each of `summaries`; none without the file.
pub fn read_diff_coverage(
    dir: &Path,
    summaries: &[CoverageSummary],
) -> (Vec<DiffCoverage>, Vec<String>) {
    let path = dir.join(PATCH_FILE);
    if !path.exists() {
        return (Vec::new(), Vec::new());
    }
    match read_json::<PatchFunctions>(&path) {
        Ok(p) => (
            summaries.iter().map(|s| diff_coverage(&p, s)).collect(),
            Vec::new(),
        ),
        Err(e) => (Vec::new(), vec![e.to_string()]),
    }
}

/// The code maps (`coverage-map*.json`) of the run directory `dir`.
pub fn map_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files(dir, |n| {
        n.starts_with("coverage-map") && n.ends_with(".json")
    })
}

/// The entries of `dir` whose file name `keep` accepts, sorted (none if it is unreadable).
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::map::MapFunction;
    use crate::coverage::seed::FunctionHits;
    use crate::coverage::write_json;

    #[test]
    fn two_run_directories_merge_into_one_view_per_kernel() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut map = CodeMap {
            kernel: "6.12".into(),
            subsystems: vec!["fs/dax.c".into()],
            ..CodeMap::default()
        };
        map.functions.insert(
            "dax_a".into(),
            MapFunction {
                subsystem: "fs/dax.c".into(),
                file: None,
                bytes: 9,
                blocks: vec![0, 3, 6],
            },
        );
        let seed = |blocks: Vec<u32>| SeedCoverage {
            kernel: "6.12".into(),
            functions: [(
                "dax_a".to_owned(),
                FunctionHits {
                    ops: blocks,
                    setup: vec![],
                },
            )]
            .into(),
            ..SeedCoverage::default()
        };
        for (i, blocks) in [vec![0], vec![2]].into_iter().enumerate() {
            let d = tmp.path().join(format!("run{i}"));
            std::fs::create_dir_all(d.join("seeds/1")).expect("mkdir");
            write_json(&d.join("coverage-map.json"), &map).expect("map");
            write_json(&d.join("seeds/1/coverage.json"), &seed(blocks)).expect("seed");
        }
        let bad = tmp.path().join("run1/seeds/2");
        std::fs::create_dir_all(&bad).expect("mkdir");
        std::fs::write(bad.join("coverage.json"), "{not json").expect("write");

        let (runs0, runs1) = (tmp.path().join("run0"), tmp.path().join("run1"));
        let (s, notes) = read_coverage(&[&runs0, &runs1]);

        assert_eq!(s.len(), 1);
        assert_eq!(s[0].runs, 2);
        assert_eq!(s[0].subsystems[0].blocks_reached, 2);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }
}
