//! Every spec file under `workloads/specs/` loads, validates, is named after its file, and
//! its live state passes the oracle at every crash point under every rule set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use workloads::oracle::{
    expectation, live_nodes, live_state, CrashPoint, FsRules, Observed, Verdict,
};
use workloads::spec::load_workload;
use workloads::{Op, OpOutcome, Workload};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn findings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/findings")
}

/// The specs of `specs/` and of `specs/findings/` (the kernel findings' regression specs).
fn spec_files() -> Vec<PathBuf> {
    let mut files = yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"));
    files.extend(yaml_files(&findings_dir()));
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
            w.durability_points().into_iter().any(|p| p),
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
                let mut live: BTreeMap<String, Observed> = live_state(&prefix(&w, k), &outcomes)
                    .into_iter()
                    .map(|(n, d)| (n, Observed::present(d)))
                    .collect();
                // Directories, symlinks and whiteouts (the namespace specs).
                for (n, (kind, target)) in live_nodes(&prefix(&w, k), &outcomes) {
                    live.entry(n)
                        .or_insert_with(|| Observed::node(kind, target));
                }
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

/// The words of `[off, off+len)` of `f0` read back as zeros (the stores never reached pmem).
fn lose(live: &mut BTreeMap<String, Observed>, off: u64, len: u64) {
    let data = &mut live.get_mut("f0").expect("f0").data;
    let end = ((off + len) as usize).min(data.len());
    data[off as usize..end].fill(0);
}

#[test]
fn each_durability_op_of_a_dax_drop_spec_names_itself_when_its_stores_are_lost() {
    let specs: Vec<PathBuf> = yaml_files(&findings_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("dax-drop-"))
        .collect();
    assert_eq!(specs.len(), 7, "{specs:?}");
    for path in specs {
        let w = load_workload(&path).expect("valid spec");
        let outcomes = all_ok(&w);
        let mut stored: Vec<(u64, u64)> = Vec::new();
        let mut kinds = Vec::new();
        for (k, op) in w.ops.iter().enumerate() {
            if let Op::MmapStore { off, len, .. } = op {
                stored.push((*off, *len));
            }
            if !op.is_durability_point() {
                continue;
            }
            kinds.push(op.kind());
            // Linux 6.15+: every store so far is lost, not only this segment's.
            let mut live: BTreeMap<String, Observed> = live_state(&prefix(&w, k), &outcomes)
                .into_iter()
                .map(|(n, d)| (n, Observed::present(d)))
                .collect();
            for (off, len) in &stored {
                lose(&mut live, *off, *len);
            }
            for rules in [FsRules::ext4(), FsRules::xfs()] {
                let r = expectation(&w, &outcomes, CrashPoint::AfterOp(k), &rules).check(&live);
                assert_eq!(r.verdict, Verdict::DataLoss, "{} op {k}", path.display());
                assert_eq!(
                    r.findings[0].promised_by,
                    Some(k),
                    "{} op {k}: the first finding must be this segment's",
                    path.display()
                );
            }
        }
        assert_eq!(
            kinds,
            ["fsync", "fdatasync", "msync", "sync"],
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_dax_drop_specs_are_what_generate_sh_writes() {
    let out = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("sh")
        .arg(findings_dir().join("generate.sh"))
        .arg(out.path())
        .status()
        .expect("sh runs");
    assert!(status.success());
    let made = yaml_files(out.path());
    assert_eq!(made.len(), 7);
    for f in made {
        let name = f.file_name().expect("name");
        let committed = std::fs::read_to_string(findings_dir().join(name)).expect("committed");
        let fresh = std::fs::read_to_string(&f).expect("generated");
        assert_eq!(
            committed, fresh,
            "{name:?}: run workloads/specs/findings/generate.sh"
        );
    }
}
