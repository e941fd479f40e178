//! `powercut bench checker`: crash images checked per minute by one checker VM, where a
//! check's time goes phase by phase, the cost of a crash image's content digest (allocated
//! extents against every byte), and the time to take one snapshot of the pmem file. The
//! checks alternate between two different images, every one checked in full (no dedupe:
//! each is a distinct crash state for the checker's pmem); a second round with dedupe on
//! shows what a repeated image costs; a second checker VM restored from the booted state
//! shows what starting one costs the campaign's way. Figures are printed, never asserted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use workloads::generator::{generate, Profile};
use workloads::oracle::{expectation, CrashPoint, Expectation, FsRules};

use super::image_cmd::prepare;
use super::ImageArgs;
use crate::checker::dedupe::SeenImages;
use crate::checker::{Checker, CheckerSpec};
use crate::host::blocks::sparse_copy;
use crate::host::digest::{image_digest, Scan};
use crate::prepare::vm_start;
use crate::records::{CrashLabel, PhaseTotals, StateRef, TrialItem};

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

    let other = other_image(&golden, dir.path())?;
    let extents_secs = digest_secs(&snap, Scan::Extents)?;
    let whole_secs = digest_secs(&snap, Scan::Whole)?;
    let (exp, origin) = expectation_of(&golden);
    let checker_spec = CheckerSpec {
        image: &img,
        golden: &golden,
        accel: accel.accel,
        dir: dir.path(),
        name: "bench-checker",
        debug,
        check_timeout: crate::vm::COMMUNICATION_TIMEOUT,
        state: None,
    };
    let boot = Instant::now();
    let mut checker = Checker::start(&checker_spec)?;
    let boot_secs = boot.elapsed().as_secs_f64();
    let trip = median_round_trip(&mut checker)?;
    let images = [snap.as_path(), other.as_path()];
    let (secs, full, written) = check_rounds(&mut checker, &images, &exp, &origin, rounds)?;
    checker.set_dedupe(Some(SeenImages::shared()));
    let (dedupe_secs, deduped, _) = check_rounds(&mut checker, &images, &exp, &origin, rounds)?;
    checker.stop();
    let restored_line = restored_checker(&checker_spec, &images, &exp, &origin)?;
    println!("accelerator                 {}", accel.accel);
    println!(
        "snapshot copy of {} MiB     {:.3} s ({} MiB non-zero)",
        golden.bytes >> 20,
        snap_secs,
        bytes >> 20
    );
    println!(
        "image digest                {extents_secs:.3} s over the allocated extents, {whole_secs:.3} s over every byte (same digest)"
    );
    println!("checker boot                {boot_secs:.1} s");
    println!("checker restore             {restored_line}");
    println!("SSH command round trip      {trip:.3} s median of 5 (`true`)");
    println!("checks                      {rounds} in {secs:.1} s, every one in full");
    println!(
        "seconds per check           {:.3} (Vinter: 1.1)",
        secs / rounds.max(1) as f64
    );
    println!(
        "checks per minute           {:.1}",
        rounds as f64 * 60.0 / secs
    );
    println!(
        "bytes written per check     {:.1} MiB",
        written as f64 / rounds.max(1) as f64 / (1 << 20) as f64
    );
    let per = |ms: f64| ms / 1000.0 / rounds.max(1) as f64;
    let rows: Vec<String> = full
        .check_rows()
        .iter()
        .map(|(n, ms)| format!("{n} {:.3}", per(*ms)))
        .collect();
    println!("per check, s                {}", rows.join(", "));
    print_dedupe(rounds, secs, dedupe_secs, &deduped);
    Ok(())
}

/// Start a second checker VM like `cold`, restored from the booted state as campaigns start
/// them, and check two images in it: the line to print.
fn restored_checker(
    cold: &CheckerSpec<'_>,
    images: &[&Path; 2],
    exp: &Expectation,
    origin: &StateRef,
) -> anyhow::Result<String> {
    let start = vm_start(
        false,
        cold.image,
        cold.golden,
        cold.accel,
        "snapshot",
        cold.debug,
    );
    let dir = cold.dir.join("restored");
    let t = Instant::now();
    let mut restored = Checker::start(&CheckerSpec {
        name: "bench-checker-restored",
        dir: &dir,
        state: start.state(),
        ..*cold
    })?;
    let secs = t.elapsed().as_secs_f64();
    let how = if restored.restored() {
        "restored from the booted state".to_owned()
    } else {
        format!(
            "cold-booted: {}",
            start.fallback().unwrap_or("no booted state")
        )
    };
    let (checks_secs, _, _) = check_rounds(&mut restored, images, exp, origin, 2)?;
    restored.stop();
    Ok(format!(
        "{secs:.1} s ({how}; 2 checks in {checks_secs:.2} s)"
    ))
}

/// The median of five SSH round trips to `checker`, s.
fn median_round_trip(checker: &mut Checker) -> anyhow::Result<f64> {
    let mut trips = Vec::new();
    for _ in 0..5 {
        trips.push(checker.round_trip()?.as_secs_f64());
    }
    trips.sort_by(f64::total_cmp);
    Ok(trips[trips.len() / 2])
}

/// The expectation the checks are judged by (smoke seed 1 after op 0) and its state.
fn expectation_of(golden: &crate::image::GoldenImage) -> (Expectation, StateRef) {
    let workload = generate(1, Profile::Smoke);
    let exp = expectation(
        &workload,
        &[],
        CrashPoint::AfterOp(0),
        &FsRules::for_fs(golden.fs.name()),
    );
    let origin = StateRef {
        item: TrialItem::Seed(1),
        at: CrashLabel::of(&exp),
        model: "snapshot".into(),
    };
    (exp, origin)
}

/// `rounds` checks alternating between `images`: seconds, phases, bytes written.
fn check_rounds(
    checker: &mut Checker,
    images: &[&Path; 2],
    exp: &Expectation,
    origin: &StateRef,
    rounds: usize,
) -> anyhow::Result<(f64, PhaseTotals, u64)> {
    let mut phases = PhaseTotals::default();
    let mut written = 0;
    let t = Instant::now();
    for i in 0..rounds {
        let out = checker.check(images[i % 2], exp, origin)?;
        written += out.bytes_written;
        phases.add_check(&out.phases, out.same_as.is_some());
    }
    Ok((t.elapsed().as_secs_f64(), phases, written))
}

/// A second image, different from the golden one in its last MiB, so that every check
/// writes blocks into the checker's pmem.
fn other_image(golden: &crate::image::GoldenImage, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::{Seek, SeekFrom, Write};
    let other = dir.join("other.img");
    sparse_copy(&golden.path, &other)?;
    let mut f = std::fs::OpenOptions::new().write(true).open(&other)?;
    f.seek(SeekFrom::Start(golden.bytes - (1 << 20)))?;
    f.write_all(&[0x5a; 1 << 20])?;
    Ok(other)
}

/// The dedupe round's line: `rounds` checks in `dedupe_secs`, the full ones took `secs`.
fn print_dedupe(rounds: usize, secs: f64, dedupe_secs: f64, deduped: &PhaseTotals) {
    let per = |ms: f64| ms / 1000.0 / rounds.max(1) as f64;
    let first_two = 2.0 * secs / rounds.max(1) as f64;
    println!(
        "with dedupe                 {rounds} checks of 2 distinct images in {dedupe_secs:.1} s, {} reused: about {:.3} s per repeated image (hash {:.3} s per check)",
        deduped.reused,
        (dedupe_secs - first_two).max(0.0) / deduped.reused.max(1) as f64,
        per(deduped.check_ms.hash),
    );
}

/// Seconds to digest `path` with `scan` (the second of two runs: the page cache is warm,
/// as it is for a crash image just written).
fn digest_secs(path: &Path, scan: Scan) -> anyhow::Result<f64> {
    image_digest(path, scan)?;
    let t = Instant::now();
    image_digest(path, scan)?;
    Ok(t.elapsed().as_secs_f64())
}
