//! `powercut image build`: assembles a content-addressed guest image (kernel + initramfs +
//! SSH key) in the cache, rebuilt only when one of its inputs changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::initramfs::{InitramfsTree, GUEST_PROGRAMS};
use super::kernel::config::missing_options;
use super::kernel::needs::{parse_builtin, plan_modules};
use super::kernel::{self, GuestKernel, KernelConfig, KernelSpec, Wants};
use super::modules::{module_name, ModuleDeps};
use super::user_modules::{self, BuiltModule, ModuleRecord, ModuleSpec};
use super::{agent, ImageError};

/// The init script, kept as a real file under `images/`.
const INIT_SCRIPT: &str = include_str!("../../../images/init.sh");
/// Bumped when the layout of the image changes in a way its inputs do not show.
const IMAGE_FORMAT: u32 = 1;

/// What to build the image from.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Cache root (see [`crate::cache_dir::cache_root`]).
    pub cache: PathBuf,
    /// The kernel (`--kernel`); the default is the newest package in `<cache>/kernel/`.
    pub kernel: KernelSpec,
    /// What the kernel will be used for: which config options it must have.
    pub wants: Wants,
    /// The user's own modules (`--module`), shipped in the image and loaded in workload VMs.
    pub modules: Vec<ModuleSpec>,
}

impl ImageOptions {
    /// The default kernel, for ext4 on the stock kernel.
    pub fn new(cache: &Path) -> Self {
        ImageOptions {
            cache: cache.to_owned(),
            kernel: KernelSpec::default(),
            wants: Wants::default(),
            modules: Vec::new(),
        }
    }
}

/// A built guest image in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestImage {
    /// Content hash of the inputs (the directory name).
    pub hash: String,
    /// Image directory.
    pub dir: PathBuf,
    /// Guest kernel release.
    pub kernel_version: String,
    /// Kernel image to boot.
    pub bzimage: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// Private SSH key accepted by the guest's dropbear (as root).
    pub ssh_key: PathBuf,
    /// Size of the initramfs in bytes.
    pub initramfs_bytes: u64,
    /// Does the image carry the mutant module (`/lib/modules/powercut_mutant.ko`)?
    pub has_mutant_module: bool,
    /// The user's own modules in the image (`/lib/modules/user/<name>.ko`), in load order.
    #[serde(default)]
    pub user_modules: Vec<ModuleRecord>,
    /// Where the kernel came from (`build tree /src/linux`, `cached: debian sid …`).
    #[serde(default)]
    pub kernel_source: String,
    /// Was the kernel's config checked when the image was built? If not (a bzImage
    /// without one), the first boot checks `/proc/config.gz`.
    #[serde(default = "checked_by_default")]
    pub kernel_config_checked: bool,
}

impl From<&GuestImage> for crate::vm::GuestBoot {
    fn from(image: &GuestImage) -> Self {
        crate::vm::GuestBoot {
            id: image.hash.clone(),
            bzimage: image.bzimage.clone(),
            initramfs: image.initramfs.clone(),
            ssh_key: image.ssh_key.clone(),
        }
    }
}

/// Images from before the field existed were built from Debian packages (with a config).
fn checked_by_default() -> bool {
    true
}

impl GuestImage {
    fn manifest_path(dir: &Path) -> PathBuf {
        dir.join("image.json")
    }

    /// Load a finished image from its directory.
    pub fn load(dir: &Path) -> Option<GuestImage> {
        let text = std::fs::read_to_string(Self::manifest_path(dir)).ok()?;
        let img: GuestImage = serde_json::from_str(&text).ok()?;
        (img.initramfs.exists() && img.bzimage.exists() && img.ssh_key.exists()).then_some(img)
    }
}

/// Longest wait for another process's image build (a build tree's `make modules_install`
/// alone may take 30 minutes).
const BUILD_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// Build (or find in the cache) the guest image for `opts`. Returns the image and whether it
/// was freshly built.
pub fn build_image(opts: &ImageOptions) -> Result<(GuestImage, bool), ImageError> {
    // One build at a time per cache: parallel campaigns, triage commands and tests share
    // the unpacked kernels, module installs, mutant builds and image directories.
    let _lock = crate::cache_dir::CacheLock::acquire(
        &opts.cache,
        "image-build",
        BUILD_LOCK_TIMEOUT,
        |p| {
            tracing::info!(
                "waiting for another powercut building a guest image ({})",
                p.display()
            )
        },
    )?;
    // We hold the build lock: every image staging directory left in the cache is one of a
    // build that died.
    crate::cache_dir::stale::sweep_dead_owners(&opts.cache.join("tmp"), "initramfs-");
    remove_stale_image_staging(&opts.cache.join("images"));
    let kernel = kernel::resolve(&opts.kernel, &opts.cache)?;
    let config = kernel.read_config()?;
    if let Some(cfg) = &config {
        check_kernel_config(cfg, &opts.wants, &kernel.version, kernel.config.as_deref())?;
    }
    let workspace = crate::cache_dir::workspace_root();
    let agent_bin = agent::build_agent(&workspace)?;
    let kprobes = config.as_ref().is_none_or(|c| c.enabled("CONFIG_KPROBES"));
    let mutant = if kprobes {
        super::mutant::build_mutant(&kernel, &workspace, &opts.cache)?
    } else {
        tracing::warn!(
            "kernel {} has no CONFIG_KPROBES: no mutant module",
            kernel.version
        );
        None
    };
    let user = user_modules::prepare_modules(&opts.modules, &kernel, &opts.cache)?;

    let staging_parent = opts.cache.join("tmp");
    std::fs::create_dir_all(&staging_parent).map_err(|e| ImageError::io(&staging_parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(&crate::cache_dir::stale::owned_prefix("initramfs-"))
        .tempdir_in(&staging_parent)
        .map_err(|e| ImageError::io(&staging_parent, e))?;
    let mut tree = InitramfsTree::new(staging.path())?;
    stage(
        &mut tree,
        &kernel,
        config.as_ref(),
        &agent_bin,
        mutant.as_deref(),
    )?;
    stage_user_modules(&tree, &user)?;

    let hash = hash_tree(staging.path(), &kernel)?;
    let dir = opts.cache.join("images").join(&hash);
    if let Some(img) = GuestImage::load(&dir) {
        return Ok((img, false));
    }
    let tmp_dir = opts.cache.join("images").join(format!(".{hash}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp_dir);
    std::fs::create_dir_all(&tmp_dir).map_err(|e| ImageError::io(&tmp_dir, e))?;

    let filled = fill_image_dir(&tmp_dir, &mut tree, &kernel);
    if let Err(e) = filled {
        // A failed build leaves nothing behind.
        let _ = std::fs::remove_dir_all(&tmp_dir);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp_dir, &dir).map_err(|e| ImageError::io(&dir, e))?;
    let initramfs = dir.join("initramfs.cpio");
    let initramfs_bytes = std::fs::metadata(&initramfs)
        .map_err(|e| ImageError::io(&initramfs, e))?
        .len();
    let img = GuestImage {
        hash,
        bzimage: dir.join("bzImage"),
        initramfs,
        ssh_key: dir.join("id_ed25519"),
        kernel_version: kernel.version.clone(),
        initramfs_bytes,
        has_mutant_module: mutant.is_some(),
        user_modules: user.iter().map(BuiltModule::record).collect(),
        dir: dir.clone(),
        kernel_source: format!("{} {}", kernel.origin, kernel.source.display()),
        kernel_config_checked: config.is_some(),
    };
    let manifest = GuestImage::manifest_path(&dir);
    let json = serde_json::to_string_pretty(&img).map_err(|e| ImageError::Tool {
        tool: "serde_json".into(),
        detail: e.to_string(),
    })?;
    std::fs::write(&manifest, json).map_err(|e| ImageError::io(&manifest, e))?;
    Ok((img, true))
}

/// Refuse a kernel whose config lacks an option `wants` needs, naming every one and why.
pub fn check_kernel_config(
    config: &KernelConfig,
    wants: &Wants,
    kernel: &str,
    from: Option<&Path>,
) -> Result<(), ImageError> {
    let missing = missing_options(config, wants);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ImageError::KernelConfig {
        kernel: kernel.to_owned(),
        config: from.map_or_else(|| PathBuf::from("/proc/config.gz"), Path::to_owned),
        missing: missing.iter().map(ToString::to_string).collect(),
    })
}

fn stage(
    tree: &mut InitramfsTree,
    kernel: &GuestKernel,
    config: Option<&KernelConfig>,
    agent_bin: &Path,
    extra_module: Option<&Path>,
) -> Result<(), ImageError> {
    tree.write("init", INIT_SCRIPT.as_bytes(), 0o755)?;
    for (src, dest) in GUEST_PROGRAMS {
        tree.add_program(Path::new(src), dest)?;
    }
    tree.copy(agent_bin, "bin/powercut-agent", 0o755)?;
    tree.write("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    tree.write("etc/group", b"root:x:0:\n", 0o644)?;
    tree.write("etc/shells", b"/bin/sh\n", 0o644)?;
    let mke2fs_conf = Path::new("/etc/mke2fs.conf");
    if mke2fs_conf.exists() {
        tree.copy(mke2fs_conf, "etc/mke2fs.conf", 0o644)?;
    }

    let dep_path = kernel.modules_dir.join("modules.dep");
    let dep_text = std::fs::read_to_string(&dep_path).map_err(|e| ImageError::io(&dep_path, e))?;
    let deps = ModuleDeps::parse(&dep_text);
    let builtin = std::fs::read_to_string(kernel.modules_dir.join("modules.builtin"))
        .map(|t| parse_builtin(&t))
        .unwrap_or_default();
    let plan =
        plan_modules(config, &deps, &builtin).map_err(|missing| ImageError::ModulesMissing {
            version: kernel.version.clone(),
            missing: missing
                .into_iter()
                .map(|m| format!("{}: {}", m.name, m.why))
                .collect(),
        })?;
    tracing::debug!(built_in = ?plan.built_in, skipped = ?plan.skipped, "guest modules");
    let order = plan.load;
    let mut list = String::new();
    for rel in &order {
        // A path from modules.dep is data: it names a file inside the module tree only.
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return Err(ImageError::KernelInput {
                path: dep_path.clone(),
                why: format!(
                    "lists `{}`, a path outside the module tree",
                    rel.escape_debug()
                ),
            });
        }
        let name = format!("{}.ko", module_name(rel));
        let dest = format!("lib/modules/{name}");
        decompress_module(&kernel.modules_dir.join(rel), tree, &dest)?;
        list.push_str(&name);
        list.push('\n');
    }
    tree.write("etc/powercut/modules", list.as_bytes(), 0o644)?;
    if let Some(m) = extra_module {
        tree.copy(m, "lib/modules/powercut_mutant.ko", 0o644)?;
    }
    Ok(())
}

/// Write an image's files into its staging directory: a fresh SSH key (authorized in the
/// guest), the packed initramfs and a copy of the (checked) bzImage.
fn fill_image_dir(
    tmp_dir: &Path,
    tree: &mut InitramfsTree,
    kernel: &GuestKernel,
) -> Result<(), ImageError> {
    let key = tmp_dir.join("id_ed25519");
    kernel::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "powercut", "-f"])
            .arg(&key),
        "ssh-keygen (install openssh-client with ci/setup)",
    )?;
    let pubkey = tmp_dir.join("id_ed25519.pub");
    let pub_text = std::fs::read(&pubkey).map_err(|e| ImageError::io(&pubkey, e))?;
    tree.write("root/.ssh/authorized_keys", &pub_text, 0o600)?;
    tree.pack(&tmp_dir.join("initramfs.cpio"))?;
    let bz = tmp_dir.join("bzImage");
    std::fs::copy(&kernel.bzimage, &bz).map_err(|e| ImageError::io(&kernel.bzimage, e))?;
    Ok(())
}

/// Remove `images/.<hash>.tmp` directories: written only under the build lock, so with the
/// lock held each is a build that died.
fn remove_stale_image_staging(images: &Path) {
    let Ok(entries) = std::fs::read_dir(images) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let stale = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"));
        if stale && e.file_type().is_ok_and(|t| t.is_dir()) {
            tracing::info!("removing {} (a build that died)", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The user's modules under [`user_modules::GUEST_DIR`], and a list of them with their
/// arguments (so the image hash covers the arguments too).
fn stage_user_modules(tree: &InitramfsTree, user: &[BuiltModule]) -> Result<(), ImageError> {
    let mut list = String::new();
    for m in user {
        // The name came out of the .ko: it names a file only as a checked module name.
        if !user_modules::is_module_name(&m.name) {
            return Err(ImageError::ModuleUnfit {
                path: m.ko.clone(),
                why: format!("`{}` is not a module name", m.name.escape_debug()),
            });
        }
        tree.copy(&m.ko, &user_modules::guest_file(&m.name), 0o644)?;
        list.push_str(&format!("{} {} {}\n", m.name, m.sha256, m.args.join(" ")));
    }
    if !user.is_empty() {
        tree.write("etc/powercut/user-modules", list.as_bytes(), 0o644)?;
    }
    Ok(())
}

fn decompress_module(src: &Path, tree: &InitramfsTree, dest: &str) -> Result<(), ImageError> {
    let name = src.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    let Some(tool) = tool else {
        return tree.copy(src, dest, 0o644);
    };
    let mut cmd = Command::new(tool);
    cmd.args(["-dc"]).arg(src);
    crate::host::process::die_with_parent(&mut cmd);
    let out = cmd.output().map_err(|e| ImageError::Tool {
        tool: format!("{tool} (install it with ci/setup)"),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            tool: format!("{tool} -dc {name}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    tree.write(dest, &out.stdout, 0o644)
}

/// Hash of every staged file (path and bytes) plus the kernel identity.
fn hash_tree(root: &Path, kernel: &GuestKernel) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    h.update(format!(
        "powercut-image-{IMAGE_FORMAT}\n{}\n",
        kernel.version
    ));
    let bz = std::fs::read(&kernel.bzimage).map_err(|e| ImageError::io(&kernel.bzimage, e))?;
    h.update(Sha256::digest(&bz));
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    for rel in files {
        let p = root.join(&rel);
        let bytes = std::fs::read(&p).map_err(|e| ImageError::io(&p, e))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0u8]);
        h.update(Sha256::digest(&bytes));
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    for e in std::fs::read_dir(dir).map_err(|e| ImageError::io(dir, e))? {
        let e = e.map_err(|e| ImageError::io(dir, e))?;
        let p = e.path();
        if p.is_dir() {
            collect_files(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_owned());
        }
    }
    Ok(())
}
