//! Directories a step fills that must not outlive a failure of that step.

use std::path::{Path, PathBuf};

use super::ImageError;

/// A directory removed on drop unless the step that fills it succeeded: it is then renamed
/// into place ([`Staging::rename_to`]) or kept where it is ([`Staging::keep`]). A failed
/// unpack, install or module build leaves nothing behind; one left by a killed process is
/// removed at the next start ([`crate::cache_dir::stale`]).
pub struct Staging(Option<PathBuf>);

impl Staging {
    /// A fresh, empty directory at `path` (whatever was there is removed first).
    pub fn new(path: PathBuf) -> Result<Staging, ImageError> {
        remove_if_present(&path)?;
        std::fs::create_dir_all(&path).map_err(|e| ImageError::io(&path, e))?;
        Ok(Staging(Some(path)))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.0
            .as_deref()
            .expect("a Staging holds its path until it is renamed or kept")
    }

    /// Move it to `to` (which must not exist); on failure it is still removed on drop.
    pub fn rename_to(mut self, to: &Path) -> Result<(), ImageError> {
        std::fs::rename(self.path(), to).map_err(|e| ImageError::io(to, e))?;
        self.0 = None;
        Ok(())
    }

    /// The step succeeded in place: keep the directory.
    pub fn keep(mut self) -> PathBuf {
        self.0
            .take()
            .expect("a Staging holds its path until it is renamed or kept")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = remove_if_present(&path) {
                tracing::warn!(
                    "could not remove the staging directory {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// Remove `path` and everything under it; a path that is not there is fine.
fn remove_if_present(path: &Path) -> Result<(), ImageError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ImageError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_staging_directory_is_removed_with_its_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("build/x");

        let staging = Staging::new(path.clone()).expect("new");
        std::fs::write(staging.path().join("half.o"), b"x").expect("write");
        drop(staging);

        assert!(!path.exists());
    }

    #[test]
    fn a_kept_or_renamed_staging_directory_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = Staging::new(dir.path().join("kept")).expect("new").keep();
        let staging = Staging::new(dir.path().join(".moved.tmp")).expect("new");

        staging
            .rename_to(&dir.path().join("moved"))
            .expect("rename");

        assert!(kept.is_dir());
        assert!(dir.path().join("moved").is_dir());
        assert!(!dir.path().join(".moved.tmp").exists());
    }

    #[test]
    fn a_new_staging_directory_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::create_dir_all(path.join("old")).expect("mkdir");

        let staging = Staging::new(path.clone()).expect("new");

        assert_eq!(std::fs::read_dir(staging.path()).expect("read").count(), 0);
    }
}
