//! Bad input gets a clear one-line error naming what is wrong and what to do, and a non-zero
//! exit: a missing kernel package, a missing QEMU, a malformed workload file, a bad seed list.

use std::process::Command;

fn powercut(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_powercut"));
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run powercut");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn missing_kernel_package_says_to_run_ci_setup() {
    let empty = tempfile::tempdir().expect("tempdir");
    let cache = empty.path().to_string_lossy().into_owned();

    let (code, text) = powercut(&["image", "build"], &[("POWERCUT_CACHE", &cache)]);

    assert_eq!(code, 69, "{text}");
    assert!(
        text.contains("no guest kernel package") && text.contains("ci/setup"),
        "{text}"
    );
}

#[test]
fn missing_qemu_says_how_to_install_it() {
    let (code, text) = powercut(
        &["vm", "smoke", "--accel", "tcg"],
        &[("POWERCUT_QEMU", "/nonexistent/qemu-system-x86_64")],
    );

    assert_eq!(code, 69, "{text}");
    assert!(
        text.contains("/nonexistent/qemu-system-x86_64 not found"),
        "{text}"
    );
    assert!(text.contains("ci/setup"), "{text}");
}

#[test]
fn malformed_workload_file_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("w.yaml");
    std::fs::write(
        &f,
        "name: x\nseed: 1\nops:\n  - {op: pwrite, file: f0, off: 0, len: lots}\n",
    )
    .expect("write");

    let (code, text) = powercut(&["workload", "check", &f.to_string_lossy()], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(text.contains("w.yaml:4") && text.contains("len"), "{text}");
}

#[test]
fn bad_seed_list_is_a_usage_error() {
    let (code, text) = powercut(&["campaign", "--seeds", "ten..twenty"], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(text.contains("seeds") && text.contains("ten"), "{text}");
}

#[test]
fn generated_workloads_are_stable_across_runs() {
    let (c1, a) = powercut(&["workload", "gen", "--seed", "42"], &[]);
    let (c2, b) = powercut(&["workload", "gen", "--seed", "42"], &[]);

    assert_eq!((c1, c2), (0, 0));
    assert_eq!(a, b);
    assert!(a.contains("seed: 42"));
}

/// A campaign config file in a temp dir holding `text`.
fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, text).expect("write");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn a_seed_range_too_large_to_allocate_is_a_usage_error() {
    for range in ["0..99999999999", "0..18446744073709551615"] {
        let (code, text) = powercut(&["campaign", "--seeds", range], &[]);

        assert_eq!(code, 2, "{range}: {text}");
        assert!(
            text.contains("field `seeds`") && text.contains(&format!("`{range}` names")),
            "{text}"
        );
    }
}

#[test]
fn a_huge_time_budget_is_a_usage_error() {
    let (code, text) = powercut(&["campaign", "--time-budget", "99999999999999999h"], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("field `time_budget`") && text.contains("limit of 30 days"),
        "{text}"
    );
}

#[test]
fn huge_numbers_in_the_config_name_the_file_and_field() {
    let cases = [
        ("run_timeout_secs: 99999999999\n", "run_timeout_secs"),
        ("pmem_mib: 99999999999999\n", "pmem_mib"),
    ];
    for (yaml, field) in cases {
        let (_dir, path) = config_file(yaml);

        let (code, text) = powercut(&["campaign", "--config", &path], &[]);

        assert_eq!(code, 2, "{yaml}: {text}");
        assert!(
            text.contains("bad.yaml") && text.contains(&format!("field `{field}`")),
            "{text}"
        );
    }
}

#[test]
fn a_workload_with_too_many_ops_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("many.yaml");
    let ops = "  - {op: sync}\n".repeat(20_000);
    std::fs::write(&f, format!("name: many\nseed: 1\nops:\n{ops}")).expect("write");

    let (code, text) = powercut(&["workload", "check", &f.to_string_lossy()], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("many.yaml:4") && text.contains("more than 10000 ops"),
        "{text}"
    );
}

#[test]
fn deeply_nested_config_files_fail_fast() {
    let two_mb = format!("seeds: {}\n", "[".repeat(2 << 20));
    let under_the_size_cap: String = (0..1000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    for (yaml, expected) in [
        (two_mb, "larger than the limit"),
        (
            under_the_size_cap,
            "line 33: YAML nested deeper than 32 levels",
        ),
    ] {
        let (_dir, path) = config_file(&yaml);

        let start = std::time::Instant::now();
        let (code, text) = powercut(&["campaign", "--config", &path], &[]);
        let took = start.elapsed();

        assert_eq!(code, 2, "{text}");
        assert!(
            text.contains("bad.yaml") && text.contains(expected),
            "{text}"
        );
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}

#[test]
fn an_unknown_mutant_lists_the_known_ones() {
    let (code, text) = powercut(&["campaign", "--mutant", "m10"], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("field `mutant`")
            && text.contains("unknown mutant `m10`")
            && text.contains("m1 to m9"),
        "{text}"
    );
}

#[test]
fn run_refuses_an_unknown_mutant_before_any_vm_boots() {
    let (code, text) = powercut(&["run", "--seed", "1", "--mutant", "m9;reboot"], &[]);

    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown mutant `m9;reboot`"), "{text}");
}

#[test]
fn resume_refuses_a_flag_that_changes_the_recorded_config() {
    use powercut::test_support::CampaignConfig;
    use powercut::test_support::JournalWriter;
    use powercut::test_support::RunDir;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::create(dir.path()).expect("run dir");
    run.write_config(&CampaignConfig::default())
        .expect("config");
    JournalWriter::open(&run.journal()).expect("journal");
    let before = std::fs::read(run.config()).expect("config.yaml");
    let out = dir.path().to_string_lossy().into_owned();

    let (code, text) = powercut(
        &["campaign", "--resume", "--output", &out, "--seeds", "7..9"],
        &[],
    );

    assert_eq!(code, 2, "{text}");
    assert!(text.contains("`seeds` differs"), "{text}");
    assert_eq!(std::fs::read(run.config()).expect("config.yaml"), before);
}

#[test]
fn a_bad_workload_input_stops_the_campaign_before_any_vm_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    let twins = tempfile::tempdir().expect("tempdir");
    let twin = twins.path().join("twin.yaml");
    std::fs::write(
        &good,
        "name: good\nseed: 1\nops:\n  - {op: create, file: f0}\n",
    )
    .expect("write");
    std::fs::write(
        &bad,
        "name: bad\nseed: 1\nops:\n  - {op: fsync, file: never-created}\n",
    )
    .expect("write");
    std::fs::write(
        &twin,
        "name: good\nseed: 2\nops:\n  - {op: create, file: f1}\n",
    )
    .expect("write");
    std::fs::copy(&good, twins.path().join("good.yaml")).expect("copy");
    let out = dir.path().join("run");
    let out_s = out.to_string_lossy().into_owned();
    // No VM may boot: a QEMU that does not exist would turn any boot into exit 69.
    let no_qemu = [("POWERCUT_QEMU", "/nonexistent/qemu-system-x86_64")];

    let (code_bad, text_bad) = powercut(
        &[
            "campaign",
            "--workload",
            &good.to_string_lossy(),
            "--workload",
            &bad.to_string_lossy(),
            "--output",
            &out_s,
        ],
        &no_qemu,
    );
    let (code_twin, text_twin) = powercut(
        &[
            "campaign",
            "--workload",
            &twins.path().to_string_lossy(),
            "--output",
            &out_s,
        ],
        &no_qemu,
    );

    assert_eq!(code_bad, 2, "{text_bad}");
    assert!(text_bad.contains("bad.yaml"), "{text_bad}");
    assert_eq!(code_twin, 2, "{text_twin}");
    assert!(
        text_twin.contains("twin.yaml") && text_twin.contains("must be unique"),
        "{text_twin}"
    );
    assert!(!out.exists(), "a refused campaign left a run directory");
}

#[test]
fn bad_boot_timeout_names_the_variable_and_its_range() {
    for bad in ["abc", "5", "100000", "-3", ""] {
        let (code, text) = powercut(
            &["workload", "gen", "--seed", "1"],
            &[("POWERCUT_BOOT_TIMEOUT", bad)],
        );
        assert_eq!(code, 2, "{bad:?}: {text}");
        assert!(
            text.contains("POWERCUT_BOOT_TIMEOUT") && text.contains("10 to 3600"),
            "{bad:?}: {text}"
        );
    }
    let (code, text) = powercut(
        &["workload", "gen", "--seed", "1"],
        &[("POWERCUT_BOOT_TIMEOUT", "600")],
    );
    assert_eq!(code, 0, "{text}");
}
