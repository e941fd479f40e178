//! What coverage needs before a campaign's first run: the plugin (built like the cache
//! model's), the kernel's files the code map is built from (bzImage, modules, and the source
//! files `ci/kernel-source` unpacked, if any), and where the map is cached. Coverage is off
//! under KVM (no plugin runs there) and with `coverage: false`; a problem preparing it is
//! said and the campaign runs without it.

use std::path::Path;

use crate::coverage::kernel_code::KernelFiles;
use crate::image::{GuestImage, KernelSpec};
use crate::trial::coverage_run::CoverageSetup;
use crate::vm::Accel;

/// The coverage of the kernel `spec` (built into `image`), or `None` (said on stderr).
pub fn coverage_setup(
    image: &GuestImage,
    spec: &KernelSpec,
    cache: &Path,
    accel: Accel,
) -> Option<CoverageSetup> {
    if accel != Accel::Tcg {
        eprintln!("coverage: off (the TCG plugin does not run under {accel:?})");
        return None;
    }
    let plugin = match crate::trial::cache_env::build_plugin(&crate::cache_dir::workspace_root()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("coverage: off ({e})");
            return None;
        }
    };
    let kernel = match crate::image::kernel::resolve(spec, cache) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("coverage: off (the kernel's files: {e})");
            return None;
        }
    };
    let sources = cache.join("source").join(&kernel.version);
    let has_sources = sources.join(".complete").exists();
    let files = KernelFiles {
        release: image.kernel_version.clone(),
        bzimage: kernel.bzimage.clone(),
        modules_dir: kernel.modules_dir.clone(),
        sources: has_sources.then_some(sources),
    };
    let tag = if has_sources { "src" } else { "nosrc" };
    let cached_map = cache.join("coverage").join(format!(
        "{}-{}-{tag}-v{}.json",
        kernel.version,
        kernel.id,
        crate::coverage::map::MAP_VERSION
    ));
    eprintln!(
        "coverage: on ({}; map {})",
        if has_sources {
            "grouped by the kernel's sources"
        } else {
            "no kernel sources: grouped by module and name; ci/kernel-source RELEASE fetches them"
        },
        cached_map.display()
    );
    Some(CoverageSetup::new(plugin, files, cached_map))
}
