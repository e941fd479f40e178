//! End-to-end campaign tests through the `powercut` binary: the stock kernel gives zero
//! durability failures on ext4 and on xfs, the regression specs (`ci/regression.yaml`) pass
//! under both crash models, mutants m3 and m5 (ext4; m5 on a seed and a workload file, its
//! instances in a few buckets) and m6 (xfs) are caught, a garbage crash image is judged
//! without crashing the checker, and `run --seed` matches the oracle's live state.

mod common;

use std::path::Path;
use std::process::Command;

use powercut::test_support::Checker;
use powercut::test_support::GUEST_DIR;
use workloads::oracle::{expectation, CrashPoint, FsRules, Verdict};

fn campaign(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = dir.to_string_lossy().into_owned();
    let mut args = vec!["campaign", "--accel", "auto", "--output", out.as_str()];
    args.extend_from_slice(extra);
    common::powercut(&args)
}

#[test]
fn stock_kernel_campaign_passes_with_zero_failures() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = campaign(dir.path(), &["--seeds", "1..4"]);

    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("failure instances                  0"),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("report.json")).expect("report.json"),
    )
    .expect("report is JSON");
    assert_eq!(report["totals"]["failures"], 0);
    assert!(report["totals"]["checks"].as_u64().expect("checks") > 0);
}

/// The checkout's root (the harness package's parent).
fn workspace_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

#[test]
fn regression_specs_pass_on_the_stock_kernel_under_both_crash_models() {
    common::fixture();
    let root = workspace_root();
    let specs = std::fs::read_dir(root.join("workloads/specs"))
        .expect("specs")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    for model in ["snapshot", "cache"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
            .current_dir(&root)
            .args(["campaign", "--config", "ci/regression.yaml"])
            .args(["--crash-model", model, "--output"])
            .arg(dir.path())
            .output()
            .expect("run powercut");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        assert_eq!(out.status.code(), Some(0), "{model}: {text}");
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("report.json")).expect("report.json"),
        )
        .expect("report is JSON");
        assert_eq!(report["totals"]["workloads"], specs, "{model}: {text}");
        assert_eq!(report["totals"]["failures"], 0, "{model}");
        assert!(report["totals"]["checks"].as_u64().expect("checks") >= specs as u64);
    }
}

#[test]
fn mutant_m5_fsync_noop_is_caught_with_one_failure_dir_per_bucket() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = workspace_root().join("workloads/specs/mmap-store-fsync.yaml");

    let (code, text) = campaign(
        dir.path(),
        &[
            "--seeds",
            "1..3",
            "--mutant",
            "m5",
            "--workload",
            &spec.to_string_lossy(),
        ],
    );

    assert_eq!(code, 1, "{text}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("report.json")).expect("report.json"),
    )
    .expect("report is JSON");
    let totals = &report["totals"];
    let buckets = totals["distinct_failures"].as_array().expect("buckets");
    let instances = totals["failures"].as_u64().expect("instances");
    assert!(!buckets.is_empty() && buckets.len() <= 6, "{totals}");
    assert!(instances >= buckets.len() as u64, "{totals}");
    assert!(
        buckets
            .iter()
            .all(|b| b.as_str().is_some_and(|b| b.ends_with("m5)"))),
        "{totals}"
    );
    assert_eq!(
        report["seeds"][2]["workload"], "mmap-store-fsync",
        "{report}"
    );
    assert_eq!(report["seeds"][2]["status"], "fail", "{report}");
    let failures: Vec<_> = std::fs::read_dir(dir.path().join("failures"))
        .expect("failures dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(failures.len(), buckets.len());
    let mut listed = 0;
    for f in &failures {
        for file in [
            "workload.yaml",
            "diff.txt",
            "expectation.json",
            "reproduce.sh",
            "failure.json",
            "instances.jsonl",
        ] {
            assert!(f.join(file).exists(), "{} lacks {file}", f.display());
        }
        listed += std::fs::read_to_string(f.join("instances.jsonl"))
            .expect("instances")
            .lines()
            .count();
    }
    assert_eq!(
        listed as u64, instances,
        "every instance is listed in its bucket"
    );
}

#[test]
fn mutant_m3_skipped_journal_commit_is_caught() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = campaign(dir.path(), &["--seeds", "1..3", "--mutant", "m3"]);

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL"), "{text}");
}

/// ci/xfs-smoke.yaml of this checkout: the smoke campaign on xfs.
fn xfs_config() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/xfs-smoke.yaml").to_owned()
}

#[test]
fn stock_kernel_xfs_campaign_passes_with_zero_failures() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = campaign(dir.path(), &["--config", &xfs_config(), "--seeds", "1..4"]);

    assert_eq!(code, 0, "{text}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("report.json")).expect("report.json"),
    )
    .expect("report is JSON");
    assert_eq!(report["filesystem"], "xfs");
    assert_eq!(report["totals"]["failures"], 0);
    assert!(report["totals"]["checks"].as_u64().expect("checks") > 0);
}

#[test]
fn mutant_m6_xfs_fsync_without_log_force_is_caught() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = campaign(
        dir.path(),
        &[
            "--config",
            &xfs_config(),
            "--seeds",
            "1..3",
            "--mutant",
            "m6",
        ],
    );

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL"), "{text}");
    let failure: serde_json::Value = std::fs::read_dir(dir.path().join("failures"))
        .expect("failures dir")
        .map(|e| e.expect("entry").path().join("failure.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("failure.json")).expect("JSON"))
        .next()
        .expect("a failure directory");
    assert_eq!(failure["filesystem"], "xfs");
    assert_eq!(failure["mutant"], "m6");
}

#[test]
fn generated_workloads_match_the_oracle_live_state() {
    common::fixture();
    for seed in ["1", "2", "3"] {
        let (code, text) = common::powercut(&["run", "--seed", seed]);

        assert_eq!(code, 0, "seed {seed}: {text}");
        assert!(text.contains("matches the oracle"), "{text}");
    }
}

#[test]
fn malformed_config_is_rejected_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, "filesystem: ext4\nseeds: 1..3\npmem_mib: lots\n").expect("write");

    let (code, text) = common::powercut(&["campaign", "--config", &cfg.to_string_lossy()]);

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("pmem_mib") && text.contains("bad.yaml"),
        "{text}"
    );
}

#[test]
fn garbage_crash_image_gives_a_verdict_not_a_crash() {
    let (img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.img");
    // Golden pfn block kept, file system region overwritten with a repeating junk pattern.
    golden.copy_to(&garbage).expect("copy");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&garbage)
            .expect("open");
        f.seek(SeekFrom::Start(2 << 20)).expect("seek");
        let junk: Vec<u8> = (0..(1 << 20))
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        f.write_all(&junk).expect("write junk");
    }
    let workload = workloads::generator::generate(1, workloads::generator::Profile::Smoke);
    let exp = expectation(&workload, &[], CrashPoint::AfterOp(0), &FsRules::ext4());
    // Cold-booted (the dedupe test covers a restored checker).
    let mut checker = Checker::start(&powercut::test_support::CheckerSpec {
        image: &img,
        golden: &golden,
        accel,
        dir: dir.path(),
        name: "it-checker",
        debug: false,
        check_timeout: std::time::Duration::from_secs(60),
        state: None,
    })
    .expect("checker boots");
    assert!(!checker.restored());

    let origin = powercut::test_support::StateRef {
        item: powercut::test_support::TrialItem::Seed(1),
        at: powercut::test_support::CrashLabel::of(&exp),
        model: "snapshot".into(),
    };
    let garbage_outcome = checker
        .check(&garbage, &exp, &origin)
        .expect("check returns");
    let golden_outcome = checker
        .check(&golden.path, &exp, &origin)
        .expect("checker still answers");
    checker.stop();

    assert!(
        matches!(
            garbage_outcome.verdict,
            Verdict::MountFailed | Verdict::FsCorrupt
        ),
        "{garbage_outcome:?}"
    );
    assert_ne!(
        golden_outcome.verdict,
        Verdict::MountFailed,
        "{golden_outcome:?} ({GUEST_DIR})"
    );
}
