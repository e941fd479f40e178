//! The mutants (known DAX durability bugs put back by `images/mutant/`): their names, and
//! building the module against the guest kernel's headers.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::staging::Staging;
use super::{Filesystem, GuestKernel, ImageError};

/// One mutant the module knows (see `images/mutant/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutantInfo {
    /// `m1`..`m9`.
    pub name: &'static str,
    /// What it breaks, and which crash model sees it.
    pub effect: &'static str,
    /// The file system whose own code it breaks; `None`: generic DAX/pmem code, any file
    /// system.
    pub filesystem: Option<Filesystem>,
}

/// The mutants the module knows (see `images/mutant/README.md`).
pub const MUTANTS: &[MutantInfo] = &[
    MutantInfo {
        name: "m1",
        effect: "dax_flush skipped in DAX writeback (cache model)",
        filesystem: None,
    },
    MutantInfo {
        name: "m2",
        effect: "ext4 DAX writeback is a no-op (cache model)",
        filesystem: Some(Filesystem::Ext4),
    },
    MutantInfo {
        name: "m3",
        effect: "ext4 fsync skips the jbd2 commit (snapshot model)",
        filesystem: Some(Filesystem::Ext4),
    },
    MutantInfo {
        name: "m4",
        effect: "nvdimm_flush skipped in pmem_submit_bio (cache model)",
        filesystem: None,
    },
    MutantInfo {
        name: "m5",
        effect: "ext4 fsync is a no-op (snapshot model)",
        filesystem: Some(Filesystem::Ext4),
    },
    MutantInfo {
        name: "m6",
        effect: "xfs fsync skips the log force (snapshot model)",
        filesystem: Some(Filesystem::Xfs),
    },
    MutantInfo {
        name: "m7",
        effect: "xfs DAX writeback is a no-op (cache model)",
        filesystem: Some(Filesystem::Xfs),
    },
    MutantInfo {
        name: "m8",
        effect: "ext4 fsync commits only what fdatasync does: metadata-only changes (snapshot model)",
        filesystem: Some(Filesystem::Ext4),
    },
    MutantInfo {
        name: "m9",
        effect: "O_DSYNC/O_SYNC and RWF_DSYNC/RWF_SYNC writes skip their sync, ext4 and xfs (snapshot model)",
        filesystem: None,
    },
];

/// The word that names no mutant (the stock kernel) where a command takes a mutant name.
pub const STOCK: &str = "none";

/// A mutant name that is not one of [`MUTANTS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown mutant `{name}`: use m1 to m9 (see images/mutant/README.md), or `none` for the \
     stock kernel"
)]
pub struct UnknownMutant {
    /// The name given.
    pub name: String,
}

/// Check a mutant name from a user: one of [`MUTANTS`] (`m1`..`m9`), or [`STOCK`] (`none`,
/// the stock kernel).
pub fn validate_mutant(name: &str) -> Result<(), UnknownMutant> {
    if name == STOCK || MUTANTS.iter().any(|m| m.name == name) {
        Ok(())
    } else {
        Err(UnknownMutant {
            name: name.to_owned(),
        })
    }
}

/// A mutant that breaks another file system's code than the one under test: it can never
/// fire, so a campaign with it would prove nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "mutant `{name}` breaks {breaks}'s own code and never fires on {fs}: use {fitting} for {fs} \
     (see images/mutant/README.md)"
)]
pub struct WrongFilesystem {
    /// The mutant.
    pub name: String,
    /// The file system it breaks.
    pub breaks: Filesystem,
    /// The file system under test.
    pub fs: Filesystem,
    /// The mutants that fit `fs`, as a list for the message.
    pub fitting: String,
}

/// Check that mutant `name` (already validated) can fire on `fs`: generic mutants fit
/// every file system, the others only their own.
pub fn check_mutant_fits(name: &str, fs: Filesystem) -> Result<(), WrongFilesystem> {
    let Some(info) = MUTANTS.iter().find(|m| m.name == name) else {
        return Ok(());
    };
    match info.filesystem {
        Some(breaks) if breaks != fs => Err(WrongFilesystem {
            name: name.to_owned(),
            breaks,
            fs,
            fitting: MUTANTS
                .iter()
                .filter(|m| m.filesystem.is_none_or(|f| f == fs))
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Ok(()),
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
    // Removed again unless the build succeeds: a failed `make` leaves nothing.
    let staging = Staging::new(out)?;
    super::kernel::run(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&src)
            .arg(format!("KVER={kver}"))
            .arg(format!("KDIR={}", kdir.display()))
            .arg(format!("OUT={}", staging.path().display())),
        "make (mutant module)",
    )?;
    if ko.exists() {
        staging.keep();
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
        let names = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "none"];

        let results: Vec<_> = names.iter().map(|n| validate_mutant(n)).collect();

        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    #[test]
    fn unknown_mutants_list_the_valid_names() {
        let bad = ["m10", "m0", "", "M1", "m1 ", "m1,m3"];

        let errors: Vec<String> = bad
            .iter()
            .map(|n| validate_mutant(n).expect_err("unknown").to_string())
            .collect();

        for (name, msg) in bad.iter().zip(&errors) {
            assert!(msg.contains(&format!("`{name}`")), "{msg}");
            assert!(msg.contains("m1 to m9") && msg.contains("`none`"), "{msg}");
        }
    }

    #[test]
    fn file_system_mutants_fit_only_their_file_system() {
        let fits = |fs| {
            MUTANTS
                .iter()
                .filter(|m| check_mutant_fits(m.name, fs).is_ok())
                .map(|m| m.name)
                .collect::<Vec<_>>()
        };

        assert_eq!(
            fits(Filesystem::Ext4),
            ["m1", "m2", "m3", "m4", "m5", "m8", "m9"]
        );
        assert_eq!(fits(Filesystem::Xfs), ["m1", "m4", "m6", "m7", "m9"]);
    }

    #[test]
    fn a_mutant_on_the_wrong_file_system_names_the_ones_that_fit() {
        let msg = check_mutant_fits("m3", Filesystem::Xfs)
            .expect_err("m3 is ext4's")
            .to_string();

        assert!(msg.contains("`m3` breaks ext4"), "{msg}");
        assert!(msg.contains("use m1, m4, m6, m7, m9 for xfs"), "{msg}");
    }
}
