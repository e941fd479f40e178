//! Restore gives the same verdicts as cold boot: the same smoke seeds run as a campaign
//! with `--cold-boot` and as one restoring every workload VM from the booted state, and the
//! two journals are equal once timings are left out (snapshot model: stock kernel and
//! mutant m5; cache model: stock and m1). Crash points are those after ops only: a cut
//! inside an op lands wherever the op is after a host-timed delay, under either start.
//! One campaign at a time.

mod common;

use std::path::Path;

/// Journal fields that are timings (or the order of lines, which the two workers' and
/// checker's timing decides): left out of the comparison.
const TIMINGS: &[&str] = &["boot_ms", "op_micros", "millis", "phases"];

/// A campaign of `seeds` under `model` with `mutant` in `dir/name`; `--cold-boot` if `cold`.
fn campaign(dir: &Path, name: &str, model: &str, mutant: &str, seeds: &str, cold: bool) -> String {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "filesystem: ext4\npmem_mib: 256\ncrash_model: {model}\nprofile: smoke\nseeds: \"{seeds}\"\n\
             crash_points:\n  after_durability_ops: true\n  random_after: 2\n  inside: 0\n\
             workers: 1\ncheckers: 1\ncache:\n  max_states_per_run: 8\n"
        ),
    )
    .expect("write config");
    let out = dir.join(name);
    let (cfg, out_s) = (cfg.to_string_lossy(), out.to_string_lossy());
    let mut args = vec![
        "campaign", "--config", &cfg, "--output", &out_s, "--mutant", mutant,
    ];
    if cold {
        args.push("--cold-boot");
    }
    let (code, text) = common::powercut(&args);
    assert!(code == 0 || code == 1, "{name}: exit {code}\n{text}");
    text
}

/// The journal of the run in `dir`, each line without its timings, sorted.
fn journal_without_timings(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).expect("journal");
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("journal line");
            if let Some(o) = v.as_object_mut() {
                for k in TIMINGS {
                    o.remove(*k);
                }
            }
            v.to_string()
        })
        .collect();
    lines.sort();
    lines
}

fn run_info(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run-info.json")).expect("run-info"))
        .expect("run-info is JSON")
}

fn same_verdicts(model: &str, mutant: &str, seeds: &str) {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");

    let cold_text = campaign(dir.path(), "cold", model, mutant, seeds, true);
    let warm_text = campaign(dir.path(), "warm", model, mutant, seeds, false);

    let (cold, warm) = (dir.path().join("cold"), dir.path().join("warm"));
    assert_eq!(run_info(&cold)["start"], "cold-boot", "{cold_text}");
    assert_eq!(run_info(&warm)["start"], "restore", "{warm_text}");
    assert!(
        run_info(&warm).get("restore_fallback").is_none(),
        "a restore fell back to a cold boot:\n{warm_text}"
    );
    assert_eq!(
        journal_without_timings(&cold),
        journal_without_timings(&warm),
        "{model} {mutant}: the journals differ\n--- cold ---\n{cold_text}\n--- restore ---\n{warm_text}"
    );
}

#[test]
fn snapshot_model_stock_kernel_restored_equals_cold_booted() {
    same_verdicts("snapshot", "none", "1");
}

#[test]
fn snapshot_model_mutant_m5_restored_equals_cold_booted() {
    same_verdicts("snapshot", "m5", "1..3");
}

#[test]
fn cache_model_stock_kernel_restored_equals_cold_booted() {
    same_verdicts("cache", "none", "1");
}

#[test]
fn cache_model_mutant_m1_restored_equals_cold_booted() {
    same_verdicts("cache", "m1", "1");
}
