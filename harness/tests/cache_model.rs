//! End-to-end tests of the cache crash model through the `powercut` binary (TCG, the
//! tracing plugin): the stock kernel gives zero durability failures, and the mutants that
//! only a cache-line model can see (m1: dax_flush skipped in writeback; m2: DAX writeback a
//! no-op; m4: nvdimm_flush skipped; m7: xfs DAX writeback a no-op) are caught, m1 with a
//! data-loss failure naming the lost cache lines. Smoke seed 3 stores through a MAP_SYNC
//! mapping, then msync, fsync and msync (seed 1 has had no mapped store since the sync-call ops
//! joined the generator). One campaign at a time.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// The campaigns boot VMs: run them one after the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cache_campaign(dir: &Path, extra: &[&str]) -> (i32, String) {
    cache_campaign_on(dir, "filesystem: ext4\npmem_mib: 256\n", extra)
}

/// A cache-model campaign of seed 3 on the file system `fs_yaml` configures.
fn cache_campaign_on(dir: &Path, fs_yaml: &str, extra: &[&str]) -> (i32, String) {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::fixture();
    // The worst case at each durability op's return is where a lost flush shows; a tight
    // bound keeps those (they come first) and the test short.
    let cfg = dir.join("cache.yaml");
    std::fs::write(
        &cfg,
        format!("{fs_yaml}crash_model: cache\nseeds: \"3\"\nworkers: 1\ncheckers: 1\ncache:\n  max_states_per_run: 8\n"),
    )
    .expect("write config");
    let cfg = cfg.to_string_lossy().into_owned();
    let out = dir.join("run").to_string_lossy().into_owned();
    let mut args = vec![
        "campaign",
        "--config",
        cfg.as_str(),
        "--output",
        out.as_str(),
    ];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args(&args)
        .output()
        .expect("run powercut");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn failure_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("failures"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default()
}

#[test]
fn stock_kernel_has_no_durability_failures_under_the_cache_model() {
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = cache_campaign(dir.path(), &[]);

    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("failure instances                  0"),
        "{text}"
    );
    let run: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("run/seeds/3/cache-run.json")).expect("cache-run.json"),
    )
    .expect("json");
    assert!(run["states"].as_u64().expect("states") > 0, "{run}");
    assert!(run["plugin"]["clwb"].as_u64().expect("clwb") > 0, "{run}");
}

#[test]
fn mutant_m1_skipped_dax_flush_is_caught_with_lost_lines() {
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = cache_campaign(dir.path(), &["--mutant", "m1"]);

    assert_eq!(code, 1, "{text}");
    let failures = failure_dirs(&dir.path().join("run"));
    let loss = failures
        .iter()
        .find(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("data-loss"))
        })
        .unwrap_or_else(|| panic!("no data-loss failure: {text}"));
    let lost = std::fs::read_to_string(loss.join("lost-lines.txt")).expect("lost-lines.txt");
    assert!(lost.contains("never flushed"), "{lost}");
    assert!(lost.contains("without a cache-line write-back"), "{lost}");
}

#[test]
fn mutant_m2_noop_dax_writeback_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = cache_campaign(dir.path(), &["--mutant", "m2"]);

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL data-loss"), "{text}");
}

#[test]
fn mutant_m4_skipped_nvdimm_flush_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = cache_campaign(dir.path(), &["--mutant", "m4"]);

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL"), "{text}");
}

#[test]
fn mutant_m7_noop_xfs_dax_writeback_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");

    let (code, text) = cache_campaign_on(
        dir.path(),
        "filesystem: xfs\npmem_mib: 512\n",
        &["--mutant", "m7"],
    );

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL data-loss"), "{text}");
}

#[test]
fn cache_model_under_kvm_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args([
            "campaign",
            "--crash-model",
            "cache",
            "--accel",
            "kvm",
            "--output",
        ])
        .arg(dir.path())
        .output()
        .expect("run powercut");
    let text = String::from_utf8_lossy(&out.stderr);

    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("needs TCG"), "{text}");
}
