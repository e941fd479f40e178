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

/// A git tree in `dir` whose last commit changes `dax_iomap_rw` (every seed reaches it),
/// `dax_file_unshare` (no workload reaches it) in `fs/dax.c`, and
/// `file_write_and_wait_range` in `mm/filemap.c` (outside the reported subsystems).
fn patched_tree(dir: &std::path::Path) {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let dax = |n: u32| {
        format!(
            "ssize_t\ndax_iomap_rw(struct kiocb *iocb, struct iov_iter *iter,\n\t\tconst struct iomap_ops *ops)\n{{\n\treturn {n};\n}}\n\n\
             int dax_file_unshare(struct inode *inode, loff_t pos, loff_t len,\n\t\tconst struct iomap_ops *ops)\n{{\n\treturn {n};\n}}\n"
        )
    };
    let mm = |n: u32| {
        format!("int file_write_and_wait_range(struct file *file, loff_t lstart, loff_t lend)\n{{\n\treturn {n};\n}}\n")
    };
    std::fs::create_dir_all(dir.join("fs")).expect("fs");
    std::fs::create_dir_all(dir.join("mm")).expect("mm");
    std::fs::write(dir.join("fs/dax.c"), dax(0)).expect("dax.c");
    std::fs::write(dir.join("mm/filemap.c"), mm(0)).expect("filemap.c");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "base"]);
    std::fs::write(dir.join("fs/dax.c"), dax(1)).expect("dax.c");
    std::fs::write(dir.join("mm/filemap.c"), mm(1)).expect("filemap.c");
    git(&["commit", "-q", "-am", "patch"]);
}

#[test]
fn a_patch_s_functions_are_reported_reached_or_not() {
    common::fixture();
    let tree = tempfile::tempdir().expect("tree");
    patched_tree(tree.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_string_lossy().into_owned();
    let src = tree.path().to_string_lossy().into_owned();

    let (code, text) = common::powercut(&[
        "campaign",
        "--accel",
        "tcg",
        "--seeds",
        "2",
        "--workers",
        "1",
        "--checkers",
        "1",
        "--source-tree",
        &src,
        "--coverage-diff",
        "HEAD~1",
        "--output",
        &out,
    ]);
    let (after, table) = common::powercut(&["coverage", &out, "--diff", "HEAD~1", "--tree", &src]);

    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("your change touches 3 functions;")
            && text.contains("not reached: dax_file_unshare"),
        "{text}"
    );
    assert!(dir.path().join("coverage-diff.json").is_file());
    let r = report(dir.path());
    let fns = r["coverage_diff"][0]["functions"]
        .as_array()
        .expect("functions")
        .clone();
    let reach = |name: &str| {
        let f = fns
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {fns:?}"));
        (
            f["reach"].as_str().unwrap_or("").to_owned(),
            f["reached"].as_u64().unwrap_or(0),
        )
    };
    let (rw, rw_blocks) = reach("dax_iomap_rw");
    assert!(rw == "reached" && rw_blocks > 0, "{fns:?}");
    assert_eq!(reach("dax_file_unshare").0, "not-reached", "{fns:?}");
    // Outside the subsystems, yet in the map: the patch's own subsystem.
    assert_ne!(
        reach("file_write_and_wait_range").0,
        "not-mapped",
        "{fns:?}"
    );
    assert_eq!(after, 0, "{table}");
    assert!(
        table.contains("your change touches 3 functions;"),
        "{table}"
    );
}

#[test]
fn a_coverage_diff_without_a_git_tree_is_refused_before_any_vm() {
    let tree = tempfile::tempdir().expect("tree");
    let src = tree.path().to_string_lossy().into_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run").to_string_lossy().into_owned();

    let (no_git, text) = common::powercut(&[
        "campaign",
        "--accel",
        "tcg",
        "--seeds",
        "2",
        "--source-tree",
        &src,
        "--coverage-diff",
        "HEAD",
        "--output",
        &out,
    ]);
    let (option, text2) = common::powercut(&[
        "campaign",
        "--accel",
        "tcg",
        "--seeds",
        "2",
        "--source-tree",
        &src,
        "--coverage-diff=--output=/tmp/x",
        "--output",
        &out,
    ]);

    assert_eq!(no_git, 2, "{text}");
    assert!(text.contains("not a git tree"), "{text}");
    assert!(!text.contains("accelerator:"), "a VM was started: {text}");
    assert_eq!(option, 2, "{text2}");
    assert!(text2.contains("coverage_diff"), "{text2}");
}
