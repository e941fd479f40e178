//! Every spec file under `workloads/specs/` loads, validates, is named after its file, and
//! its live state passes the oracle at every crash point under every rule set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use workloads::oracle::{expectation, live_state, CrashPoint, FsRules, Observed, Verdict};
use workloads::spec::load_workload;
use workloads::{Op, OpOutcome, Workload};

fn spec_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("specs/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| match op {
            Op::Pwrite { len, .. } => Some(OpOutcome::ok(*len as i64)),
            _ => Some(OpOutcome::ok(0)),
        })
        .collect()
}

fn prefix(w: &Workload, k: usize) -> Workload {
    Workload {
        ops: w.ops[..=k].to_vec(),
        ..w.clone()
    }
}

#[test]
fn every_spec_file_loads_and_validates() {
    let files = spec_files();
    assert!(
        files.len() >= 9,
        "expected the DAX thread cases, found {files:?}"
    );
    for path in files {
        let w = load_workload(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        assert_eq!(
            w.name,
            stem,
            "{}: name must match the file stem",
            path.display()
        );
        assert!(
            w.ops.iter().any(Op::is_durability_point),
            "{}",
            path.display()
        );
    }
}

#[test]
fn live_state_of_every_spec_passes_at_every_crash_point() {
    for path in spec_files() {
        let w = load_workload(&path).expect("valid spec");
        let outcomes = all_ok(&w);
        for rules in [FsRules::ext4(), FsRules::xfs(), FsRules::generic()] {
            for k in 0..w.ops.len() {
                let live: BTreeMap<String, Observed> = live_state(&prefix(&w, k), &outcomes)
                    .into_iter()
                    .map(|(n, d)| (n, Observed::present(d)))
                    .collect();
                for crash in [CrashPoint::AfterOp(k), CrashPoint::InsideOp(k)] {
                    let r = expectation(&w, &outcomes, crash, &rules).check(&live);
                    let titles: Vec<String> = r.findings.iter().map(|f| f.title()).collect();
                    assert_eq!(
                        r.verdict,
                        Verdict::Pass,
                        "{} {crash:?} {}: {titles:?}",
                        path.display(),
                        rules.name
                    );
                }
            }
        }
    }
}

#[test]
fn missing_spec_file_error_names_the_path() {
    let err = load_workload(Path::new("specs/no-such.yaml"))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("specs/no-such.yaml"), "{err}");
}
