//! Guest images: the kernel, the initramfs (`powercut image build`) and golden pmem images.

pub mod agent;
pub mod builder;
pub mod golden;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub mod mutant;
pub mod user_modules;

use std::path::{Path, PathBuf};

pub use builder::{build_image, GuestImage, ImageOptions};
pub use golden::{golden_image, Filesystem, GoldenImage};
pub use kernel::GuestKernel;

/// Errors of image building.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No kernel package in the cache.
    #[error("no guest kernel package (linux-image-*.deb) in {dir}: run `ci/setup` (as root) to download it")]
    KernelMissing {
        /// Where we looked.
        dir: PathBuf,
    },
    /// The kernel cannot run powercut guests.
    #[error("kernel {kernel} is unusable: {why}")]
    KernelUnusable {
        /// The kernel package or image.
        kernel: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Kernel modules the guest needs are not in the kernel's module tree.
    #[error("kernel {version} has no module(s) {missing:?} (needs nvdimm, ext4, xfs, virtio_net as modules or built in)")]
    ModulesMissing {
        /// Kernel version.
        version: String,
        /// Module names not found.
        missing: Vec<String>,
    },
    /// A host program the image needs is not installed.
    #[error("{program} is not installed (needed in the guest image): run `ci/setup` (as root)")]
    HostProgramMissing {
        /// The program path.
        program: PathBuf,
    },
    /// An external tool failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// Tool (and what it was doing).
        tool: String,
        /// Exit status and stderr.
        detail: String,
    },
    /// A user's module (`--module`) does not fit the guest kernel or cannot be built.
    #[error("module {path}: {why}")]
    ModuleUnfit {
        /// The module as the user gave it.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Building the guest agent failed.
    #[error("building the guest agent failed: {0}")]
    Agent(String),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// Making a golden pmem image failed in the VM.
    #[error("golden {fs} pmem image: {cause}")]
    Golden {
        /// File system.
        fs: String,
        /// What failed.
        cause: Box<crate::vm::VmError>,
    },
}

impl ImageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_owned(),
            cause: source,
        }
    }
}
