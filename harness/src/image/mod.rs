//! Guest images: the kernel, the initramfs (`powercut image build`), golden pmem images and
//! booted states (a guest saved once, restored for every seed).

pub mod agent;
pub mod booted;
pub mod builder;
pub mod golden;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub mod mutant;
pub mod staging;
pub mod user_modules;

use std::path::{Path, PathBuf};

pub use booted::{booted_state, BootedState};
pub use builder::{build_image, GuestImage, ImageOptions};
pub use golden::{golden_image, Filesystem, GoldenImage};
pub use kernel::{GuestKernel, KernelConfig, KernelSpec, Wants};

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
    /// Kernel modules the guest needs are neither built in nor in the module tree.
    #[error("kernel {version} lacks what the guest needs:\n  {}", missing.join("\n  "))]
    ModulesMissing {
        /// Kernel version.
        version: String,
        /// One line per module: its name and why it is missing.
        missing: Vec<String>,
    },
    /// A `--kernel` value that is not a kernel spec.
    #[error(transparent)]
    KernelSpec(#[from] kernel::KernelSpecError),
    /// A kernel input (package, tree, bzImage, module directory, release) that cannot be
    /// used as given.
    #[error("kernel {path}: {why}")]
    KernelInput {
        /// The path or release given.
        path: PathBuf,
        /// What is wrong, and what to do.
        why: String,
    },
    /// The kernel's config lacks options powercut needs.
    #[error(
        "kernel {kernel} lacks config options powercut needs (config: {config}):\n  {}\n\
         (a build tree gets them with `powercut kernel kconfig TREE`, then make)",
        missing.join("\n  ")
    )]
    KernelConfig {
        /// The kernel release or tree.
        kernel: String,
        /// Where the config was read (`/proc/config.gz` for a running guest).
        config: PathBuf,
        /// One line per option: the option and why it is needed.
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
    /// Another process is building the same cache entry and did not finish in time.
    #[error(transparent)]
    Lock(#[from] crate::cache_dir::CacheLockError),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// Booting or saving the VM of a booted state failed.
    #[error("saving a booted VM: {cause}")]
    Booted {
        /// What failed.
        cause: Box<crate::vm::VmError>,
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
    /// Is this bad input from the user (a kernel that cannot be used as given: exit 2)
    /// rather than a failure of the machine?
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ImageError::KernelSpec(_)
                | ImageError::KernelInput { .. }
                | ImageError::KernelConfig { .. }
                | ImageError::ModulesMissing { .. }
                | ImageError::ModuleUnfit { .. }
        )
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_owned(),
            cause: source,
        }
    }
}
