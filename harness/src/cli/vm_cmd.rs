//! `powercut vm smoke`: boot, check the DAX mount over SSH, run the agent, shut down.

use anyhow::Context;

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::image::golden::mount_dax;
use crate::vm::{Vm, VmSpec};

/// Boot the image on a copy of each golden pmem image and check DAX end to end.
pub fn vm_smoke(args: &ImageArgs, debug: bool) -> anyhow::Result<()> {
    let (img, accel, goldens) = prepare(args, debug)?;
    let run_dir = tempfile::Builder::new()
        .prefix("powercut-smoke-")
        .tempdir()
        .context("creating a scratch directory")?;
    for golden in goldens {
        let pmem = run_dir.path().join(format!("{}.pmem", golden.fs));
        golden.copy_to(&pmem)?;
        let mut spec = VmSpec::new(
            &format!("smoke-{}", golden.fs),
            &img,
            &pmem,
            accel.accel,
            run_dir.path(),
        );
        spec.debug = debug;
        let mut vm = Vm::boot(&spec).with_context(|| format!("booting {}", spec.name))?;
        let boot = vm.boot_time();
        let line = mount_dax(&mut vm, golden.fs, "/mnt", "")
            .with_context(|| format!("mounting {} with -o dax", golden.fs))?;
        println!("dax mount check: ok: {line}");
        let version = vm
            .run("powercut-agent --version")
            .context("running the guest agent")?;
        println!("agent: {}", version.trim());
        vm.run("umount /mnt").context("unmounting")?;
        vm.shutdown().context("shutting down")?;
        println!(
            "{}: boot to SSH {:.1} s, accelerator {}",
            golden.fs,
            boot.as_secs_f64(),
            accel.accel
        );
    }
    Ok(())
}
