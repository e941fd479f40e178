//! The guest kernel: one [`KernelSpec`] (what the user asked for) resolved into one
//! [`GuestKernel`] (a bzImage, its module tree, its config, a kbuild directory) by
//! [`resolve`], which every command uses. The shapes a kernel comes in live in `layout`,
//! the kernels `ci/setup` cached in `cached`, the config requirements in `config`, the
//! modules a guest loads in `needs`, `powercut kernel kconfig` in `kconfig`, and the
//! checked unpacking of a `.deb` (a package is data: nothing in it leads out) in `unpack`.

pub mod cached;
pub mod config;
mod debversion;
pub mod kconfig;
pub mod layout;
pub mod needs;
pub mod spec;
pub mod unpack;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::ImageError;
pub use config::{KernelConfig, Wants};
use layout::Layout;
pub use spec::{KernelSource, KernelSpec, KernelSpecError};

/// Largest kernel config read, in bytes (a full config is about 300 KiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// A guest kernel ready to be put in an image.
#[derive(Debug, Clone)]
pub struct GuestKernel {
    /// Release string (`6.12.95+deb12-amd64`).
    pub version: String,
    /// The bzImage.
    pub bzimage: PathBuf,
    /// `lib/modules/<version>` of this kernel (with `modules.dep`; may hold no modules).
    pub modules_dir: PathBuf,
    /// The kernel's build configuration, if it came with one.
    pub config: Option<PathBuf>,
    /// A kbuild directory to build modules (the mutant) against: Debian's headers or the
    /// build tree itself.
    pub kbuild_dir: Option<PathBuf>,
    /// Where it came from (the package, tree or bzImage), for messages.
    pub source: PathBuf,
    /// What kind of input it was (`Debian package`, `build tree`, …).
    pub origin: String,
    /// Content hash of the bzImage (hex, 16 digits): tells two builds of one release apart.
    pub id: String,
}

impl GuestKernel {
    /// Read and parse the kernel config, if there is one. A file that holds no option is
    /// an error (it is not a kernel config).
    pub fn read_config(&self) -> Result<Option<KernelConfig>, ImageError> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let text =
            crate::input::read_to_string(path, MAX_CONFIG_BYTES, "kernel config").map_err(|e| {
                ImageError::KernelInput {
                    path: path.clone(),
                    why: e.to_string(),
                }
            })?;
        let config = KernelConfig::parse(&text);
        if config.is_empty() {
            return Err(ImageError::KernelInput {
                path: path.clone(),
                why: "holds no CONFIG_ option: not a kernel config".into(),
            });
        }
        Ok(Some(config))
    }
}

/// The cached kernel with `release` (`ci/setup --kernels`, or the default package).
fn from_cache(cache: &Path, release: &str, unpacked: &Path) -> Result<GuestKernel, ImageError> {
    let Some(k) = cached::find(cache, release)? else {
        let have: Vec<String> = cached::list(cache)?
            .into_iter()
            .map(|k| k.release)
            .collect();
        return Err(ImageError::KernelInput {
            path: PathBuf::from(release),
            why: format!(
                "no cached kernel has this release (cached: {}); fetch one with \
                 `ci/setup --kernels SUITE`, or give a path (./{release} for a \
                 relative one)",
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            ),
        });
    };
    let origin = format!("cached: {}", k.source);
    let mut kernel = from_debs(&k.debs, unpacked, k.headers_dir(), &origin)?;
    kernel.source = k.location.clone();
    if kernel.version != *release {
        return Err(ImageError::KernelInput {
            path: k.location,
            why: format!("holds kernel {}, not {release}", kernel.version),
        });
    }
    Ok(kernel)
}

/// Resolve `spec` to a kernel: find it (the cache for the default and for releases), unpack
/// packages, install a build tree's modules, and check that the parts belong together.
pub fn resolve(spec: &KernelSpec, cache: &Path) -> Result<GuestKernel, ImageError> {
    let unpacked = cache.join("kernels");
    std::fs::create_dir_all(&unpacked).map_err(|e| ImageError::io(&unpacked, e))?;
    // Staging directories of unpacks and installs whose process died (their lock is free).
    crate::cache_dir::stale::sweep_unlocked(&unpacked, &unpacked);
    match &spec.source {
        KernelSource::Default => {
            let deb = find_kernel_deb(&cache.join("kernel"))?;
            from_debs(&[deb], &unpacked, None, "Debian package (default)")
        }
        KernelSource::Release(release) => from_cache(cache, release, &unpacked),
        KernelSource::Suite(suite) => {
            let Some(release) = cached::newest_of_suite(cache, suite)? else {
                return Err(ImageError::KernelInput {
                    path: PathBuf::from(format!("suite:{suite}")),
                    why: format!(
                        "no kernel of Debian suite `{suite}` is cached; fetch it with \
                         `ci/setup --kernels {suite}` (`powercut kernel list` shows what is \
                         cached)"
                    ),
                });
            };
            from_cache(cache, &release, &unpacked)
        }
        KernelSource::Debs(debs) => {
            for d in debs {
                crate::input::check_regular(d, unpack::MAX_DEB_BYTES, "kernel package").map_err(
                    |e| ImageError::KernelInput {
                        path: d.clone(),
                        why: if e.is_not_found() {
                            "no such package file".into()
                        } else {
                            e.to_string()
                        },
                    },
                )?;
            }
            from_debs(debs, &unpacked, None, "Debian packages")
        }
        KernelSource::Path(path) => match layout::detect(path)? {
            Layout::Debs(debs) if spec.modules.is_none() => {
                from_debs(&debs, &unpacked, None, "Debian package")
            }
            Layout::Debs(_) => Err(ImageError::KernelInput {
                path: path.clone(),
                why: "packages bring their own modules: drop --modules / modules=".into(),
            }),
            Layout::Tree(tree) => from_tree(&tree, spec.modules.as_deref(), &unpacked),
            Layout::BzImage(bz) => from_bzimage(&bz, spec.modules.as_deref()),
        },
    }
}

/// A kernel from Debian packages; `headers` is the kbuild directory when it is known
/// (a cached kernel's unpacked headers), else Debian's installed headers if present.
fn from_debs(
    debs: &[PathBuf],
    unpacked: &Path,
    headers: Option<PathBuf>,
    origin: &str,
) -> Result<GuestKernel, ImageError> {
    let u = layout::unpack_debs(debs, unpacked)?;
    let kbuild_dir = headers.or_else(|| {
        let d = super::mutant::headers_dir(&u.release);
        d.join("Makefile").is_file().then_some(d)
    });
    Ok(GuestKernel {
        id: content_id(&u.bzimage)?,
        version: u.release,
        bzimage: u.bzimage,
        modules_dir: u.modules_dir,
        config: u.config,
        kbuild_dir,
        source: debs[0].clone(),
        origin: origin.to_owned(),
    })
}

/// A kernel from a build tree: its bzImage, `.config` and release; modules from `modules`
/// or installed from the tree into the cache; the tree is the kbuild directory.
fn from_tree(
    tree: &Path,
    modules: Option<&Path>,
    unpacked: &Path,
) -> Result<GuestKernel, ImageError> {
    let bad = |why: String| ImageError::KernelInput {
        path: tree.to_owned(),
        why,
    };
    let release_file = tree.join("include/config/kernel.release");
    let release = crate::input::read_to_string(&release_file, 4096, "kernel.release")
        .map_err(|_| bad("no include/config/kernel.release: build the tree first".into()))?
        .trim()
        .to_owned();
    if !layout::is_release(&release) {
        return Err(bad(format!(
            "include/config/kernel.release holds `{}`, not a kernel release",
            release.escape_debug()
        )));
    }
    let bzimage = tree.join(layout::TREE_BZIMAGE);
    let in_image = layout::bzimage_release(&bzimage)
        .map_err(|why| bad(format!("{}: {why}", layout::TREE_BZIMAGE)))?;
    if in_image != release {
        return Err(bad(format!(
            "{} is {in_image} but the tree is now {release}: run make again",
            layout::TREE_BZIMAGE
        )));
    }
    let config_path = tree.join(".config");
    let config = KernelConfig::parse(
        &std::fs::read_to_string(&config_path).map_err(|e| ImageError::io(&config_path, e))?,
    );
    let modules_dir = match modules {
        Some(dir) => user_modules(dir, &release)?,
        None if !config.enabled("CONFIG_MODULES") => no_modules(&release, unpacked)?,
        None => layout::install_tree_modules(tree, &release, unpacked)?,
    };
    let kbuild_dir = tree
        .join("Module.symvers")
        .is_file()
        .then(|| tree.to_owned());
    if kbuild_dir.is_none() {
        tracing::warn!(
            "{} has no Module.symvers (a full `make` writes it): no mutant module for this tree",
            tree.display()
        );
    }
    Ok(GuestKernel {
        id: content_id(&bzimage)?,
        version: release,
        bzimage,
        modules_dir,
        config: Some(config_path),
        kbuild_dir,
        source: tree.to_owned(),
        origin: "build tree".into(),
    })
}

/// A bare bzImage with the module tree of the same build.
fn from_bzimage(bzimage: &Path, modules: Option<&Path>) -> Result<GuestKernel, ImageError> {
    let release = layout::bzimage_release(bzimage).map_err(|why| ImageError::KernelInput {
        path: bzimage.to_owned(),
        why,
    })?;
    let Some(dir) = modules else {
        return Err(ImageError::KernelInput {
            path: bzimage.to_owned(),
            why: format!(
                "a bare bzImage needs its modules: --modules DIR (lib/modules/{release}, or the \
                 INSTALL_MOD_PATH holding it), or `modules=DIR` in the spec"
            ),
        });
    };
    let modules_dir = user_modules(dir, &release)?;
    let next_to = |name: String| bzimage.parent().map(|p| p.join(name));
    let config = [
        Some(modules_dir.join("build/.config")),
        Some(modules_dir.join("config")),
        next_to(format!("config-{release}")),
        next_to(".config".into()),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file());
    let build = modules_dir.join("build");
    let kbuild_dir = build
        .join("Module.symvers")
        .is_file()
        .then(|| build.canonicalize().unwrap_or(build));
    Ok(GuestKernel {
        id: content_id(bzimage)?,
        version: release,
        bzimage: bzimage.to_owned(),
        modules_dir,
        config,
        kbuild_dir,
        source: bzimage.to_owned(),
        origin: "bzImage + modules".into(),
    })
}

/// A module directory the user installed, checked against the kernel's release.
fn user_modules(dir: &Path, release: &str) -> Result<PathBuf, ImageError> {
    let modules_dir = layout::module_tree(dir)?;
    let name = modules_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name != release {
        return Err(ImageError::KernelInput {
            path: modules_dir.clone(),
            why: format!("modules for {name}, but the kernel is {release}"),
        });
    }
    if !modules_dir.join("modules.dep").is_file() {
        return Err(ImageError::KernelInput {
            path: modules_dir,
            why: format!("no modules.dep: run `depmod -b <INSTALL_MOD_PATH> {release}`"),
        });
    }
    Ok(modules_dir)
}

/// An empty module tree for a kernel built without modules.
fn no_modules(release: &str, unpacked: &Path) -> Result<PathBuf, ImageError> {
    let dir = unpacked.join("no-modules").join(release);
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let dep = dir.join("modules.dep");
    std::fs::write(&dep, b"").map_err(|e| ImageError::io(&dep, e))?;
    Ok(dir)
}

/// sha256 of a bzImage (a regular file of at most [`layout::MAX_BZIMAGE_BYTES`]), 16 hex
/// digits.
fn content_id(path: &Path) -> Result<String, ImageError> {
    let bytes = crate::input::read(path, layout::MAX_BZIMAGE_BYTES, "bzImage").map_err(|e| {
        ImageError::KernelInput {
            path: path.to_owned(),
            why: e.to_string(),
        }
    })?;
    Ok(hex::encode(&Sha256::digest(&bytes)[..8]))
}

/// Find the newest `linux-image-*.deb` in `dir` (where `ci/setup` downloads it), by Debian
/// version order of the version in the file name (`6.12.10` is newer than `6.12.9`).
/// A directory (or package) any user may write is refused: whatever is in it gets booted.
pub fn find_kernel_deb(dir: &Path) -> Result<PathBuf, ImageError> {
    let missing = || ImageError::KernelMissing {
        dir: dir.to_owned(),
    };
    let meta = std::fs::metadata(dir).map_err(|_| missing())?;
    refuse_world_writable(dir, &meta)?;
    let entries = std::fs::read_dir(dir).map_err(|_| missing())?;
    let mut debs: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            if !name.starts_with("linux-image-") {
                return None;
            }
            Some((debversion::from_file_name(&name)?, e.path()))
        })
        .collect();
    debs.sort_by(|(va, pa), (vb, pb)| debversion::compare(va, vb).then_with(|| pa.cmp(pb)));
    let (_, deb) = debs.pop().ok_or_else(missing)?;
    let meta = std::fs::metadata(&deb).map_err(|e| ImageError::io(&deb, e))?;
    refuse_world_writable(&deb, &meta)?;
    Ok(deb)
}

/// Refuse `path` if every user may write it.
pub(crate) fn refuse_world_writable(
    path: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), ImageError> {
    let mode = meta.permissions().mode();
    if mode & 0o002 == 0 {
        return Ok(());
    }
    Err(ImageError::KernelUnusable {
        kernel: path.to_owned(),
        why: format!(
            "it is writable by every user (mode {:o}), so anyone could plant a kernel that \
             then boots; run `sudo ci/setup` (it repairs the kernel cache) or `chmod o-w {}`",
            mode & 0o7777,
            path.display()
        ),
    })
}

pub use crate::host::command::TOOL_TIMEOUT;

/// Run a helper tool to completion ([`crate::host::command::run`]: under a `ChildGuard`,
/// bounded by [`TOOL_TIMEOUT`]) as an image step.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), ImageError> {
    crate::host::command::run(cmd, what).map_err(|e| ImageError::Tool {
        tool: e.tool,
        detail: e.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel_dir(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            std::fs::write(dir.path().join(f), b"").expect("write");
        }
        dir
    }

    #[test]
    fn the_newest_kernel_is_chosen_by_debian_version() {
        let dir = kernel_dir(&[
            "linux-image-6.12.9+bpo-amd64_6.12.9-1~bpo12+1_amd64.deb",
            "linux-image-6.12.10+bpo-amd64_6.12.10-1~bpo12+1_amd64.deb",
            "linux-image-6.12.10+bpo-amd64_6.12.10-1~bpo12+1_amd64.deb.part",
            "linux-headers-6.13.1-amd64_6.13.1-1_amd64.deb",
            "VERSION",
        ]);

        let deb = find_kernel_deb(dir.path()).expect("found");

        assert_eq!(
            deb.file_name().and_then(|n| n.to_str()),
            Some("linux-image-6.12.10+bpo-amd64_6.12.10-1~bpo12+1_amd64.deb")
        );
    }

    #[test]
    fn a_world_writable_kernel_dir_is_refused() {
        let dir = kernel_dir(&["linux-image-6.12.9-amd64_6.12.9-1_amd64.deb"]);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");

        let err = find_kernel_deb(dir.path()).expect_err("refused");

        let msg = err.to_string();
        assert!(
            msg.contains("writable by every user") && msg.contains("ci/setup"),
            "{msg}"
        );
    }

    #[test]
    fn a_world_writable_kernel_package_is_refused() {
        let name = "linux-image-6.12.9-amd64_6.12.9-1_amd64.deb";
        let dir = kernel_dir(&[name]);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dir");
        std::fs::set_permissions(
            dir.path().join(name),
            std::fs::Permissions::from_mode(0o666),
        )
        .expect("chmod deb");

        let err = find_kernel_deb(dir.path()).expect_err("refused");

        assert!(err.to_string().contains(name), "{err}");
    }

    #[test]
    fn missing_kernel_deb_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = find_kernel_deb(dir.path()).expect_err("empty dir");
        assert!(err.to_string().contains("ci/setup"), "{err}");
    }
}
