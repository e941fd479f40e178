//! Triage end to end (boots VMs; needs ci/setup and gcc): a small m5 campaign (seed 1)
//! finds failures; `repro` brings one back every time; `minimize` shrinks its workload and
//! writes a valid `minimal.yaml` and a C reproducer that builds with `gcc -static` and passes
//! a dry run + verify on the host; and the C reproducer, run by hand in a guest the way a
//! kernel developer would, loses the file under m5 and keeps it on the stock kernel.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use powercut::test_support::mount_dax;
use powercut::test_support::snapshot;
use powercut::test_support::CrashLabel;
use powercut::test_support::FailureDir;
use powercut::test_support::{render_c, CReproInput};
use powercut::test_support::{sparse_copy, sync_blocks};
use powercut::test_support::{Vm, VmSpec};
use workloads::oracle::{expectation, CrashPoint, FsRules};
use workloads::{Op, OpOutcome, Workload};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The failure directory of an m5 campaign over seed 1 with the latest after-op crash
/// point (the most ops to remove). Run once per test binary.
fn m5_failure() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        common::fixture();
        let run = scratch("triage-m5-campaign");
        let out = run.to_string_lossy();
        let (code, text) = common::powercut(&[
            "campaign", "--output", &out, "--seeds", "1..2", "--mutant", "m5",
        ]);
        assert_eq!(code, 1, "{text}");
        std::fs::read_dir(run.join("failures"))
            .expect("failures dir")
            .map(|e| e.expect("entry").path())
            .filter_map(|d| match FailureDir::load(&d).ok()?.record.crash.point {
                CrashPoint::AfterOp(k) => Some((k, d)),
                CrashPoint::InsideOp(_) => None,
            })
            .max()
            .map(|(_, d)| d)
            .expect("an after-op failure")
    })
}

/// `m5_failure()` after `powercut minimize` ran on it. Run once per test binary.
fn minimized() -> &'static Path {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = m5_failure();
        let (code, text) =
            common::powercut(&["minimize", &dir.to_string_lossy(), "--max-runs", "16"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("minimized:"), "{text}");
        dir.to_owned()
    })
}

fn gcc_static(src: &Path, bin: &Path) {
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-s", "-Wall", "-Werror", "-o"])
        .arg(bin)
        .arg(src)
        .output()
        .expect("gcc runs (ci/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn repro_brings_an_m5_failure_back_every_time() {
    let dir = m5_failure();

    let (code, text) = common::powercut(&["repro", &dir.to_string_lossy(), "--runs", "2"]);

    assert_eq!(code, 1, "{text}");
    assert!(text.contains("reproduced 2 of 2"), "{text}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("repro.json")).expect("repro.json"))
            .expect("json");
    assert_eq!(report["reproduced"], 2);
    assert_eq!(report["flaky"], false);
    assert_eq!(
        FailureDir::load(dir)
            .expect("failure dir")
            .record
            .mutant
            .as_deref(),
        Some("m5")
    );
}

#[test]
fn minimize_shrinks_an_m5_failure_to_a_smaller_valid_workload() {
    let dir = minimized();

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("minimize.json")).expect("json"))
            .expect("json");
    let minimal = workloads::spec::load_workload(&dir.join("minimal.yaml"));

    let minimal = minimal.expect("minimal.yaml validates");
    let before = report["ops_before"].as_u64().expect("ops_before");
    let after = report["ops_after"].as_u64().expect("ops_after");
    assert!(after < before, "{report}");
    assert_eq!(minimal.ops.len() as u64, after);
    assert!(report["runs_used"].as_u64().expect("runs") <= 16);
    let at: CrashLabel =
        serde_json::from_value(report["crash_after"].clone()).expect("typed crash point");
    let CrashPoint::AfterOp(k) = at.point else {
        panic!("{report}")
    };
    assert_eq!(
        minimal.ops[k].kind(),
        at.kind,
        "the crash point follows its op"
    );
}

#[test]
fn the_minimized_reproducer_builds_static_and_verifies_on_the_host() {
    let dir = minimized();
    let work = scratch("triage-host-run");
    let bin = work.join("repro");
    gcc_static(&dir.join("repro.c"), &bin);
    let files = work.join("w");

    let run = Command::new(&bin)
        .args(["run", "--no-stop", "--no-dax"])
        .arg(&files)
        .output()
        .expect("run");
    let verify = Command::new(&bin)
        .arg("verify")
        .arg(&files)
        .output()
        .expect("verify");

    let run_out = String::from_utf8_lossy(&run.stdout);
    let verify_out = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(run.status.code(), Some(0), "{run_out}");
    assert!(run_out.contains("CUT NOW"), "{run_out}");
    assert_eq!(verify.status.code(), Some(0), "{verify_out}");
    assert!(verify_out.contains("verify: ok"), "{verify_out}");
}

/// Copy `bin` into the guest as `/tmp/repro`: gzip, base64, in chunks through SSH.
fn upload(vm: &mut Vm, bin: &Path) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9 -c '{}' | base64 -w0", bin.display()))
        .output()
        .expect("gzip | base64");
    assert!(out.status.success());
    vm.run("rm -f /tmp/repro.b64").expect("rm");
    // dropbear takes commands of at most 9000 bytes.
    for (i, chunk) in out.stdout.chunks(8000).enumerate() {
        let text = std::str::from_utf8(chunk).expect("base64 is ASCII");
        if let Err(e) = vm.run(&format!("printf '%s' '{text}' >> /tmp/repro.b64")) {
            let msg = e.to_string();
            let tail = &msg[msg.len().saturating_sub(300)..];
            panic!("upload chunk {i}: {tail}");
        }
    }
    vm.run("base64 -d /tmp/repro.b64 | gunzip > /tmp/repro && chmod +x /tmp/repro")
        .expect("decode");
}

#[test]
fn the_c_reproducer_loses_the_file_under_m5_and_keeps_it_on_the_stock_kernel() {
    let (img, accel, golden) = common::fixture();
    let work = scratch("triage-guest-run");
    let w = Workload {
        name: "guest".into(),
        seed: 7,
        profile: None,
        ops: vec![
            Op::create("f0"),
            Op::Pwrite {
                file: "f0".into(),
                off: 0,
                len: 4096,
                pattern: Some(1),
            },
            Op::Fsync { file: "f0".into() },
        ],
    };
    let outcomes = vec![
        Some(OpOutcome::ok(0)),
        Some(OpOutcome::ok(4096)),
        Some(OpOutcome::ok(0)),
    ];
    let point = CrashPoint::AfterOp(2);
    let exp = expectation(&w, &outcomes, point, &FsRules::ext4());
    let src = work.join("repro.c");
    std::fs::write(
        &src,
        render_c(&CReproInput {
            title: "guest test",
            workload: &w,
            point,
            outcomes: &outcomes,
            expectation: &exp,
            fs: "ext4",
            mutant: Some("m5"),
            kernel: &img.kernel_version,
            cache: None,
        }),
    )
    .expect("write repro.c");
    let bin = work.join("repro");
    gcc_static(&src, &bin);
    // Workload VM: the run under m5 (in /mnt/w), then without the mutant (in /mnt/s).
    let pmem = work.join("work.pmem");
    golden.copy_to(&pmem).expect("copy golden");
    let mut vm = Vm::boot(&VmSpec::new("repro-work", &img, &pmem, accel, &work)).expect("boot");
    mount_dax(&mut vm, golden.fs, "/mnt", "commit=600").expect("mount");
    vm.run("insmod /lib/modules/powercut_mutant.ko mutants=m5")
        .expect("insmod");
    upload(&mut vm, &bin);
    let m5_run = vm
        .run("/tmp/repro run --no-stop /mnt/w")
        .expect("run under m5");
    let m5_img = work.join("crash-m5.img");
    snapshot::take(&mut vm, &pmem, &m5_img).expect("snapshot");
    vm.run("rmmod powercut_mutant").expect("rmmod");
    let stock_run = vm
        .run("/tmp/repro run --no-stop /mnt/s")
        .expect("run stock");
    let stock_img = work.join("crash-stock.img");
    snapshot::take(&mut vm, &pmem, &stock_img).expect("snapshot");
    vm.kill();
    // Verify VM: boots on the m5 crash image, then gets the stock one swapped in.
    let vpmem = work.join("verify.pmem");
    sparse_copy(&m5_img, &vpmem).expect("copy crash image");
    let mut vvm =
        Vm::boot(&VmSpec::new("repro-verify", &img, &vpmem, accel, &work)).expect("boot verify VM");
    mount_dax(&mut vvm, golden.fs, "/mnt", "").expect("mount crash image");
    upload(&mut vvm, &bin);

    let m5_verify = vvm
        .ssh()
        .exec("/tmp/repro verify /mnt/w")
        .expect("verify m5");
    vvm.run("umount /mnt").expect("umount");
    sync_blocks(&stock_img, &vpmem).expect("swap image");
    vvm.run("echo 3 > /proc/sys/vm/drop_caches; blockdev --flushbufs /dev/pmem0")
        .expect("drop caches");
    mount_dax(&mut vvm, golden.fs, "/mnt", "").expect("mount stock image");
    let stock_verify = vvm
        .ssh()
        .exec("/tmp/repro verify /mnt/s")
        .expect("verify stock");
    vvm.kill();

    assert!(m5_run.contains("CUT NOW"), "{m5_run}");
    assert!(stock_run.contains("CUT NOW"), "{stock_run}");
    assert_eq!(m5_verify.status, 1, "{}", m5_verify.stdout);
    assert!(
        m5_verify
            .stdout
            .contains("missing-file: f0 after op 2 (fsync)"),
        "{}",
        m5_verify.stdout
    );
    assert_eq!(stock_verify.status, 0, "{}", stock_verify.stdout);
    assert!(
        stock_verify.stdout.contains("verify: ok"),
        "{}",
        stock_verify.stdout
    );
}
