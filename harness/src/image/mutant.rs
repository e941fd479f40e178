//! The mutants (known DAX durability bugs put back by `images/mutant/`): their names, and
//! building the module against the guest kernel's headers.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{GuestKernel, ImageError};

/// Mutant names the module knows (see `images/mutant/README.md`).
pub const MUTANTS: &[(&str, &str)] = &[
    ("m1", "dax_flush skipped in DAX writeback (cache model)"),
    ("m2", "dax_writeback_mapping_range is a no-op (cache model)"),
    ("m3", "ext4 fsync skips the jbd2 commit (snapshot model)"),
    (
        "m4",
        "nvdimm_flush skipped in pmem_submit_bio (cache model)",
    ),
    ("m5", "ext4 fsync is a no-op (snapshot model)"),
];

/// The word that names no mutant (the stock kernel) where a command takes a mutant name.
pub const STOCK: &str = "none";

/// A mutant name that is not one of [`MUTANTS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown mutant `{name}`: use m1, m2, m3, m4 or m5 (see images/mutant/README.md), or `none` \
     for the stock kernel"
)]
pub struct UnknownMutant {
    /// The name given.
    pub name: String,
}

/// Check a mutant name from a user: one of [`MUTANTS`] (`m1`..`m5`), or [`STOCK`] (`none`,
/// the stock kernel).
pub fn validate_mutant(name: &str) -> Result<(), UnknownMutant> {
    if name == STOCK || MUTANTS.iter().any(|(n, _)| *n == name) {
        Ok(())
    } else {
        Err(UnknownMutant {
            name: name.to_owned(),
        })
    }
}

/// Where Debian installs the headers for `kver`.
pub fn headers_dir(kver: &str) -> PathBuf {
    PathBuf::from(format!("/usr/src/linux-headers-{kver}"))
}

/// Build `powercut_mutant.ko` for `kernel` into the cache (once per kernel build and source
/// hash), against its kbuild directory (Debian's headers, or the build tree itself).
/// Returns `Ok(None)` when there is none (the image is then built without the module).
pub fn build_mutant(
    kernel: &GuestKernel,
    workspace: &Path,
    cache: &Path,
) -> Result<Option<PathBuf>, ImageError> {
    let kver = &kernel.version;
    let Some(kdir) = &kernel.kbuild_dir else {
        tracing::warn!(
            "no kbuild directory for kernel {kver} (linux-headers-{kver}, or a build tree with \
             Module.symvers): the image gets no mutant module"
        );
        return Ok(None);
    };
    let src = workspace.join("images/mutant");
    let mut h = Sha256::new();
    for f in ["Kbuild", "powercut_mutant.c"] {
        let p = src.join(f);
        let bytes = std::fs::read(&p).map_err(|e| ImageError::io(&p, e))?;
        h.update(f.as_bytes());
        h.update(Sha256::digest(&bytes));
    }
    // Keyed by the kernel's build too: two trees of one release are two kernels.
    h.update(kernel.id.as_bytes());
    h.update(kdir.to_string_lossy().as_bytes());
    let out = cache
        .join("build")
        .join(format!("mutant-{kver}-{}", hex::encode(&h.finalize()[..6])));
    let ko = out.join("powercut_mutant.ko");
    if ko.exists() {
        return Ok(Some(ko));
    }
    std::fs::create_dir_all(&out).map_err(|e| ImageError::io(&out, e))?;
    super::kernel::run(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&src)
            .arg(format!("KVER={kver}"))
            .arg(format!("KDIR={}", kdir.display()))
            .arg(format!("OUT={}", out.display())),
        "make (mutant module)",
    )?;
    if ko.exists() {
        Ok(Some(ko))
    } else {
        Err(ImageError::Tool {
            tool: "make (mutant module)".into(),
            detail: format!("{} was not produced", ko.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_mutants_and_none_are_valid() {
        let names = ["m1", "m2", "m3", "m4", "m5", "none"];

        let results: Vec<_> = names.iter().map(|n| validate_mutant(n)).collect();

        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    #[test]
    fn unknown_mutants_list_the_valid_names() {
        let bad = ["m9", "", "M1", "m1 ", "m1,m3"];

        let errors: Vec<String> = bad
            .iter()
            .map(|n| validate_mutant(n).expect_err("unknown").to_string())
            .collect();

        for (name, msg) in bad.iter().zip(&errors) {
            assert!(msg.contains(&format!("`{name}`")), "{msg}");
            assert!(
                msg.contains("m1, m2, m3, m4 or m5") && msg.contains("`none`"),
                "{msg}"
            );
        }
    }
}
