//! Kernel inputs (VM tests): a kernel build tree is accepted and boots; a config that lacks
//! an option is refused before any boot (exit 2, naming the option); two builds of one
//! release never share a guest image. The build tree is a fixture made from the packaged
//! kernel `ci/setup` caches: its bzImage, `.config`, `System.map`, modules, and Debian's
//! headers (the kbuild files) when they are installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use powercut::test_support::cache_root;
use powercut::test_support::{build_image, ImageOptions};
use powercut::test_support::{resolve, KernelSpec};
use powercut::test_support::{Vm, VmError, VmSpec, BOOT_TIMEOUT};

/// A build-tree-shaped directory and the module tree that goes with it.
struct TreeFixture {
    _dir: tempfile::TempDir,
    tree: PathBuf,
    modules: PathBuf,
    release: String,
    has_kbuild: bool,
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// The packaged default kernel, laid out like `make` output.
fn tree_fixture() -> TreeFixture {
    let kernel =
        resolve(&KernelSpec::default(), &cache_root()).expect("the default kernel (run ci/setup)");
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("linux");
    let has_kbuild = match &kernel.kbuild_dir {
        Some(headers) => {
            // Debian's headers are a kbuild directory (Makefile, Module.symvers, include/,
            // scripts/); their scripts and tools are relative links: make them absolute.
            let st = Command::new("cp")
                .arg("-a")
                .arg(headers)
                .arg(&tree)
                .status()
                .expect("cp");
            assert!(st.success());
            for link in ["scripts", "tools"] {
                let target = headers.join(link).canonicalize().expect("link target");
                std::fs::remove_file(tree.join(link)).expect("rm link");
                std::os::unix::fs::symlink(target, tree.join(link)).expect("symlink");
            }
            true
        }
        None => {
            std::fs::create_dir_all(&tree).expect("mkdir");
            std::fs::write(tree.join("Makefile"), "# not a kbuild tree\n").expect("Makefile");
            false
        }
    };
    let boot = kernel.bzimage.parent().expect("boot dir");
    copy(&kernel.bzimage, &tree.join("arch/x86/boot/bzImage"));
    copy(
        kernel.config.as_ref().expect("packaged config"),
        &tree.join(".config"),
    );
    copy(
        &boot.join(format!("System.map-{}", kernel.version)),
        &tree.join("System.map"),
    );
    std::fs::create_dir_all(tree.join("include/config")).expect("mkdir");
    std::fs::write(
        tree.join("include/config/kernel.release"),
        format!("{}\n", kernel.version),
    )
    .expect("kernel.release");
    TreeFixture {
        tree,
        modules: kernel.modules_dir.clone(),
        release: kernel.version,
        has_kbuild,
        _dir: dir,
    }
}

#[test]
fn a_build_tree_boots_in_vm_smoke() {
    let f = tree_fixture();
    let tree = f.tree.to_string_lossy();
    let modules = f.modules.to_string_lossy();

    let (code, text) = common::powercut(&[
        "vm",
        "smoke",
        "--kernel",
        &tree,
        "--modules",
        &modules,
        "--accel",
        "tcg",
    ]);

    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("kernel {} (build tree", f.release)),
        "{text}"
    );
    assert!(text.contains("dax mount check: ok"), "{text}");
    assert!(text.contains("agent: powercut-agent"), "{text}");
    if f.has_kbuild {
        // The mutant module was built against the tree itself.
        assert!(text.contains("mutant module yes"), "{text}");
    }
}

#[test]
fn a_missing_config_option_exits_2_naming_it_before_any_boot() {
    let f = tree_fixture();
    let config = f.tree.join(".config");
    let text = std::fs::read_to_string(&config).expect("config");
    let edited = text
        .replace("CONFIG_VIRTIO_NET=m\n", "# CONFIG_VIRTIO_NET is not set\n")
        .replace("CONFIG_FS_DAX=y\n", "# CONFIG_FS_DAX is not set\n");
    assert_ne!(edited, text, "the fixture config has both options");
    std::fs::write(&config, edited).expect("write config");
    let tree = f.tree.to_string_lossy();
    let modules = f.modules.to_string_lossy();

    let (code, out) = common::powercut(&[
        "image",
        "build",
        "--kernel",
        &tree,
        "--modules",
        &modules,
        "--accel",
        "tcg",
    ]);

    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("CONFIG_FS_DAX=y is needed: DAX mounts"),
        "{out}"
    );
    assert!(out.contains("CONFIG_VIRTIO_NET=y or =m is needed"), "{out}");
    assert!(out.contains("powercut kernel kconfig"), "{out}");
    assert!(!out.contains("golden"), "nothing booted: {out}");
}

#[test]
fn two_builds_of_one_release_never_share_an_image() {
    let a = tree_fixture();
    let b = tree_fixture();
    // The second build differs in one byte past the end of the setup header's payload.
    let bz = b.tree.join("arch/x86/boot/bzImage");
    let mut bytes = std::fs::read(&bz).expect("read");
    bytes.push(0);
    std::fs::write(&bz, bytes).expect("write");
    let image_of = |f: &TreeFixture| {
        let mut opts = ImageOptions::new(&cache_root());
        opts.kernel = KernelSpec::parse(&f.tree.to_string_lossy())
            .and_then(|s| s.with_modules(f.modules.clone()))
            .expect("spec");
        build_image(&opts).expect("image builds").0
    };

    let (img_a, img_b) = (image_of(&a), image_of(&b));

    assert_eq!(img_a.kernel_version, img_b.kernel_version);
    assert_ne!(img_a.hash, img_b.hash);
}

#[test]
fn kernel_inputs_that_cannot_be_used_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").expect("write");
    let cases: [(&[&str], &str); 4] = [
        (&["--kernel", "/nonexistent/linux"], "cannot read it"),
        (
            &["--kernel", "9.9.9-unknown"],
            "no cached kernel has this release",
        ),
        (
            &["--kernel", &notes.to_string_lossy()],
            "not a .deb package",
        ),
        (&["--kernel", "a.deb,tree"], "only .deb files"),
    ];

    for (flags, want) in cases {
        let mut args = vec!["image", "build"];
        args.extend_from_slice(flags);
        let (code, out) = common::powercut(&args);

        assert_eq!(code, 2, "{flags:?}: {out}");
        assert!(out.contains(want), "{flags:?}: {out}");
    }
}

#[test]
fn a_guest_without_a_network_device_fails_at_once_with_its_console_line() {
    let (img, accel, golden) = common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let pmem = dir.path().join("pmem");
    golden.copy_to(&pmem).expect("copy golden");
    let mut spec = VmSpec::new("no-net", &img, &pmem, accel, dir.path());
    // The default kernel has virtio PCI built in: keep its driver from registering, so
    // the guest has no eth0 (what Debian 12's 6.1 did when virtio_pci was not loaded).
    spec.append
        .push("initcall_blacklist=virtio_pci_driver_init".into());
    let start = Instant::now();

    let result = Vm::boot(&spec);

    let elapsed = start.elapsed();
    match result {
        Err(VmError::GuestFatal { line, console }) => {
            assert!(line.contains("no network device eth0"), "{line}");
            assert!(console.contains("powercut: fatal:"), "{console}");
        }
        Err(other) => panic!("expected the guest's fatal line, got: {other}"),
        Ok(_) => panic!("the guest booted without virtio PCI"),
    }
    assert!(
        elapsed < BOOT_TIMEOUT,
        "took {elapsed:?}: waited for SSH instead"
    );
    assert!(
        common::qemu_processes_with(&pmem).is_empty(),
        "QEMU left running"
    );
}
