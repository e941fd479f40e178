//! Kernel coverage end to end (boots VMs under TCG): one smoke seed under each crash model
//! records coverage (the code map in the run directory, the run's `coverage.json`, the
//! report's section with `fs/dax.c` blocks reached), and `powercut coverage` prints it; a
//! directory without coverage, or not a run directory, exits 2 (no VM).

mod common;

fn report(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
        .expect("report is JSON")
}

#[test]
fn one_seed_records_coverage_under_both_crash_models() {
    common::fixture();
    for model in ["snapshot", "cache"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().to_string_lossy().into_owned();

        let (code, text) = common::powercut(&[
            "campaign",
            "--accel",
            "tcg",
            "--crash-model",
            model,
            "--seeds",
            "2",
            "--output",
            &out,
        ]);
        let (cov_code, table) = common::powercut(&["coverage", "--functions", &out]);

        assert_eq!(code, 0, "{model}: {text}");
        assert!(
            dir.path().join("coverage-map.json").is_file(),
            "{model}: {text}"
        );
        assert!(
            dir.path().join("seeds/2/coverage.json").is_file(),
            "{model}: {text}"
        );
        assert!(!dir.path().join("seeds/2/coverage.raw").exists(), "{model}");
        let r = report(dir.path());
        let dax = &r["coverage"][0]["subsystems"][0];
        // `fs/dax.c`, or `fs/dax.c (by name, no sources)` without ci/kernel-source.
        let name = dax["name"].as_str().expect("name");
        assert!(name.starts_with("fs/dax.c"), "{model}: {dax}");
        assert!(
            dax["blocks_reached"].as_u64().expect("reached") > 0,
            "{model}: {dax}"
        );
        assert!(
            dax["functions_reached"].as_u64().expect("functions") > 0,
            "{model}: {dax}"
        );
        assert_eq!(cov_code, 0, "{model}: {table}");
        assert!(table.contains("dax_iomap_rw"), "{model}: {table}");
    }
}

#[test]
fn coverage_of_a_directory_without_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_string_lossy().into_owned();
    let (not_run_dir, text) = common::powercut(&["coverage", &out]);
    std::fs::write(dir.path().join("journal.jsonl"), "").expect("journal");

    let (no_coverage, text2) = common::powercut(&["coverage", &out]);

    assert_eq!(not_run_dir, 2, "{text}");
    assert!(text.contains("not a run directory"), "{text}");
    assert_eq!(no_coverage, 2, "{text2}");
    assert!(text2.contains("no coverage"), "{text2}");
}
