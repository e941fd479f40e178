//! VM integration tests: boot a real guest under QEMU, check the DAX mount over SSH, the
//! agent, the mutant module, and that failures leave no QEMU behind.

mod common;

use std::time::Duration;

use powercut::test_support::mount_dax;
use powercut::test_support::Filesystem;
use powercut::test_support::{Vm, VmError, VmSpec};

#[test]
fn guest_boots_mounts_dax_and_runs_the_agent() {
    let (img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");

    let mut vm = Vm::boot(&VmSpec::new("it-smoke", &img, &pmem, accel, dir.path())).expect("boot");
    let line = mount_dax(&mut vm, Filesystem::Ext4, "/mnt", "").expect("dax mount");
    let version = vm.run("powercut-agent --version").expect("agent runs");
    let status = vm.qmp().running().expect("query-status");
    let range = vm.qmp().nvdimm("nv0").expect("query-memory-devices");
    vm.run("umount /mnt").expect("umount");
    vm.shutdown().expect("clean shutdown");

    assert!(line.contains("dax"), "{line}");
    assert!(version.starts_with("powercut-agent "), "{version}");
    assert!(status);
    assert_eq!(range.size, 256 << 20);
    assert!(common::qemu_processes_with(&pmem).is_empty());
}

#[test]
fn a_run_directory_with_commas_works_and_the_guest_reaches_nothing() {
    let (img, accel, golden) = common::fixture();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run,with,commas");
    std::fs::create_dir(&dir).expect("mkdir");
    let pmem = dir.join("pmem,0");
    golden.copy_to(&pmem).expect("copy golden");
    // Slirp maps the guest's 10.0.2.2 to the host's loopback: with restrict=on nothing
    // may arrive here.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");

    let mut vm = Vm::boot(&VmSpec::new("it-comma", &img, &pmem, accel, &dir)).expect("boot");
    let line = mount_dax(&mut vm, Filesystem::Ext4, "/mnt", "").expect("dax mount");
    let range = vm.qmp().nvdimm("nv0").expect("query-memory-devices");
    // Bounded either way: a connection would be held open by our silent listener.
    vm.run(&format!(
        "busybox timeout 5 busybox nc 10.0.2.2 {port} </dev/null; true"
    ))
    .expect("nc runs");
    vm.run("umount /mnt").expect("umount");
    vm.shutdown().expect("clean shutdown");
    let connected = listener.accept().is_ok();

    assert!(line.contains("dax"), "{line}");
    assert_eq!(range.size, 256 << 20);
    assert!(dir.join("it-comma.console.log").exists());
    assert!(!connected, "the guest connected to the host's loopback");
    assert!(common::qemu_processes_with(&pmem).is_empty());
}

#[test]
fn mutant_module_loads_and_arms() {
    let (img, accel, golden) = common::fixture();
    assert!(img.has_mutant_module, "image built without linux-headers");
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");

    let mut vm = Vm::boot(&VmSpec::new("it-mutant", &img, &pmem, accel, dir.path())).expect("boot");
    mount_dax(&mut vm, Filesystem::Ext4, "/mnt", "").expect("dax mount");
    vm.run("insmod /lib/modules/powercut_mutant.ko mutants=m5")
        .expect("insmod");
    vm.run("echo x > /mnt/f && /bin/sh -c 'sync /mnt/f' ; true")
        .expect("write");
    let stats = vm
        .run("cat /sys/module/powercut_mutant/parameters/stats")
        .expect("stats");
    let dmesg = vm.run("dmesg | grep powercut_mutant").expect("dmesg");
    vm.run("umount /mnt && rmmod powercut_mutant")
        .expect("umount + rmmod");
    vm.shutdown().expect("shutdown");

    assert!(dmesg.contains("armed m5"), "{dmesg}");
    assert!(stats.contains("m5"), "{stats}");
}

/// m8 (ext4 fsync with datasync forced) and m9 (per-write syncs skipped) fire on the paths
/// their campaigns rely on: a chmod + fsync and an O_DSYNC write, run by the agent in the
/// guest; `stats` counts the calls each changed.
#[test]
fn mutants_m8_and_m9_fire_on_fsync_and_o_dsync_writes() {
    use workloads::protocol::HostMsg;
    use workloads::{Op, OpenSync, RwfFlag, Workload};

    let (img, accel, golden) = common::fixture();
    assert!(img.has_mutant_module, "image built without linux-headers");
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");
    let workload = Workload {
        name: "fire".into(),
        seed: 1,
        profile: None,
        ops: vec![
            Op::create("f0"),
            Op::Chmod {
                file: "f0".into(),
                mode: 0o600,
            },
            Op::Fsync { file: "f0".into() },
            Op::Create {
                file: "f1".into(),
                sync: OpenSync::Dsync,
                direct: false,
            },
            Op::Pwrite {
                file: "f1".into(),
                off: 0,
                len: 4096,
                pattern: None,
            },
            Op::Pwritev2 {
                file: "f0".into(),
                off: 0,
                len: 64,
                pattern: None,
                flags: RwfFlag::Sync,
            },
        ],
    };
    let run = HostMsg::Run {
        dir: "/mnt/w".into(),
        workload,
        barriers: Vec::new(),
        markers: false,
    };
    let lines = format!(
        "{}\n{}\n",
        serde_json::to_string(&run).expect("json"),
        serde_json::to_string(&HostMsg::Quit).expect("json")
    );
    std::fs::write(dir.path().join("in.jsonl"), &lines).expect("write");

    let mut vm = Vm::boot(&VmSpec::new("it-m8m9", &img, &pmem, accel, dir.path())).expect("boot");
    mount_dax(&mut vm, Filesystem::Ext4, "/mnt", "").expect("dax mount");
    vm.run("insmod /lib/modules/powercut_mutant.ko mutants=m8,m9")
        .expect("insmod");
    let quoted = lines.replace('\'', "'\\''");
    let out = vm
        .run(&format!("printf '%s' '{quoted}' | powercut-agent serve"))
        .expect("agent runs the workload");
    let stats = vm
        .run("cat /sys/module/powercut_mutant/parameters/stats")
        .expect("stats");
    vm.run("umount /mnt && rmmod powercut_mutant")
        .expect("umount + rmmod");
    vm.shutdown().expect("shutdown");

    assert!(out.contains("\"finished\""), "{out}");
    let hits = |m: &str| -> u64 {
        let line = stats.lines().find(|l| l.starts_with(m)).unwrap_or_default();
        line.split("hits=")
            .nth(1)
            .and_then(|h| h.trim().parse().ok())
            .unwrap_or(0)
    };
    // m8: the fsync (datasync 0) ran as an fdatasync. (The RWF_SYNC write's own fsync never
    // reaches ext4_sync_file: m9 skipped it.)
    assert!(hits("m8") >= 1, "{stats}");
    // m9: the O_DSYNC pwrite's and the RWF_SYNC pwritev2's syncs were skipped.
    assert!(hits("m9") >= 2, "{stats}");
}

#[test]
fn garbage_kernel_fails_fast_with_the_console_and_no_leftover_qemu() {
    let (mut img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bzImage");
    std::fs::write(&bogus, b"this is not a kernel").expect("write");
    img.bzimage = bogus;
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");

    let err = Vm::boot(&VmSpec::new("it-bogus", &img, &pmem, accel, dir.path()))
        .err()
        .expect("boot must fail");

    assert!(matches!(err, VmError::QemuDied { .. }), "{err}");
    assert!(err.to_string().contains("QEMU output"), "{err}");
    assert!(common::qemu_processes_with(&pmem).is_empty());
}

#[test]
fn guest_that_never_answers_ssh_times_out_and_is_killed() {
    let (img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");
    let mut spec = VmSpec::new("it-hang", &img, &pmem, accel, dir.path());
    // init just sleeps: the guest never starts dropbear.
    spec.append
        .extend(["rdinit=/bin/busybox", "--", "sleep", "1000"].map(String::from));
    spec.boot_timeout = Duration::from_secs(8);

    let started = std::time::Instant::now();
    let err = Vm::boot(&spec).err().expect("boot must time out");

    assert!(matches!(err, VmError::BootTimeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(common::qemu_processes_with(&pmem).is_empty());
}

#[test]
fn guest_panic_is_reported_as_a_panic_with_the_console() {
    let (img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");
    let mut spec = VmSpec::new("it-panic", &img, &pmem, accel, dir.path());
    // An init that exits at once: "Attempted to kill init!", panic=-1 ends QEMU.
    spec.append.push("rdinit=/bin/busybox".into());

    let err = Vm::boot(&spec).err().expect("boot must fail");

    assert!(matches!(err, VmError::GuestPanic { .. }), "{err}");
    assert!(err.to_string().contains("Kernel panic"), "{err}");
    assert!(common::qemu_processes_with(&pmem).is_empty());
}

#[test]
fn vm_exec_copies_files_in_and_returns_the_commands_output_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("probe.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ngrep -c ' /mnt .*dax' /proc/mounts\ntest -w /sys/kernel/debug/tracing/trace_marker && echo tracefs\nexit 7\n",
    )
    .expect("write");

    let (code, out) = common::powercut(&[
        "vm",
        "exec",
        "--put",
        &script.to_string_lossy(),
        "--",
        "./probe.sh",
    ]);

    assert_eq!(code, 7, "{out}");
    // stdout (the command's) comes first, then powercut's own lines on stderr.
    assert!(out.starts_with("1\ntracefs\n"), "{out}");
}
