//! `powercut bench checker`: crash images checked per minute by one checker VM, and the
//! time to take one snapshot of the pmem file. Figures are printed, never asserted.

use std::time::Instant;

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::oracle::{expectation, CrashPoint, FsRules};

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::checker::Checker;
use crate::host::blocks::sparse_copy;

/// Run the checker benchmark with `rounds` checks.
pub fn bench_checker(args: &ImageArgs, rounds: usize, debug: bool) -> anyhow::Result<()> {
    let (img, accel, goldens) = prepare(args, debug)?;
    let golden = goldens
        .into_iter()
        .next()
        .context("no file system selected")?;
    let dir = tempfile::Builder::new()
        .prefix("powercut-bench-")
        .tempdir()?;

    let snap = dir.path().join("snap.img");
    let t = Instant::now();
    let bytes = sparse_copy(&golden.path, &snap)?;
    let snap_secs = t.elapsed().as_secs_f64();

    // Two different images so that every check writes blocks into the checker's pmem.
    let other = dir.path().join("other.img");
    sparse_copy(&golden.path, &other)?;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&other)?;
        f.seek(SeekFrom::Start(golden.bytes - (1 << 20)))?;
        f.write_all(&[0x5a; 1 << 20])?;
    }
    let workload = generate(1, Profile::Smoke);
    let exp = expectation(
        &workload,
        &[],
        CrashPoint::AfterOp(0),
        &FsRules::for_fs(golden.fs.name()),
    );
    let boot = Instant::now();
    let mut checker = Checker::start(
        &img,
        &golden,
        accel.accel,
        dir.path(),
        "bench-checker",
        debug,
        crate::vm::COMMUNICATION_TIMEOUT,
    )?;
    let boot_secs = boot.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut written = 0;
    for i in 0..rounds {
        let image = if i % 2 == 0 { &snap } else { &other };
        written += checker.check(image, &exp)?.bytes_written;
    }
    let secs = t.elapsed().as_secs_f64();
    checker.stop();
    println!("accelerator                 {}", accel.accel);
    println!(
        "snapshot copy of {} MiB     {:.3} s ({} MiB non-zero)",
        golden.bytes >> 20,
        snap_secs,
        bytes >> 20
    );
    println!("checker boot                {boot_secs:.1} s");
    println!("checks                      {rounds} in {secs:.1} s");
    println!(
        "seconds per check           {:.2} (Vinter: 1.1)",
        secs / rounds as f64
    );
    println!(
        "checks per minute           {:.1}",
        rounds as f64 * 60.0 / secs
    );
    println!(
        "bytes written per check     {:.1} MiB",
        written as f64 / rounds as f64 / (1 << 20) as f64
    );
    Ok(())
}
