//! Cross-process locks on cache entries: two powercut processes (two campaigns, a campaign
//! and a `repro`, parallel tests) that build the same image, golden pmem image or unpacked
//! kernel take turns instead of unpacking into one staging directory at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// An exclusive lock on one cache entry, held until dropped (the kernel releases it when
/// the process dies, so a killed holder never blocks the next one).
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// Why a cache entry could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum CacheLockError {
    /// The lock file could not be created or locked.
    #[error("locking {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process held it for longer than the timeout.
    #[error(
        "another powercut process has held {path} for {waited:?}; if none is running, \
         it is stale only if a process of another machine shares the cache"
    )]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
}

impl CacheLock {
    /// Lock `<cache>/locks/<name>.lock`, waiting at most `timeout` for another holder
    /// (`on_wait` is called once, when the first try finds it held). `name` must be a
    /// plain file name (a cache key); anything else is refused.
    pub fn acquire(
        cache: &Path,
        name: &str,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<CacheLock, CacheLockError> {
        let dir = cache.join("locks");
        let path = dir.join(format!("{name}.lock"));
        let io = |source| CacheLockError::Io {
            path: path.clone(),
            source,
        };
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a cache key",
            )));
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CacheLock { _file: file }),
                Err(TryLockError::Error(e)) => return Err(io(e)),
                Err(TryLockError::WouldBlock) => {
                    if let Some(f) = on_wait.take() {
                        f(&path);
                    }
                    if start.elapsed() >= timeout {
                        return Err(CacheLockError::Timeout {
                            path,
                            waited: start.elapsed(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_times_out_and_gets_it_once_released() {
        let cache = tempfile::tempdir().expect("tempdir");
        let first = CacheLock::acquire(cache.path(), "k1", Duration::ZERO, |_| {}).expect("free");
        let mut waited = false;
        let second = CacheLock::acquire(cache.path(), "k1", Duration::from_millis(300), |_| {
            waited = true;
        });
        assert!(waited, "the second caller was told it waits");
        assert!(
            matches!(second, Err(CacheLockError::Timeout { .. })),
            "{second:?}"
        );
        let other = CacheLock::acquire(cache.path(), "k2", Duration::ZERO, |_| {});
        assert!(other.is_ok(), "another key is independent");
        drop(first);
        assert!(CacheLock::acquire(cache.path(), "k1", Duration::ZERO, |_| {}).is_ok());
    }

    #[test]
    fn keys_that_are_not_plain_names_are_refused() {
        let cache = tempfile::tempdir().expect("tempdir");
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(
                CacheLock::acquire(cache.path(), bad, Duration::ZERO, |_| {}).is_err(),
                "{bad:?}"
            );
        }
    }
}
