//! What coverage needs before a campaign's first run: the plugin (built like the cache
//! model's), the kernel's files the code map is built from (bzImage, modules, and the
//! kernel's sources: the user's source tree, else the files `ci/kernel-source` unpacked),
//! the functions of a patch (`--coverage-diff`), and where the map is cached. Coverage is
//! off under KVM (no plugin runs there) and with `coverage: false`; a problem preparing it
//! is said and the campaign runs without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::PrepareError;
use crate::config::CampaignConfig;
use crate::coverage::diff::PatchFunctions;
use crate::coverage::kernel_code::KernelFiles;
use crate::image::kernel::spec::KernelSource;
use crate::image::{GuestImage, KernelSpec};
use crate::trial::coverage_run::CoverageSetup;
use crate::vm::Accel;

/// The kernel's source tree: the config's `source_tree`, else the `--kernel` build tree.
pub fn source_tree(spec: &KernelSpec, cfg: &CampaignConfig) -> Option<PathBuf> {
    if let Some(t) = &cfg.source_tree {
        return Some(t.clone());
    }
    match &spec.source {
        KernelSource::Path(p) if p.join("Makefile").is_file() => Some(p.clone()),
        _ => None,
    }
}

/// The functions of the config's `coverage_diff` patch, or `None` without one; an error
/// (bad input) when there is no git tree or git cannot diff it.
pub fn patch(
    spec: &KernelSpec,
    cfg: &CampaignConfig,
) -> Result<Option<PatchFunctions>, PrepareError> {
    let Some(rev) = &cfg.coverage_diff else {
        return Ok(None);
    };
    let tree = source_tree(spec, cfg).ok_or_else(|| {
        PrepareError::Usage(format!(
            "--coverage-diff {rev} needs the kernel's git tree: --kernel TREE (a build tree) or              --source-tree DIR"
        ))
    })?;
    let p = crate::coverage::git_diff::patch_functions(&tree, rev)
        .map_err(|e| PrepareError::Usage(e.to_string()))?;
    eprintln!(
        "coverage diff: {} against {rev} ({}): {} changed function(s) in {} file(s)",
        p.tree,
        p.commit,
        p.functions.len(),
        p.functions
            .iter()
            .map(|f| &f.file)
            .collect::<BTreeSet<_>>()
            .len()
    );
    Ok(Some(p))
}

/// The coverage of the kernel `spec` (built into `image`), or `None` (said on stderr).
/// `tree`: the kernel's source tree ([`source_tree`]); `patch`: `--coverage-diff`'s
/// functions, mapped even outside the reported subsystems.
pub fn coverage_setup(
    image: &GuestImage,
    spec: &KernelSpec,
    cache: &Path,
    accel: Accel,
    tree: Option<&Path>,
    patch: Option<PatchFunctions>,
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
    let unpacked = cache.join("source").join(&kernel.version);
    let tree = tree.filter(|t| t.join("fs/dax.c").is_file());
    let (sources, mut tag) = match tree {
        Some(t) => (
            Some(t.to_owned()),
            format!("tree{}", short_hash(&t.display().to_string())),
        ),
        None if unpacked.join(".complete").exists() => (Some(unpacked), "src".to_owned()),
        None => (None, "nosrc".to_owned()),
    };
    let has_sources = sources.is_some();
    let files = KernelFiles {
        release: image.kernel_version.clone(),
        bzimage: kernel.bzimage.clone(),
        modules_dir: kernel.modules_dir.clone(),
        sources,
    };
    let names: BTreeSet<String> = patch
        .iter()
        .flat_map(|p| p.functions.iter().map(|f| f.name.clone()))
        .collect();
    if !names.is_empty() {
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        tag.push_str(&format!("-patch{}", short_hash(&list.join("\n"))));
    }
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
    let mut setup = CoverageSetup::new(plugin, files, cached_map);
    setup.patch = patch.map(std::sync::Arc::new);
    Some(setup)
}

/// 16 hex digits of the SHA-256 of `text` (a cached map's name part).
fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}
