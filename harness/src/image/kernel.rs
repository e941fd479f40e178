//! The guest kernel: finding the Debian package in the cache, unpacking it, and checking that
//! it can do DAX on an emulated NVDIMM.

mod debversion;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageError;

pub use debversion::compare as compare_debian_versions;

/// Modules the guest needs, by name; dependencies are resolved from `modules.dep`.
pub const GUEST_MODULES: &[&str] = &[
    "crc32c_generic",
    "libcrc32c",
    "nfit",
    "nd_pmem",
    "ext4",
    "xfs",
    "virtio_net",
];

/// Kernel config options the guest cannot do without.
pub const REQUIRED_CONFIG: &[&str] = &["CONFIG_FS_DAX", "CONFIG_ZONE_DEVICE", "CONFIG_LIBNVDIMM"];

/// An unpacked guest kernel: its image and its module tree.
#[derive(Debug, Clone)]
pub struct GuestKernel {
    /// Release string (`6.12.95+deb12-amd64`).
    pub version: String,
    /// The bzImage.
    pub bzimage: PathBuf,
    /// `/lib/modules/<version>` of this kernel (with `modules.dep`).
    pub modules_dir: PathBuf,
    /// Where it came from (the .deb, or the user's bzImage), for messages and hashing.
    pub source: PathBuf,
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
fn refuse_world_writable(path: &Path, meta: &std::fs::Metadata) -> Result<(), ImageError> {
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

/// Unpack a kernel .deb into `into/<deb stem>/` (once) and run `depmod -b` on it.
pub fn unpack_deb(deb: &Path, into: &Path) -> Result<GuestKernel, ImageError> {
    let stem = deb
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("kernel")
        .to_owned();
    let root = into.join(&stem);
    let done = root.join(".unpacked");
    if !done.exists() {
        let tmp = into.join(format!(".{stem}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp),
            "dpkg-deb -x",
        )?;
        let version = single_module_version(&tmp)?;
        run(
            Command::new("depmod").arg("-b").arg(&tmp).arg(&version),
            "depmod -b",
        )?;
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&tmp, &root).map_err(|e| ImageError::io(&root, e))?;
        std::fs::write(&done, b"").map_err(|e| ImageError::io(&done, e))?;
    }
    let version = single_module_version(&root)?;
    let kernel = GuestKernel {
        bzimage: root.join("boot").join(format!("vmlinuz-{version}")),
        modules_dir: root.join("lib/modules").join(&version),
        version,
        source: deb.to_owned(),
    };
    if !kernel.bzimage.exists() {
        return Err(ImageError::KernelUnusable {
            kernel: deb.to_owned(),
            why: format!("no boot/vmlinuz-{} inside the package", kernel.version),
        });
    }
    check_config(
        &root.join("boot").join(format!("config-{}", kernel.version)),
        deb,
    )?;
    Ok(kernel)
}

fn single_module_version(root: &Path) -> Result<String, ImageError> {
    let dir = root.join("lib/modules");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| ImageError::io(&dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    names.pop().ok_or_else(|| ImageError::KernelUnusable {
        kernel: root.to_owned(),
        why: "no lib/modules/<version> directory".into(),
    })
}

/// Check a kernel `.config` for the options DAX on an NVDIMM needs.
pub fn check_config(config: &Path, kernel: &Path) -> Result<(), ImageError> {
    let Ok(text) = std::fs::read_to_string(config) else {
        // A user's own kernel may come without its config; the boot check will tell.
        return Ok(());
    };
    let missing = missing_config(&text);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImageError::KernelUnusable {
            kernel: kernel.to_owned(),
            why: format!(
                "kernel config lacks {} (build it with DAX and NVDIMM support)",
                missing.join(", ")
            ),
        })
    }
}

/// The options of [`REQUIRED_CONFIG`] that `config_text` does not enable (`=y` or `=m`).
pub fn missing_config(config_text: &str) -> Vec<String> {
    REQUIRED_CONFIG
        .iter()
        .filter(|opt| {
            !config_text
                .lines()
                .any(|l| l == format!("{opt}=y") || l == format!("{opt}=m"))
        })
        .map(|s| (*s).to_owned())
        .collect()
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), ImageError> {
    let out = cmd.output().map_err(|e| ImageError::Tool {
        tool: what.to_owned(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ImageError::Tool {
            tool: what.to_owned(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_check_names_what_is_missing() {
        let text = "CONFIG_FS_DAX=y\nCONFIG_LIBNVDIMM=m\n# CONFIG_ZONE_DEVICE is not set\n";
        assert_eq!(missing_config(text), vec!["CONFIG_ZONE_DEVICE".to_owned()]);
    }

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
