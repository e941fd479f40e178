//! Staging files of processes that died mid-work (killed during an unpack, an image build,
//! a golden build or a run): each is named after its owner's pid or sits under a cache
//! lock, and is removed at the next start only when its owner is provably gone (that pid
//! no longer exists, or nobody holds that lock).

use std::path::Path;
use std::time::Duration;

use super::CacheLock;

/// The name prefix of a scratch entry owned by this process: `<prefix><pid>-`.
pub fn owned_prefix(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// Does a process with `pid` exist (on this machine's pid namespace)?
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The owner pid of an entry named `<prefix><pid>-…`, if it is named that way.
fn owner_pid(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Remove every entry of `dir` named `<prefix><pid>-…` whose pid no longer exists.
/// Returns how many were removed.
pub fn sweep_dead_owners(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner_pid(n, prefix)) else {
            continue;
        };
        if !pid_alive(pid) && remove(&e.path()) {
            tracing::info!("removed {} (its process {pid} is gone)", e.path().display());
            removed += 1;
        }
    }
    removed
}

/// Remove every staging entry `.<key>.tmp` of `dir` whose cache lock `<key>` (under
/// `cache`) nobody holds: its writer died. The lock is held while removing.
pub fn sweep_unlocked(dir: &Path, cache: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(key) = name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Ok(_lock) = CacheLock::acquire(cache, key, Duration::ZERO, |_| {}) else {
            continue;
        };
        if remove(&e.path()) {
            tracing::info!("removed {} (nobody holds its lock)", e.path().display());
            removed += 1;
        }
    }
    removed
}

/// Remove a file or directory tree (symlinks are removed, never followed).
fn remove(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).is_ok(),
        Ok(_) => std::fs::remove_file(p).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that surely does not exist: a child that has exited and been reaped.
    fn dead_pid() -> i32 {
        let mut c = std::process::Command::new("true").spawn().expect("spawn");
        let pid = i32::try_from(c.id()).expect("pid");
        c.wait().expect("wait");
        pid
    }

    #[test]
    fn entries_of_dead_owners_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dir.path().join(format!(".golden-{}-abc", dead_pid()));
        let live = dir
            .path()
            .join(format!(".golden-{}-abc", std::process::id()));
        let other = dir.path().join(".golden-xyz");
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).expect("mkdir");
            std::fs::write(d.join("pmem"), b"x").expect("write");
        }

        let n = sweep_dead_owners(dir.path(), ".golden-");

        assert_eq!(n, 1);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn staging_dirs_go_only_when_their_lock_is_free() {
        let cache = tempfile::tempdir().expect("tempdir");
        let kernels = cache.path().join("kernels");
        let held = kernels.join(".debs-held.tmp");
        let free = kernels.join(".debs-free.tmp");
        std::fs::create_dir_all(&held).expect("mkdir");
        std::fs::create_dir_all(&free).expect("mkdir");
        let lock =
            CacheLock::acquire(cache.path(), "debs-held", Duration::ZERO, |_| {}).expect("lock");

        let n = sweep_unlocked(&kernels, cache.path());

        assert_eq!(n, 1);
        assert!(held.exists() && !free.exists());
        drop(lock);
    }
}
