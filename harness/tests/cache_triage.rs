//! Triage of cache-model failures end to end (boots VMs under TCG with the tracing plugin):
//! a cache-model campaign over smoke seed 3 with m1 (dax_flush skipped in DAX writeback)
//! loses lines behind an fsync/msync; its failure directory says which file bytes were lost,
//! which code stored them and which flush was missing; `repro` rebuilds the same crash state
//! from a new trace and brings the failure back; `minimize` shrinks the workload and keeps
//! the failure, and its C reproducer says the loss needs a real power cut. One VM test at a
//! time (they share the campaign).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use powercut::test_support::FailureDir;

/// The tests boot VMs: one after the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The data-loss failure directory of an m1 cache-model campaign over seed 3 (the
/// earliest crash point: the fewest ops to replay). Run once per test binary.
fn m1_failure() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        common::fixture();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache-triage-m1");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let cfg = dir.join("cache.yaml");
        std::fs::write(
            &cfg,
            "crash_model: cache\nseeds: \"3\"\nworkers: 1\ncheckers: 1\ncache:\n  max_states_per_run: 8\n",
        )
        .expect("write config");
        let out = dir.join("run");
        let (code, text) = common::powercut(&[
            "campaign",
            "--config",
            &cfg.to_string_lossy(),
            "--output",
            &out.to_string_lossy(),
            "--mutant",
            "m1",
        ]);
        assert_eq!(code, 1, "{text}");
        std::fs::read_dir(out.join("failures"))
            .expect("failures dir")
            .map(|e| e.expect("entry").path())
            .filter_map(|d| {
                let f = FailureDir::load(&d).ok()?;
                (f.record.verdict.name() == "data-loss").then(|| (f.record.crash.op(), d))
            })
            .min()
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no data-loss failure: {text}"))
    })
}

#[test]
fn a_cache_model_failure_names_the_file_bytes_the_storing_code_and_the_missing_flush() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = m1_failure();

    let fd = FailureDir::load(dir).expect("failure dir");
    let lost = std::fs::read_to_string(dir.join("lost-lines.txt")).expect("lost-lines.txt");
    let diff = std::fs::read_to_string(dir.join("diff.txt")).expect("diff.txt");
    let html = std::fs::read_to_string(dir.join("../../report.html")).expect("report.html");

    let cut = fd.record.cache_cut.expect("failure.json has cache_cut");
    let report = fd.lost.expect("lost-lines.json");
    assert!(report.data_offset.is_some(), "{lost}");
    let file = fd.record.signature.file.clone().expect("a file");
    let named: Vec<&String> = report
        .sentences
        .iter()
        .filter(|s| s.starts_with(&format!("{file} [")))
        .collect();
    assert!(!named.is_empty(), "no lost range of {file}: {lost}");
    assert!(
        named.iter().any(|s| s.contains("written by")
            && s.contains(" in op ")
            && s.contains("returned without a cache-line write-back")),
        "{lost}"
    );
    assert!(
        lost.contains("user stores through mmap") || lost.contains("kernel stores at "),
        "{lost}"
    );
    assert!(diff.contains("lost: "), "{diff}");
    assert!(diff.contains("bytes read back as"), "{diff}");
    assert!(
        html.contains("Lost cache lines"),
        "report.html has no lost lines"
    );
    assert_eq!(
        cut.variant,
        powercut::test_support::Variant::Worst,
        "{cut:?}"
    );
}

#[test]
fn repro_and_minimize_bring_back_an_m1_cache_failure() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = m1_failure();
    let d = dir.to_string_lossy();

    let (repro_code, repro) = common::powercut(&["repro", &d, "--runs", "2"]);
    let (min_code, min) = common::powercut(&["minimize", &d, "--max-runs", "6"]);

    assert_eq!(repro_code, 1, "{repro}");
    assert!(
        repro.contains("reproduced 1 of 2") || repro.contains("reproduced 2 of 2"),
        "{repro}"
    );
    assert_eq!(min_code, 1, "{min}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("minimize.json")).expect("json"))
            .expect("json");
    let before = report["ops_before"].as_u64().expect("ops_before");
    let after = report["ops_after"].as_u64().expect("ops_after");
    assert!(after < before, "{report}");
    workloads::spec::load_workload(&dir.join("minimal.yaml")).expect("minimal.yaml validates");
    let c = std::fs::read_to_string(dir.join("repro.c")).expect("repro.c");
    assert!(c.contains("CACHE MODEL: powercut found this loss"), "{c}");
    assert!(c.contains("needs a power cut on real"), "{c}");
}
