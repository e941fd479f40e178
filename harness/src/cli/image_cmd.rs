//! `powercut image build`.

use anyhow::Context;

use super::ImageArgs;
use crate::cache_dir::cache_root;
use crate::image::{self, golden_image, GuestImage, ImageOptions, Wants};
use crate::vm::accel::AccelDecision;
use crate::vm::resolve_accel;

/// Build (or find) the guest image, resolve the accelerator, and build the golden pmem
/// images. Returns them for the caller's use.
pub fn prepare(
    args: &ImageArgs,
    debug: bool,
) -> anyhow::Result<(GuestImage, AccelDecision, Vec<image::GoldenImage>)> {
    let cache = cache_root();
    let opts = ImageOptions {
        cache: cache.clone(),
        kernel: args.kernel.spec()?.unwrap_or_default(),
        wants: Wants {
            filesystems: args.filesystems.clone(),
            mutants: false,
        },
        modules: Vec::new(),
    };
    let (img, fresh) = image::build_image(&opts).context("building the guest image")?;
    eprintln!(
        "image {} ({}): kernel {} ({}), initramfs {:.1} MiB, mutant module {}, {}",
        img.hash,
        img.dir.display(),
        img.kernel_version,
        img.kernel_source,
        img.initramfs_bytes as f64 / (1 << 20) as f64,
        if img.has_mutant_module {
            "yes"
        } else {
            "no (no usable linux-headers or Module.symvers for this kernel)"
        },
        if fresh { "built" } else { "cached" }
    );
    let accel = resolve_accel(args.accel, &img, &cache).context("choosing the accelerator")?;
    eprintln!("accelerator: {} ({})", accel.accel, accel.reason);
    use crate::config::limits::{MAX_PMEM_MIB, MIN_PMEM_MIB};
    if !(MIN_PMEM_MIB..=MAX_PMEM_MIB).contains(&args.pmem_mib) || !args.pmem_mib.is_multiple_of(2) {
        anyhow::bail!(
            "--pmem-mib {} must be an even number from {MIN_PMEM_MIB} to {MAX_PMEM_MIB}",
            args.pmem_mib
        );
    }
    let mut goldens = Vec::new();
    for fs in &args.filesystems {
        let g = golden_image(&img, *fs, args.pmem_mib << 20, accel.accel, &cache, debug)
            .with_context(|| format!("building the golden {fs} pmem image"))?;
        eprintln!("golden {fs} pmem image: {}", g.path.display());
        goldens.push(g);
    }
    Ok((img, accel, goldens))
}

/// `powercut image build`.
pub fn image_build(args: &ImageArgs, debug: bool) -> anyhow::Result<()> {
    prepare(args, debug).map(drop)
}
