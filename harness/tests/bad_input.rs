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
