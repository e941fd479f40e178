//! What a kernel path holds (detection), and turning each shape into files the image
//! builder can use: Debian packages (classic or split, unpacked once into the cache), a
//! build tree (modules installed into the cache), a bzImage with a module directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{run, ImageError};
use crate::image::staging::Staging;

/// How long `make modules_install` may take on a build tree.
pub const MODULES_INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The shape of a kernel path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Debian packages of one kernel (classic `linux-image`, or split binary + modules).
    Debs(Vec<PathBuf>),
    /// A kernel build tree (`arch/x86/boot/bzImage`, `.config`).
    Tree(PathBuf),
    /// A bare kernel image.
    BzImage(PathBuf),
}

/// The bzImage of a build tree.
pub const TREE_BZIMAGE: &str = "arch/x86/boot/bzImage";

/// Packages beside a kernel that are not part of what boots (headers, debug symbols).
fn is_boot_package(name: &str) -> bool {
    name.ends_with(".deb")
        && !name.starts_with('.')
        && !name.starts_with("linux-headers-")
        && !name.starts_with("linux-kbuild-")
        && !name.contains("-dbg_")
}

/// Decide what `path` is. A directory is a build tree when it has a top-level `Makefile`
/// and `.config`, else a directory of packages.
pub fn detect(path: &Path) -> Result<Layout, ImageError> {
    let bad = |why: String| ImageError::KernelInput {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if meta.is_dir() {
        if path.join("Makefile").is_file() && path.join(".config").is_file() {
            if !path.join(TREE_BZIMAGE).is_file() {
                return Err(bad(format!(
                    "a kernel build tree without {TREE_BZIMAGE}: build it first (`make -j$(nproc)`)"
                )));
            }
            return Ok(Layout::Tree(path.to_owned()));
        }
        let mut debs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| bad(format!("cannot list it: {e}")))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(is_boot_package))
            .map(|e| e.path())
            .collect();
        debs.sort();
        if debs.is_empty() {
            return Err(bad(
                "neither a kernel build tree (Makefile, .config, arch/x86/boot/bzImage) nor a \
                 directory of kernel .deb packages"
                    .into(),
            ));
        }
        return Ok(Layout::Debs(debs));
    }
    if path.extension().is_some_and(|e| e == "deb") {
        return Ok(Layout::Debs(vec![path.to_owned()]));
    }
    match bzimage_release(path) {
        Ok(_) => Ok(Layout::BzImage(path.to_owned())),
        Err(why) => Err(bad(format!(
            "not a .deb package, a directory or a bzImage ({why})"
        ))),
    }
}

/// Largest bzImage accepted, in bytes (distribution kernels are about 10 MiB).
pub const MAX_BZIMAGE_BYTES: u64 = 256 << 20;

/// Is `s` a kernel release string: 1 to 64 of letters, digits and `.+-_~`, not starting
/// with `.` (so never a path, never `..`)? Every release read out of a package, tree or
/// image must be one before it names a file.
pub fn is_release(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-_~".contains(c))
}

/// The kernel release in a bzImage's setup header (`6.12.95+deb12-amd64 (…) #1 SMP …` →
/// the first word), or why it is not a bzImage.
pub fn bzimage_release(path: &Path) -> Result<String, String> {
    use std::io::{Read, Seek, SeekFrom};
    let (mut f, _) =
        crate::input::open_regular(path, MAX_BZIMAGE_BYTES, "bzImage").map_err(|e| match e {
            crate::input::InputError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        })?;
    let mut head = [0u8; 0x210];
    f.read_exact(&mut head)
        .map_err(|_| "too short for a bzImage".to_owned())?;
    if &head[0x202..0x206] != b"HdrS" {
        return Err("no Linux boot header (HdrS at 0x202)".into());
    }
    let offset = u16::from_le_bytes([head[0x20e], head[0x20f]]);
    if offset == 0 {
        return Err("the boot header has no kernel version".into());
    }
    let mut version = [0u8; 256];
    f.seek(SeekFrom::Start(u64::from(offset) + 0x200))
        .map_err(|e| e.to_string())?;
    let n = f.read(&mut version).map_err(|e| e.to_string())?;
    parse_version_string(&version[..n]).ok_or_else(|| "the kernel version is unreadable".into())
}

/// The release (first word) of a NUL-terminated kernel version string.
pub fn parse_version_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let release = text.split_whitespace().next()?;
    is_release(release).then(|| release.to_owned())
}

/// Files found in an unpacked set of packages.
#[derive(Debug, Clone)]
pub struct UnpackedDebs {
    /// Release.
    pub release: String,
    /// The kernel image.
    pub bzimage: PathBuf,
    /// `<root>/lib/modules/<release>` (with `modules.dep`).
    pub modules_dir: PathBuf,
    /// The kernel config, if the packages carry one.
    pub config: Option<PathBuf>,
}

/// A short key for cache directories that changes when any of `files` changes (path,
/// size, modification time; the image hash covers the content itself).
pub fn files_key(files: &[PathBuf]) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| ImageError::io(f, e))?;
        let canon = f.canonicalize().map_err(|e| ImageError::io(f, e))?;
        h.update(canon.to_string_lossy().as_bytes());
        h.update(meta.len().to_le_bytes());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(mtime.to_le_bytes());
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

/// Longest wait for another process unpacking the same packages.
const UNPACK_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Unpack `debs` (once) into `<into>/debs-<key>/` and make it boot-ready: the release from
/// `lib/modules/` or `usr/lib/modules/`, the kernel from `boot/vmlinuz-<release>` (classic)
/// or `usr/lib/modules/<release>/vmlinuz` (split), and `depmod -b` for `modules.dep`.
pub fn unpack_debs(debs: &[PathBuf], into: &Path) -> Result<UnpackedDebs, ImageError> {
    let root = into.join(format!("debs-{}", files_key(debs)?));
    let done = root.join(".unpacked");
    // Another process (a parallel campaign or test) may unpack the same packages: one at a
    // time, and the marker inside the directory before it gets its final name.
    let _lock = if done.exists() {
        None
    } else {
        let key = root.file_name().and_then(|n| n.to_str()).unwrap_or("debs");
        Some(crate::cache_dir::CacheLock::acquire(
            into,
            key,
            UNPACK_LOCK_TIMEOUT,
            |p| {
                tracing::info!(
                    "waiting for another powercut unpacking the same kernel ({})",
                    p.display()
                )
            },
        )?)
    };
    if !done.exists() {
        let tmp = Staging::new(into.join(format!(
            ".{}.tmp",
            root.file_name().and_then(|n| n.to_str()).unwrap_or("debs")
        )))?;
        let mut budget = super::unpack::Budget::default();
        for deb in debs {
            super::unpack::extract_deb(deb, tmp.path(), &mut budget)?;
        }
        // depmod -b reads <base>/lib/modules: give a merged-/usr tree that path.
        if !tmp.path().join("lib").exists() && tmp.path().join("usr/lib/modules").is_dir() {
            std::os::unix::fs::symlink("usr/lib", tmp.path().join("lib"))
                .map_err(|e| ImageError::io(tmp.path(), e))?;
        }
        let release = single_release(tmp.path(), debs)?;
        run(
            Command::new("depmod")
                .arg("-b")
                .arg(tmp.path())
                .arg(&release),
            "depmod -b",
        )?;
        let marker = tmp.path().join(".unpacked");
        std::fs::write(&marker, b"").map_err(|e| ImageError::io(&marker, e))?;
        let _ = std::fs::remove_dir_all(&root);
        tmp.rename_to(&root)?;
    }
    let release = single_release(&root, debs)?;
    let modules_dir = root.join("lib/modules").join(&release);
    let bzimage = [
        root.join("boot").join(format!("vmlinuz-{release}")),
        modules_dir.join("vmlinuz"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| ImageError::KernelInput {
        path: debs[0].clone(),
        why: format!(
            "no kernel image for {release} in the package(s) (boot/vmlinuz-{release} or \
             usr/lib/modules/{release}/vmlinuz): for Debian's split layout give \
             linux-binary-{release} together with linux-modules-{release}"
        ),
    })?;
    // The kernel found in a package is checked as a bare bzImage is: its boot header, its
    // size, its release.
    let in_image = bzimage_release(&bzimage).map_err(|why| ImageError::KernelInput {
        path: debs[0].clone(),
        why: format!("{}: {why}", bzimage.display()),
    })?;
    if in_image != release {
        return Err(ImageError::KernelInput {
            path: debs[0].clone(),
            why: format!("its kernel image is {in_image}, its modules are {release}"),
        });
    }
    if !modules_dir.join("kernel").is_dir() && !modules_dir.join("modules.order").is_file() {
        return Err(ImageError::KernelInput {
            path: debs[0].clone(),
            why: format!(
                "no modules for {release} in the package(s): for Debian's split layout give \
                 linux-modules-{release} too"
            ),
        });
    }
    let config = [
        root.join("boot").join(format!("config-{release}")),
        modules_dir.join("config"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    // Nothing the packages hold may lead outside their directory (checked at unpack; this
    // holds for a directory unpacked by an older powercut too).
    for p in [Some(&bzimage), Some(&modules_dir), config.as_ref()]
        .into_iter()
        .flatten()
    {
        if !super::unpack::resolves_inside(p, &root) {
            return Err(ImageError::KernelInput {
                path: debs[0].clone(),
                why: format!(
                    "{} leads outside the unpacked packages ({}): remove that directory",
                    p.display(),
                    root.display()
                ),
            });
        }
    }
    Ok(UnpackedDebs {
        release,
        bzimage,
        modules_dir,
        config,
    })
}

/// The one `lib/modules/<release>` directory of an unpacked kernel.
fn single_release(root: &Path, debs: &[PathBuf]) -> Result<String, ImageError> {
    let dir = root.join("lib/modules");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = names.iter().find(|n| !is_release(n)) {
        return Err(ImageError::KernelInput {
            path: debs[0].clone(),
            why: format!(
                "lib/modules/{} is not a kernel release (letters, digits, `.+-_~`, at most 64)",
                bad.escape_debug()
            ),
        });
    }
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ImageError::KernelInput {
            path: debs[0].clone(),
            why: "no lib/modules/<release> or usr/lib/modules/<release> in the package(s): \
                  not a kernel package"
                .into(),
        }),
        several => Err(ImageError::KernelInput {
            path: debs[0].clone(),
            why: format!(
                "packages of several kernels ({}): give the packages of one",
                several.join(", ")
            ),
        }),
    }
}

/// A module tree the user installed: `lib/modules/<release>` itself or a directory that
/// holds `lib/modules/<release>` (an `INSTALL_MOD_PATH`). Returns that directory.
pub fn module_tree(dir: &Path) -> Result<PathBuf, ImageError> {
    let bad = |why: String| ImageError::KernelInput {
        path: dir.to_owned(),
        why,
    };
    if !dir.is_dir() {
        return Err(bad("module directory does not exist".into()));
    }
    if dir.join("modules.order").is_file() || dir.join("kernel").is_dir() {
        return Ok(dir.to_owned());
    }
    let lib = dir.join("lib/modules");
    let found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(bad(
            "not a module tree: give lib/modules/<release> (with modules.order or kernel/), \
             or the INSTALL_MOD_PATH that holds exactly one"
                .into(),
        )),
    }
}

/// A key for a build tree's installed modules: the tree's path, its bzImage and every
/// module `modules.order` lists (path, size, time), so a rebuilt module reinstalls.
pub fn tree_key(tree: &Path) -> Result<String, ImageError> {
    let mut files = vec![tree.join(TREE_BZIMAGE)];
    if let Ok(order) = std::fs::read_to_string(tree.join("modules.order")) {
        for line in order.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let rel = line.strip_prefix("kernel/").unwrap_or(line);
            let ko = tree.join(rel).with_extension("ko");
            if ko.is_file() {
                files.push(ko);
            }
        }
    }
    files_key(&files)
}

/// Install a build tree's modules into `<into>/tree-<key>/` (once) with
/// `make modules_install INSTALL_MOD_PATH=… INSTALL_MOD_STRIP=1`, bounded by
/// [`MODULES_INSTALL_TIMEOUT`]. Returns `lib/modules/<release>` there.
pub fn install_tree_modules(
    tree: &Path,
    release: &str,
    into: &Path,
) -> Result<PathBuf, ImageError> {
    let root = into.join(format!("tree-{}", tree_key(tree)?));
    let modules = root.join("lib/modules").join(release);
    if root.join(".installed").exists() {
        return Ok(modules);
    }
    let key = root.file_name().and_then(|n| n.to_str()).unwrap_or("tree");
    let _lock = crate::cache_dir::CacheLock::acquire(into, key, UNPACK_LOCK_TIMEOUT, |p| {
        tracing::info!(
            "waiting for another powercut installing the same modules ({})",
            p.display()
        )
    })?;
    let staging = Staging::new(into.join(format!(".{key}.tmp")))?;
    let tmp = staging.path();
    let log = tmp.join("modules_install.log");
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(tree)
        .arg("modules_install")
        .arg(format!("INSTALL_MOD_PATH={}", tmp.display()))
        .arg("INSTALL_MOD_STRIP=1");
    let mut child = crate::host::process::ChildGuard::spawn(&mut cmd, &log)
        .map_err(|e| ImageError::io(tree, e))?;
    let status = child.wait_timeout(MODULES_INSTALL_TIMEOUT);
    let tail = crate::host::logtail::console_tail(&log, 15);
    match status {
        Some(s) if s.success() => {}
        Some(s) => {
            return Err(ImageError::Tool {
                tool: format!("make -C {} modules_install", tree.display()),
                detail: format!("{s}:\n{tail}"),
            })
        }
        None => {
            child.kill();
            return Err(ImageError::Tool {
                tool: format!("make -C {} modules_install", tree.display()),
                detail: format!(
                    "did not finish within {} s; killed:\n{tail}",
                    MODULES_INSTALL_TIMEOUT.as_secs()
                ),
            });
        }
    }
    let installed = tmp.join("lib/modules").join(release);
    if !installed.join("modules.dep").is_file() {
        run(
            Command::new("depmod").arg("-b").arg(tmp).arg(release),
            "depmod -b",
        )?;
    }
    let _ = std::fs::remove_dir_all(&root);
    staging.rename_to(&root)?;
    let done = root.join(".installed");
    std::fs::write(&done, b"").map_err(|e| ImageError::io(&done, e))?;
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    /// A minimal bzImage: the boot header magic and a version string.
    fn bzimage(version: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x600];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        let at: u16 = 0x300;
        b[0x20e..0x210].copy_from_slice(&at.to_le_bytes());
        let start = usize::from(at) + 0x200;
        b[start..start + version.len()].copy_from_slice(version.as_bytes());
        b
    }

    #[test]
    fn each_layout_is_recognised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        touch(d, "tree/Makefile", b"");
        touch(d, "tree/.config", b"CONFIG_FS_DAX=y\n");
        touch(d, "tree/arch/x86/boot/bzImage", &bzimage("6.13.0 (x@y) #1"));
        touch(d, "split/linux-binary-7.2_1_amd64.deb", b"");
        touch(d, "split/linux-modules-7.2_1_amd64.deb", b"");
        touch(d, "split/linux-headers-7.2_1_amd64.deb", b"");
        touch(d, "one/linux-image-6.1_1_amd64.deb", b"");
        touch(d, "bz/vmlinuz", &bzimage("6.13.0-rc1+ (x@y) #2 SMP"));

        assert_eq!(
            detect(&d.join("tree")).expect("tree"),
            Layout::Tree(d.join("tree"))
        );
        assert_eq!(
            detect(&d.join("split")).expect("split"),
            Layout::Debs(vec![
                d.join("split/linux-binary-7.2_1_amd64.deb"),
                d.join("split/linux-modules-7.2_1_amd64.deb"),
            ])
        );
        let deb = d.join("one/linux-image-6.1_1_amd64.deb");
        assert_eq!(detect(&deb).expect("deb"), Layout::Debs(vec![deb.clone()]));
        assert_eq!(
            detect(&d.join("bz/vmlinuz")).expect("bz"),
            Layout::BzImage(d.join("bz/vmlinuz"))
        );
        assert_eq!(
            bzimage_release(&d.join("bz/vmlinuz")),
            Ok("6.13.0-rc1+".into())
        );
    }

    #[test]
    fn what_is_not_a_kernel_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        touch(d, "unbuilt/Makefile", b"");
        touch(d, "unbuilt/.config", b"");
        touch(d, "empty/README", b"");
        touch(d, "notes.txt", b"hello");

        let unbuilt = detect(&d.join("unbuilt")).expect_err("unbuilt").to_string();
        let empty = detect(&d.join("empty")).expect_err("empty").to_string();
        let text = detect(&d.join("notes.txt")).expect_err("text").to_string();
        let gone = detect(&d.join("gone")).expect_err("gone").to_string();

        assert!(
            unbuilt.contains("without arch/x86/boot/bzImage"),
            "{unbuilt}"
        );
        assert!(empty.contains("neither a kernel build tree"), "{empty}");
        assert!(text.contains("not a .deb package"), "{text}");
        assert!(gone.contains("cannot read it"), "{gone}");
    }

    #[test]
    fn a_module_tree_is_found_under_an_install_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        touch(d, "inst/lib/modules/6.13.0/modules.order", b"");

        let direct = module_tree(&d.join("inst/lib/modules/6.13.0")).expect("direct");
        let under = module_tree(&d.join("inst")).expect("under");
        let bad = module_tree(d).expect_err("not one");

        assert_eq!(direct, d.join("inst/lib/modules/6.13.0"));
        assert_eq!(under, direct);
        assert!(bad.to_string().contains("not a module tree"), "{bad}");
    }

    #[test]
    fn version_strings_give_the_release() {
        assert_eq!(
            parse_version_string(b"6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1\0junk"),
            Some("6.1.0-50-amd64".into())
        );
        assert_eq!(parse_version_string(b"\0"), None);
        assert_eq!(parse_version_string(b"6.1 $(rm -rf)"), Some("6.1".into()));
        assert_eq!(parse_version_string(b"bad/name x"), None);
    }
}
