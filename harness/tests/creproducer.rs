//! The standalone C reproducer on the host (needs gcc with static libc, from ci/setup; no
//! VM): its data patterns are byte-identical to `workloads::Pattern`, and for generated
//! workloads a dry run (`run --no-stop --no-dax`) followed by `verify` passes: the C
//! program performs the ops as the agent does and checks what the oracle expects.

use std::path::{Path, PathBuf};
use std::process::Command;

use powercut::test_support::{render_c, CReproInput};
use workloads::generator::{generate, Profile};
use workloads::oracle::{expectation, CrashPoint, FsRules};
use workloads::{Op, OpOutcome, Pattern, Workload};

/// Every op succeeding, as the agent reports it.
fn all_succeed(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| {
            Some(match op {
                Op::Pwrite { len, .. } | Op::Pwritev2 { len, .. } | Op::UringWrite { len, .. } => {
                    OpOutcome::ok(i64::try_from(*len).expect("len"))
                }
                _ => OpOutcome::ok(0),
            })
        })
        .collect()
}

/// Write `repro.c` for `w` crashed at `point` into `dir` and build it with `gcc -static`.
fn build(dir: &Path, w: &Workload, point: CrashPoint) -> PathBuf {
    let outcomes = all_succeed(w);
    let exp = expectation(w, &outcomes, point, &FsRules::ext4());
    let c = render_c(&CReproInput {
        title: "test",
        workload: w,
        point,
        outcomes: &outcomes,
        expectation: &exp,
        fs: "ext4",
        mutant: None,
        kernel: "host",
        cache: None,
    });
    let src = dir.join("repro.c");
    std::fs::write(&src, c).expect("write repro.c");
    let bin = dir.join("repro");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc runs (install it with ci/setup)");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn run(bin: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin).args(args).output().expect("run repro");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn c_patterns_match_the_rust_patterns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = generate(1, Profile::Smoke);
    let bin = build(dir.path(), &w, CrashPoint::AfterOp(0));

    for (seed, id, off, len) in [
        (1u64, 1u32, 0u64, 64usize),
        (42, 7, 13, 50),
        (u64::MAX, 0x1_2345, 4093, 300),
        (9, 65_535, 1 << 20, 17),
    ] {
        let (code, text) = run(
            &bin,
            &[
                "pattern",
                &seed.to_string(),
                &id.to_string(),
                &off.to_string(),
                &len.to_string(),
            ],
        );

        assert_eq!(code, 0, "{text}");
        assert_eq!(
            text.trim(),
            hex::encode(Pattern::new(seed, id).bytes(off, len)),
            "seed {seed} id {id} off {off} len {len}"
        );
    }
}

#[test]
fn dry_runs_of_generated_workloads_verify_on_the_host() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (seed, profile) in [
        (1, Profile::Smoke),
        (2, Profile::Smoke),
        (3, Profile::Smoke),
        (4, Profile::Default),
        (5, Profile::Default),
        (6, Profile::Deep),
    ] {
        let dir = tempfile::tempdir_in(&scratch).expect("tempdir");
        let w = generate(seed, profile);
        let last = w.ops.len() - 1;
        let bin = build(dir.path(), &w, CrashPoint::AfterOp(last));
        let work = dir.path().join("w");
        let work = work.to_string_lossy();

        let (run_code, run_text) = run(&bin, &["run", "--no-stop", "--no-dax", &work]);
        let (verify_code, verify_text) = run(&bin, &["verify", &work]);

        assert_eq!(run_code, 0, "seed {seed} run:\n{run_text}");
        assert!(run_text.contains("CUT NOW"), "{run_text}");
        assert_eq!(verify_code, 0, "seed {seed} verify:\n{verify_text}");
        assert!(verify_text.contains("verify: ok"), "{verify_text}");
    }
}

#[test]
fn a_dry_run_of_collapse_and_insert_range_verifies_on_the_host() {
    // The host's target directory is on ext4 or xfs, which shift extents (tmpfs does not).
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let spec =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/specs/collapse-insert-range.yaml");
    let w = workloads::spec::load_workload(&spec).expect("spec");
    // Right after the store that follows the second collapse (moved pattern words, not yet
    // durable), and at the end.
    for k in [10, w.ops.len() - 1] {
        let dir = tempfile::tempdir_in(&scratch).expect("tempdir");
        let bin = build(dir.path(), &w, CrashPoint::AfterOp(k));
        let work = dir.path().join("w");
        let work = work.to_string_lossy();

        let (run_code, run_text) = run(&bin, &["run", "--no-stop", "--no-dax", &work]);
        let (verify_code, verify_text) = run(&bin, &["verify", &work]);

        assert_eq!(run_code, 0, "op {k} run:\n{run_text}");
        assert_eq!(verify_code, 0, "op {k} verify:\n{verify_text}");
        assert!(verify_text.contains("verify: ok"), "{verify_text}");
    }
}

#[test]
fn dry_runs_of_the_sync_call_specs_verify_on_the_host() {
    // syncfs, sync_file_range, msync(MS_ASYNC / MS_INVALIDATE), pwritev2 RWF_DSYNC/RWF_SYNC,
    // pwrite through descriptors opened O_DSYNC / O_SYNC.
    for name in ["sync-calls", "pwritev2-dsync-sync", "open-dsync-sync"] {
        dry_run_spec(name, |n| [2, 12, n - 1]);
    }
}

/// Build the reproducer of spec `name` crashing after each op `points(ops)` names, run it
/// on the host without stopping and verify: both must succeed.
fn dry_run_spec(name: &str, points: impl Fn(usize) -> [usize; 3]) {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let spec =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../workloads/specs/{name}.yaml"));
    let w = workloads::spec::load_workload(&spec).expect("spec");
    for k in points(w.ops.len()) {
        let dir = tempfile::tempdir_in(&scratch).expect("tempdir");
        let bin = build(dir.path(), &w, CrashPoint::AfterOp(k));
        let work = dir.path().join("w");
        let work = work.to_string_lossy();

        let (run_code, run_text) = run(&bin, &["run", "--no-stop", "--no-dax", &work]);
        let (verify_code, verify_text) = run(&bin, &["verify", &work]);

        assert_eq!(run_code, 0, "{name} op {k} run:\n{run_text}");
        assert_eq!(verify_code, 0, "{name} op {k} verify:\n{verify_text}");
        assert!(verify_text.contains("verify: ok"), "{verify_text}");
    }
}

#[test]
fn verify_reports_lost_bytes_and_missing_files() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let w = Workload {
        name: "t".into(),
        seed: 5,
        profile: None,
        ops: vec![
            Op::create("f0"),
            Op::Pwrite {
                file: "f0".into(),
                off: 0,
                len: 100,
                pattern: Some(1),
            },
            Op::create("f1"),
            Op::Sync,
        ],
    };
    let bin = build(dir.path(), &w, CrashPoint::AfterOp(3));
    let work = dir.path().join("w");
    let (run_code, run_text) = run(
        &bin,
        &["run", "--no-stop", "--no-dax", &work.to_string_lossy()],
    );
    assert_eq!(run_code, 0, "{run_text}");
    // The "crash": f0's bytes 16..24 lost, f1 gone.
    let mut data = std::fs::read(work.join("f0")).expect("read f0");
    data[16..24].fill(0);
    std::fs::write(work.join("f0"), &data).expect("write f0");
    std::fs::remove_file(work.join("f1")).expect("rm f1");

    let (code, text) = run(&bin, &["verify", &work.to_string_lossy()]);

    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("data-loss: f0 [16..24) after op 3 (sync)"),
        "{text}"
    );
    assert!(text.contains("missing-file: f1"), "{text}");
    assert!(text.contains("verify: LOSS in 2 of 2 files"), "{text}");
}

#[test]
fn the_program_refuses_a_non_dax_directory_unless_told() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let w = generate(1, Profile::Smoke);
    let bin = build(dir.path(), &w, CrashPoint::AfterOp(1));

    let (code, text) = run(&bin, &["run", &dir.path().join("w").to_string_lossy()]);

    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not on a DAX mount"), "{text}");
}

#[test]
fn dry_runs_of_the_namespace_specs_verify_on_the_host() {
    // mkdir, rmdir, link, symlink, renames across directories, renameat2 exchange,
    // noreplace and whiteout, fsync of a subdirectory (the host runs as root in CI, which
    // RENAME_WHITEOUT needs: CAP_MKNOD).
    for name in ["namespace", "namespace-renameat2"] {
        dry_run_spec(name, |n| [7, 16, n - 1]);
    }
}
