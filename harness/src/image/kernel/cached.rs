//! The kernels `ci/setup` put in `<cache>/kernel/`: the default package directly there,
//! and one directory per release from `ci/setup --kernels` (packages, a `SOURCE` line,
//! `headers/` when they build modules on this host, else `NO-HEADERS` saying why).

use std::path::{Path, PathBuf};

use super::{debversion, refuse_world_writable, ImageError};

/// One cached kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKernel {
    /// Release (`6.1.0-50-amd64`).
    pub release: String,
    /// Its packages.
    pub debs: Vec<PathBuf>,
    /// The package (default kernel) or directory it lives in.
    pub location: PathBuf,
    /// Where it came from (`debian sid: linux-image-… 7.2.13-1`).
    pub source: String,
    /// Whether modules (the mutant) can be built for it.
    pub headers: Headers,
}

/// Headers of a cached kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headers {
    /// A kbuild directory that builds modules on this host.
    Yes(PathBuf),
    /// None usable, and why.
    No(String),
}

impl CachedKernel {
    /// The kbuild directory, if the headers are usable.
    pub fn headers_dir(&self) -> Option<PathBuf> {
        match &self.headers {
            Headers::Yes(p) => Some(p.clone()),
            Headers::No(_) => None,
        }
    }
}

/// Every cached kernel, oldest release first. The default kernel's package and each
/// release directory must not be writable by every user (whatever is there gets booted).
pub fn list(cache: &Path) -> Result<Vec<CachedKernel>, ImageError> {
    let dir = cache.join("kernel");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let meta = std::fs::metadata(&dir).map_err(|e| ImageError::io(&dir, e))?;
    refuse_world_writable(&dir, &meta)?;
    let mut kernels = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() && path.join("SOURCE").is_file() {
            kernels.push(release_dir(&path, &name)?);
        } else if let Some(release) = default_release(&name) {
            let headers = super::super::mutant::headers_dir(&release);
            kernels.push(CachedKernel {
                headers: if headers.join("Makefile").is_file() {
                    Headers::Yes(headers)
                } else {
                    Headers::No(format!("linux-headers-{release} is not installed"))
                },
                source: format!("ci/setup default: {name}"),
                debs: vec![path.clone()],
                location: path,
                release,
            });
        }
    }
    kernels.sort_by(|a, b| debversion::compare(&a.release, &b.release));
    Ok(kernels)
}

/// The cached kernel with `release`, if any.
pub fn find(cache: &Path, release: &str) -> Result<Option<CachedKernel>, ImageError> {
    Ok(list(cache)?.into_iter().find(|k| k.release == release))
}

/// `<cache>/kernel/SUITES`: what `ci/setup --kernels` fetched, a `SUITE RELEASE` line each.
pub const SUITES: &str = "SUITES";
/// Largest `SUITES` file read.
const MAX_SUITES_BYTES: u64 = 64 * 1024;

/// The newest cached kernel `ci/setup` recorded for Debian `suite` in `SUITES` (lines of
/// other suites, of kernels no longer cached, and malformed lines are skipped).
pub fn newest_of_suite(cache: &Path, suite: &str) -> Result<Option<String>, ImageError> {
    let path = cache.join("kernel").join(SUITES);
    let text = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::io(&path, e)),
        Ok(m) if m.len() > MAX_SUITES_BYTES => {
            return Err(ImageError::KernelInput {
                path,
                why: format!("larger than {MAX_SUITES_BYTES} bytes: not written by ci/setup"),
            })
        }
        Ok(_) => std::fs::read_to_string(&path).map_err(|e| ImageError::io(&path, e))?,
    };
    let cached: Vec<String> = list(cache)?.into_iter().map(|k| k.release).collect();
    Ok(releases_of_suite(&text, suite)
        .filter(|r| cached.iter().any(|c| c == r))
        .max_by(|a, b| debversion::compare(a, b))
        .map(str::to_owned))
}

/// The releases `SUITES` text records for `suite`.
fn releases_of_suite<'a>(text: &'a str, suite: &'a str) -> impl Iterator<Item = &'a str> {
    text.lines().filter_map(move |l| {
        let mut words = l.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(s), Some(r), None) if s == suite => Some(r),
            _ => None,
        }
    })
}

/// The release of a default kernel package's file name (`linux-image-<release>_<ver>_<arch>.deb`).
fn default_release(name: &str) -> Option<String> {
    debversion::from_file_name(name)?;
    let rest = name.strip_prefix("linux-image-")?;
    let release = rest.split('_').next()?;
    (!release.is_empty()).then(|| release.to_owned())
}

/// A `ci/setup --kernels` directory.
fn release_dir(dir: &Path, release: &str) -> Result<CachedKernel, ImageError> {
    let meta = std::fs::metadata(dir).map_err(|e| ImageError::io(dir, e))?;
    refuse_world_writable(dir, &meta)?;
    let source_file = dir.join("SOURCE");
    let source = std::fs::read_to_string(&source_file)
        .map_err(|e| ImageError::io(&source_file, e))?
        .trim()
        .to_owned();
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ImageError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    for deb in &debs {
        let meta = std::fs::metadata(deb).map_err(|e| ImageError::io(deb, e))?;
        refuse_world_writable(deb, &meta)?;
    }
    let kbuild = dir
        .join("headers/usr/src")
        .join(format!("linux-headers-{release}"));
    let headers = if kbuild.join("Makefile").is_file() {
        Headers::Yes(kbuild)
    } else {
        let why = std::fs::read_to_string(dir.join("NO-HEADERS"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "no headers were fetched".into());
        Headers::No(why)
    };
    Ok(CachedKernel {
        release: release.to_owned(),
        debs,
        location: dir.to_owned(),
        source,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn touch(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn a_suite_names_its_newest_cached_release() {
        let cache = tempfile::tempdir().expect("tempdir");
        let c = cache.path();
        for (rel, src) in [
            ("7.2.9+deb14-amd64", "debian sid: old"),
            ("7.2.13+deb14-amd64", "debian sid: new"),
            ("7.3.4+deb13-amd64", "debian trixie-backports: x"),
        ] {
            touch(c, &format!("kernel/{rel}/SOURCE"), src);
        }
        touch(
            c,
            "kernel/SUITES",
            "sid 7.2.9+deb14-amd64\nsid 7.2.13+deb14-amd64\nsid 9.9.9-gone\n\
             trixie-backports 7.3.4+deb13-amd64\nsid two words extra\ngarbage\n",
        );
        let newest = |s: &str| newest_of_suite(c, s).expect("reads");

        assert_eq!(newest("sid").as_deref(), Some("7.2.13+deb14-amd64"));
        assert_eq!(
            newest("trixie-backports").as_deref(),
            Some("7.3.4+deb13-amd64")
        );
        assert_eq!(newest("bookworm"), None);
    }

    #[test]
    fn the_default_package_and_release_directories_are_listed_by_release() {
        let cache = tempfile::tempdir().expect("tempdir");
        let c = cache.path();
        touch(
            c,
            "kernel/linux-image-6.12.95+deb12-amd64_6.12.95-1~bpo12+1_amd64.deb",
            "",
        );
        touch(c, "kernel/VERSION", "6.12.95+deb12-amd64\n");
        touch(
            c,
            "kernel/7.2.13+deb14-amd64/SOURCE",
            "debian sid: linux-image-7.2.13+deb14-amd64 7.2.13-1\n",
        );
        touch(
            c,
            "kernel/7.2.13+deb14-amd64/linux-binary-7.2.13+deb14-amd64_7.2.13-1_amd64.deb",
            "",
        );
        touch(
            c,
            "kernel/7.2.13+deb14-amd64/linux-modules-7.2.13+deb14-amd64_7.2.13-1_amd64.deb",
            "",
        );
        touch(
            c,
            "kernel/7.2.13+deb14-amd64/NO-HEADERS",
            "x86_64-linux-gnu-gcc-16: not found\n",
        );
        touch(
            c,
            "kernel/6.1.0-50-amd64/SOURCE",
            "debian bookworm: linux-image-6.1.0-50-amd64 6.1.176-1\n",
        );
        touch(
            c,
            "kernel/6.1.0-50-amd64/linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb",
            "",
        );
        touch(
            c,
            "kernel/6.1.0-50-amd64/headers/usr/src/linux-headers-6.1.0-50-amd64/Makefile",
            "",
        );
        touch(c, "kernel/.9.9.part/SOURCE", "half-fetched");
        for d in [
            "kernel",
            "kernel/7.2.13+deb14-amd64",
            "kernel/6.1.0-50-amd64",
        ] {
            std::fs::set_permissions(c.join(d), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }

        let kernels = list(c).expect("list");

        let releases: Vec<&str> = kernels.iter().map(|k| k.release.as_str()).collect();
        assert_eq!(
            releases,
            [
                "6.1.0-50-amd64",
                "6.12.95+deb12-amd64",
                "7.2.13+deb14-amd64"
            ]
        );
        assert!(
            matches!(&kernels[0].headers, Headers::Yes(p) if p.ends_with("linux-headers-6.1.0-50-amd64"))
        );
        assert_eq!(kernels[2].debs.len(), 2);
        assert!(matches!(&kernels[2].headers, Headers::No(why) if why.contains("gcc-16")));
        assert!(kernels[2].source.starts_with("debian sid"));
        assert_eq!(
            find(c, "6.1.0-50-amd64")
                .expect("find")
                .map(|k| k.debs.len()),
            Some(1)
        );
        assert_eq!(find(c, "5.10.0-1-amd64").expect("find"), None);
    }

    #[test]
    fn a_world_writable_release_directory_is_refused() {
        let cache = tempfile::tempdir().expect("tempdir");
        let c = cache.path();
        touch(c, "kernel/6.1.0-50-amd64/SOURCE", "debian bookworm\n");
        std::fs::set_permissions(c.join("kernel"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(
            c.join("kernel/6.1.0-50-amd64"),
            std::fs::Permissions::from_mode(0o777),
        )
        .expect("chmod");

        let err = list(c).expect_err("refused");

        assert!(err.to_string().contains("writable by every user"), "{err}");
    }
}
