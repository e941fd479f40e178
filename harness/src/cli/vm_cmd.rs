//! `powercut vm smoke` (boot, check the DAX mount over SSH, run the agent, shut down) and
//! `powercut vm exec` (the same boot and mount, then the user's own command).

use std::path::Path;

use anyhow::Context;

use super::image_cmd::prepare;
use super::{ImageArgs, VmExecArgs};
use crate::image::golden::mount_dax;
use crate::vm::{Vm, VmSpec};

/// Largest `--put` file, in bytes (it is held in memory and lands in the guest's RAM).
pub const MAX_PUT_BYTES: u64 = 64 << 20;

/// One `--put` file: its plain name and its bytes (a regular file of at most
/// [`MAX_PUT_BYTES`]), or the usage error to print.
fn put_file(p: &Path) -> Result<(String, Vec<u8>), String> {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.contains(['\'', '\n']))
        .ok_or_else(|| format!("--put {}: not a plain file name", p.display()))?
        .to_owned();
    let bytes =
        crate::input::read(p, MAX_PUT_BYTES, "--put file").map_err(|e| format!("--put {e}"))?;
    Ok((name, bytes))
}

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

/// Boot the image on a copy of the first file system's golden pmem, mount it `-o dax` on
/// /mnt, copy `--put` files into /root/, run the command and print its output. Returns the
/// command's exit status.
pub fn vm_exec(args: &VmExecArgs, debug: bool) -> anyhow::Result<i32> {
    // Every --put file is checked (a regular file, bounded) before any image work: a
    // mistake here is the user's (exit 2).
    let files = match args
        .put
        .iter()
        .map(|p| put_file(p))
        .collect::<Result<Vec<_>, String>>()
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::exit::USAGE);
        }
    };
    let (img, accel, goldens) = prepare(&args.image, debug)?;
    let golden = goldens.first().context("no file system to mount (--fs)")?;
    let run_dir = tempfile::Builder::new()
        .prefix("powercut-exec-")
        .tempdir()
        .context("creating a scratch directory")?;
    let pmem = run_dir.path().join(format!("{}.pmem", golden.fs));
    golden.copy_to(&pmem)?;
    let mut spec = VmSpec::new("exec", &img, &pmem, accel.accel, run_dir.path());
    spec.debug = debug;
    let mut vm = Vm::boot(&spec).context("booting the VM")?;
    let line = mount_dax(&mut vm, golden.fs, "/mnt", "")
        .with_context(|| format!("mounting {} with -o dax", golden.fs))?;
    eprintln!(
        "vm exec: kernel {}, {line}, accelerator {}",
        img.kernel_version, accel.accel
    );
    for (name, bytes) in &files {
        vm.ssh()
            .upload(bytes, &format!("/root/{name}"))
            .with_context(|| format!("copying {name} into the guest"))?;
    }
    vm.ssh()
        .set_timeout(std::time::Duration::from_secs(args.timeout_secs));
    let command = format!("cd /root && {}", args.command.join(" "));
    let out = vm.ssh().exec(&command);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            vm.check_alive("while running the command")?;
            return Err(e).context("running the command");
        }
    };
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    vm.shutdown().context("shutting down")?;
    Ok(out.status)
}
