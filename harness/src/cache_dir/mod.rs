//! The powercut cache directory (kernels, built images, golden pmem images), outside the repo.

pub mod lock;
pub mod stale;

use std::path::PathBuf;

pub use lock::{CacheLock, CacheLockError};

/// Root of the cache: `$POWERCUT_CACHE`, else `$XDG_CACHE_HOME/powercut`, else
/// `~/.cache/powercut`. `ci/setup` downloads the guest kernel package into `kernel/` here.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("POWERCUT_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("powercut");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache").join("powercut")
}

/// Root of the cargo workspace this harness was built from (to build the guest agent and
/// find `images/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}
