//! Shared fixture for the VM integration tests: the guest image and golden pmem from the
//! cache (built on first use; needs `ci/setup` to have run).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use powercut::test_support::cache_root;
use powercut::test_support::{
    build_image, golden_image, Filesystem, GoldenImage, GuestImage, ImageOptions,
};
use powercut::test_support::{resolve_accel, Accel, AccelChoice};

/// The guest image, the accelerator and the golden ext4 pmem image.
pub fn fixture() -> (GuestImage, Accel, GoldenImage) {
    let cache = cache_root();
    let (img, _) = build_image(&ImageOptions {
        cache: cache.clone(),
        kernel: Default::default(),
        wants: Default::default(),
        modules: Vec::new(),
    })
    .expect("guest image builds (run ci/setup first)");
    let accel = resolve_accel(AccelChoice::Auto, &img, &cache)
        .expect("accelerator")
        .accel;
    let golden = golden_image(&img, Filesystem::Ext4, 256 << 20, accel, &cache, false)
        .expect("golden ext4 image");
    (img, accel, golden)
}

/// QEMU processes whose command line mentions `needle`.
pub fn qemu_processes_with(needle: &Path) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", "qemu-system"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&*needle.to_string_lossy()))
        .map(str::to_owned)
        .collect()
}

/// Run the `powercut` binary of this build; its exit code and stdout + stderr.
pub fn powercut(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args(args)
        .output()
        .expect("run powercut");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
