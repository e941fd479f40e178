//! Untrusted kernels, modules and files never touch the host, through the `powercut`
//! binary (no VM boots in any of these tests): a `.ko` whose own name is a path or a shell
//! command, `.deb`s with absolute and escaping symlinks, a garbage `.deb`, journals and
//! `--put` files that are `/dev/zero` or a FIFO, a bad `--output` — each gives exit 2 with
//! one clear line, writes nothing outside the test's temp directory (the cache is
//! `POWERCUT_CACHE`, `TMPDIR` is inside it too), and leaves nothing running. A `kill -9`
//! during an unpack leaves no helper alive, and the next start removes its staging
//! directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any refused input may take (they are all refused before any real work).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(120);

/// A temp root with the cache, `$TMPDIR`, a victim directory and a host file that crafted
/// inputs aim at.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["cache", "tmp", "victim/modules/6.1.0-pc/kernel", "inputs"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(dir.path().join("host-file"), b"a host file, not a kernel").expect("write");
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Every file under the victim directory.
    fn victim_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.path("victim"), &mut out);
        out
    }

    /// Run powercut with the sandbox's cache and temp dir, bounded by [`REFUSAL_TIMEOUT`].
    fn powercut(&self, args: &[&str]) -> (i32, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_powercut"))
            .args(args)
            .env("POWERCUT_CACHE", self.path("cache"))
            .env("TMPDIR", self.path("tmp"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn powercut");
        let deadline = Instant::now() + REFUSAL_TIMEOUT;
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                child.kill().expect("kill");
                let _ = child.wait();
                panic!("powercut {args:?} hung for {REFUSAL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Processes (other than this test) whose command line mentions the sandbox.
    fn processes_inside(&self) -> Vec<String> {
        processes_mentioning(self.dir.path())
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            out.push(format!("{name}: {cmd}"));
        }
    }
    out
}

/// An ELF object whose `.modinfo` carries `name` and a vermagic: what `modinfo` reads.
fn crafted_ko(dir: &Path, file: &str, name: &str) -> PathBuf {
    let src = dir.join(format!("{file}.c"));
    std::fs::write(
        &src,
        format!(
            "__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=6.1.0-pc SMP mod_unload \";\n\
             __attribute__((section(\".modinfo\"), used)) static const char n[] = \"name={}\";\n",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    )
    .expect("write .c");
    let ko = dir.join(format!("{file}.ko"));
    let st = Command::new("cc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&ko)
        .status()
        .expect("cc");
    assert!(st.success(), "cc failed");
    ko
}

/// A minimal bzImage: the boot header magic and a version string.
fn bzimage(version: &str) -> Vec<u8> {
    let mut b = vec![0u8; 0x600];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    let at: u16 = 0x300;
    b[0x20e..0x210].copy_from_slice(&at.to_le_bytes());
    let start = usize::from(at) + 0x200;
    b[start..start + version.len()].copy_from_slice(version.as_bytes());
    b
}

/// Build `<inputs>/<name>.deb` from a tree made by `fill` (paths relative to the package
/// root), with `dpkg-deb -b`.
fn deb(sb: &Sandbox, name: &str, fill: impl FnOnce(&Path), extra: &[&str]) -> PathBuf {
    let root = sb.path(&format!("build-{name}"));
    std::fs::create_dir_all(root.join("DEBIAN")).expect("mkdir");
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: linux-image-{name}\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: test\n"
        ),
    )
    .expect("control");
    fill(&root);
    let out = sb.path(&format!("inputs/linux-image-{name}_1_amd64.deb"));
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .args(extra)
        .arg(&root)
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("dpkg-deb -b");
    assert!(st.success(), "dpkg-deb -b {name}");
    out
}

fn mkdirs(root: &Path, rel: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}

/// A package whose `lib` is an absolute symlink into the victim directory (where depmod
/// would write), with a valid kernel beside it.
fn deb_lib_to_victim(sb: &Sandbox) -> PathBuf {
    let victim = sb.path("victim");
    deb(
        sb,
        "abs-lib",
        |r| {
            std::fs::write(
                mkdirs(r, "boot").join("vmlinuz-6.1.0-pc"),
                bzimage("6.1.0-pc x"),
            )
            .expect("write");
            std::os::unix::fs::symlink(&victim, r.join("lib")).expect("symlink");
        },
        &[],
    )
}

/// A package whose kernel image is an absolute symlink to a host file.
fn deb_kernel_to_host_file(sb: &Sandbox) -> PathBuf {
    let host = sb.path("host-file");
    deb(
        sb,
        "abs-kernel",
        |r| {
            std::fs::write(mkdirs(r, "lib/modules/6.1.0-pc/kernel").join("x.ko"), b"x")
                .expect("write");
            std::os::unix::fs::symlink(&host, mkdirs(r, "boot").join("vmlinuz-6.1.0-pc"))
                .expect("symlink");
        },
        &[],
    )
}

/// A package whose kernel image is a relative symlink climbing out of the package.
fn deb_kernel_escaping(sb: &Sandbox) -> PathBuf {
    deb(
        sb,
        "escaping",
        |r| {
            std::fs::write(mkdirs(r, "lib/modules/6.1.0-pc/kernel").join("x.ko"), b"x")
                .expect("write");
            std::os::unix::fs::symlink(
                "../../../../../../../../../../../etc/hostname",
                mkdirs(r, "boot").join("vmlinuz-6.1.0-pc"),
            )
            .expect("symlink");
        },
        &[],
    )
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

/// A run directory whose journal is `target` (a symlink) or a FIFO (`target` None).
fn run_dir_with_journal(sb: &Sandbox, name: &str, target: Option<&str>) -> PathBuf {
    let run = sb.path(name);
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("config.yaml"), "seeds: \"1..=1\"\n").expect("config");
    let journal = run.join("journal.jsonl");
    match target {
        Some(t) => std::os::unix::fs::symlink(t, &journal).expect("symlink"),
        None => mkfifo(&journal),
    }
    run
}

#[test]
fn a_module_whose_name_is_a_path_or_a_shell_command_is_refused_before_any_image_work() {
    let sb = Sandbox::new();
    let target = sb.path("victim/x");
    let path_like = crafted_ko(
        &sb.path("inputs"),
        "pathy",
        &format!("../../../../../../../..{}", target.display()),
    );
    let shell_like = crafted_ko(&sb.path("inputs"), "shelly", "x;reboot -f");

    let results: Vec<(i32, String)> = [&path_like, &shell_like]
        .iter()
        .map(|ko| {
            sb.powercut(&[
                "campaign",
                "--seeds",
                "1..=1",
                "--output",
                &sb.path("run").to_string_lossy(),
                "--module",
                &ko.to_string_lossy(),
            ])
        })
        .collect();

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
        assert!(text.contains("is not a module name"), "{text}");
    }
    assert!(!sb.path("victim/x.ko").exists());
    assert!(!sb.path("cache/images").exists(), "no image work was done");
    assert!(
        sb.processes_inside().is_empty(),
        "{:?}",
        sb.processes_inside()
    );
}

#[test]
fn debs_with_absolute_or_escaping_symlinks_are_refused_and_write_nothing_outside() {
    let sb = Sandbox::new();
    let debs = [
        deb_lib_to_victim(&sb),
        deb_kernel_to_host_file(&sb),
        deb_kernel_escaping(&sb),
    ];
    let before = sb.victim_files();

    let results: Vec<(i32, String)> = debs
        .iter()
        .map(|d| sb.powercut(&["image", "build", "--kernel", &d.to_string_lossy()]))
        .collect();

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
        assert!(text.contains("points outside the package"), "{text}");
    }
    assert_eq!(
        sb.victim_files(),
        before,
        "depmod or an unpack wrote outside"
    );
    let mut cached = Vec::new();
    walk(&sb.path("cache"), &mut cached);
    assert!(
        cached
            .iter()
            .all(|f| !f.contains("/kernels/") || f.contains("/locks/")),
        "a refused unpack left files: {cached:?}"
    );
    assert!(
        sb.processes_inside().is_empty(),
        "{:?}",
        sb.processes_inside()
    );
}

#[test]
fn a_garbage_deb_and_a_deb_that_is_not_a_file_exit_2() {
    let sb = Sandbox::new();
    let garbage = sb.path("inputs/linux-image-9_1_amd64.deb");
    std::fs::write(&garbage, b"!<arch>\nthis is no package at all").expect("write");
    let text_deb = sb.path("inputs/linux-image-8_1_amd64.deb");
    std::fs::write(&text_deb, b"hello").expect("write");
    let zero = sb.path("inputs/linux-image-7_1_amd64.deb");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");

    let results: Vec<(i32, String)> = [&garbage, &text_deb, &zero]
        .iter()
        .map(|d| sb.powercut(&["image", "build", "--kernel", &d.to_string_lossy()]))
        .collect();

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
    }
    assert!(results[0].1.contains("dpkg-deb"), "{}", results[0].1);
    assert!(
        results[1].1.contains("not a Debian package"),
        "{}",
        results[1].1
    );
    assert!(
        results[2].1.contains("not a regular file"),
        "{}",
        results[2].1
    );
}

#[test]
fn journals_that_are_dev_zero_or_a_fifo_exit_2_for_report_resume_and_merge() {
    let sb = Sandbox::new();
    let zero = run_dir_with_journal(&sb, "zero", Some("/dev/zero"));
    let fifo = run_dir_with_journal(&sb, "fifo", None);

    let mut results = Vec::new();
    for run in [&zero, &fifo] {
        let run = run.to_string_lossy().into_owned();
        results.push(sb.powercut(&["report", &run]));
        results.push(sb.powercut(&["campaign", "--resume", "--output", &run]));
        results.push(sb.powercut(&[
            "report",
            "merge",
            &sb.path("merged").to_string_lossy(),
            &run,
        ]));
    }

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
        assert!(
            text.contains("character device") || text.contains("FIFO"),
            "{text}"
        );
    }
}

#[test]
fn put_files_that_are_not_regular_files_exit_2_before_any_image_work() {
    let sb = Sandbox::new();
    let fifo = sb.path("inputs/fifo");
    mkfifo(&fifo);
    let puts = [
        PathBuf::from("/dev/zero"),
        fifo,
        sb.path("inputs"),
        sb.path("inputs/gone"),
    ];

    let results: Vec<(i32, String)> = puts
        .iter()
        .map(|p| sb.powercut(&["vm", "exec", "--put", &p.to_string_lossy(), "--", "true"]))
        .collect();

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
        assert!(text.contains("--put"), "{text}");
    }
    assert!(!sb.path("cache/images").exists(), "no image work was done");
}

#[test]
fn a_bad_output_exits_2_in_one_line_before_any_image_work() {
    let sb = Sandbox::new();
    let file = sb.path("inputs/a-file");
    std::fs::write(&file, b"x").expect("write");
    let under_file = file.join("run");

    let results: Vec<(i32, String)> = [&file, &under_file]
        .iter()
        .map(|o| {
            sb.powercut(&[
                "campaign",
                "--seeds",
                "1..=1",
                "--output",
                &o.to_string_lossy(),
            ])
        })
        .collect();

    for (code, text) in &results {
        assert_eq!(*code, 2, "{text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
        assert!(text.contains("--output"), "{text}");
    }
    assert!(!sb.path("cache/images").exists(), "no image work was done");
}

#[test]
fn kill_9_during_an_unpack_leaves_no_helper_and_the_next_start_cleans_up() {
    let sb = Sandbox::new();
    // A package big enough that unpacking it takes a while: random bytes do not compress.
    let big = deb(
        &sb,
        "big",
        |r| {
            let dir = mkdirs(r, "lib/modules/6.1.0-pc/kernel");
            let st = Command::new("head")
                .args(["-c", "400M", "/dev/urandom"])
                .stdout(std::fs::File::create(dir.join("big.bin")).expect("create"))
                .status()
                .expect("head");
            assert!(st.success());
        },
        &["-Zgzip", "-z1"],
    );
    let kernels = sb.path("cache/kernels");
    let mut child = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args(["image", "build", "--kernel", &big.to_string_lossy()])
        .env("POWERCUT_CACHE", sb.path("cache"))
        .env("TMPDIR", sb.path("tmp"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let staging = loop {
        let found = std::fs::read_dir(&kernels).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(".tmp"))
        });
        let helper_running = processes_mentioning(&big)
            .iter()
            .any(|p| p.contains("dpkg-deb"));
        if let Some(s) = found.filter(|_| helper_running) {
            break s;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().expect("try_wait").is_none(),
            "the unpack never started (or already ended)"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    child.kill().expect("kill -9");
    child.wait().expect("reap");
    std::thread::sleep(Duration::from_secs(2));
    let survivors = sb.processes_inside();
    let (code, text) = sb.powercut(&[
        "image",
        "build",
        "--kernel",
        &sb.path("inputs/none.deb").to_string_lossy(),
    ]);

    assert!(
        survivors.is_empty(),
        "helpers outlived powercut: {survivors:?}"
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        !staging.exists(),
        "the next start did not remove {}",
        staging.display()
    );
}

/// Every file under `root` except those under `skip` (relative prefixes), with its size.
fn snapshot(root: &Path, skip: &[&str]) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut out: Vec<(String, u64)> = files
        .into_iter()
        .filter(|f| {
            let rel = f.strip_prefix(&*root.to_string_lossy()).unwrap_or(f);
            !skip
                .iter()
                .any(|s| rel.trim_start_matches('/').starts_with(s))
        })
        .map(|f| {
            let len = std::fs::symlink_metadata(&f).map_or(0, |m| m.len());
            (f, len)
        })
        .collect();
    out.sort();
    out
}

/// The test anyone can run: every hostile input of this file, one after another in one
/// sandbox; each exits 2, nothing is written outside the cache and the run directories,
/// `$TMPDIR` holds nothing afterwards, and nothing keeps running.
#[test]
fn every_hostile_input_exits_2_writes_nothing_outside_and_leaves_nothing_running() {
    let sb = Sandbox::new();
    let debs = [
        deb_lib_to_victim(&sb),
        deb_kernel_to_host_file(&sb),
        deb_kernel_escaping(&sb),
    ];
    let garbage = sb.path("inputs/linux-image-9_1_amd64.deb");
    std::fs::write(&garbage, b"!<arch>\nno package").expect("write");
    let kos = [
        crafted_ko(&sb.path("inputs"), "pathy", "../../victim/x"),
        crafted_ko(&sb.path("inputs"), "shelly", "x;reboot -f"),
    ];
    let fifo = sb.path("inputs/fifo");
    mkfifo(&fifo);
    let zero_run = run_dir_with_journal(&sb, "runs/zero", Some("/dev/zero"));
    let fifo_run = run_dir_with_journal(&sb, "runs/fifo", None);
    let a_file = sb.path("inputs/a-file");
    std::fs::write(&a_file, b"x").expect("write");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let run = s(&sb.path("runs/new"));
    let mut commands: Vec<Vec<String>> = Vec::new();
    for d in debs.iter().chain([&garbage]) {
        commands.push(vec![
            "image".into(),
            "build".into(),
            "--kernel".into(),
            s(d),
        ]);
    }
    for ko in &kos {
        commands.push(
            [
                "campaign",
                "--seeds",
                "1..=1",
                "--output",
                &run,
                "--module",
                &s(ko),
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    for r in [&zero_run, &fifo_run] {
        commands.push(vec!["report".into(), s(r)]);
        commands.push(
            ["campaign", "--resume", "--output", &s(r)]
                .map(String::from)
                .to_vec(),
        );
        commands.push(vec![
            "report".into(),
            "merge".into(),
            s(&sb.path("runs/merged")),
            s(r),
        ]);
    }
    for p in ["/dev/zero".to_owned(), s(&fifo), s(&sb.path("inputs"))] {
        commands.push(
            ["vm", "exec", "--put", &p, "--", "true"]
                .map(String::from)
                .to_vec(),
        );
    }
    commands.push(
        ["campaign", "--seeds", "1..=1", "--output", &s(&a_file)]
            .map(String::from)
            .to_vec(),
    );
    let before = snapshot(sb.dir.path(), &["cache", "runs", "tmp"]);

    let results: Vec<(Vec<String>, i32, String)> = commands
        .iter()
        .map(|c| {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            let (code, text) = sb.powercut(&args);
            (c.clone(), code, text)
        })
        .collect();

    for (cmd, code, text) in &results {
        assert_eq!(*code, 2, "{cmd:?}: {text}");
    }
    assert_eq!(
        snapshot(sb.dir.path(), &["cache", "runs", "tmp"]),
        before,
        "something was written outside the cache and the run directories"
    );
    let mut left = Vec::new();
    walk(&sb.path("tmp"), &mut left);
    assert!(left.is_empty(), "left in $TMPDIR: {left:?}");
    assert!(
        sb.processes_inside().is_empty(),
        "{:?}",
        sb.processes_inside()
    );
}
