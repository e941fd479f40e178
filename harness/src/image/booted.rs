//! Booted states: one guest booted once per (image, file system, pmem size, crash model,
//! accelerator, QEMU, machine arguments) and saved ([`crate::vm::restore`]) at the point
//! where a seed starts (SSH answers, nothing mounted), kept in the cache beside the golden
//! images. A state is its directory `booted/<key>/`:
//!
//! ```text
//! vm.state     QEMU's migration stream (x-ignore-shared: no pmem in it)
//! pmem.base    the pmem file as the saved guest had it: every restore runs on a copy
//! info.json    the inputs of the key, and the boot and save times
//! ```
//!
//! The key hashes every input, so a changed input builds a new state. A state is built in a
//! temporary directory and renamed into place (an interrupted build leaves no half state);
//! builders of one key take turns on `booted/<key>.lock`.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{GoldenImage, GuestImage, ImageError};
use crate::vm::restore::machine_args;
use crate::vm::{qemu_version, Accel, Vm, VmError, VmSpec, BOOT_TIMEOUT};

/// Bump when the layout of a state directory or what is saved changes.
const FORMAT: u32 = 1;
/// How long a builder waits for another builder of the same key.
const LOCK_TIMEOUT: Duration =
    Duration::from_secs(BOOT_TIMEOUT.as_secs() + crate::vm::restore::SAVE_TIMEOUT.as_secs());

/// A saved, booted guest in the cache.
#[derive(Debug, Clone)]
pub struct BootedState {
    /// Its key (the directory name).
    pub key: String,
    /// QEMU's saved state.
    pub state: PathBuf,
    /// The pmem file at save time.
    pub pmem_base: PathBuf,
}

/// Everything a booted state depends on, as the key hashes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateInputs {
    /// Guest image hash (kernel, initramfs, agent, modules).
    pub image: String,
    /// Guest kernel release.
    pub kernel: String,
    /// File system of the golden pmem.
    pub filesystem: String,
    /// pmem size in bytes.
    pub pmem_bytes: u64,
    /// The golden image file: size and modification time in ns (a rebuilt golden image
    /// has a new file system UUID).
    pub golden: String,
    /// Crash model (`snapshot`, `cache`).
    pub model: String,
    /// Accelerator.
    pub accel: String,
    /// `qemu-system-x86_64 --version`.
    pub qemu: String,
    /// QEMU's arguments with the per-run places left out.
    pub machine: Vec<String>,
}

impl StateInputs {
    /// The key: the hex SHA-256 of the format and every input (pure).
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("format={FORMAT}\n"));
        let json = serde_json::to_string(self).expect("a struct of strings serializes");
        h.update(json.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

/// `size:mtime_ns` of a file.
fn identity(path: &Path) -> Result<String, ImageError> {
    let md = std::fs::metadata(path).map_err(|e| ImageError::io(path, e))?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{mtime}", md.len()))
}

/// The spec of the VM a state of `golden` is saved from (and every restore of it uses).
pub fn state_spec(image: &GuestImage, pmem: &Path, accel: Accel, dir: &Path) -> VmSpec {
    VmSpec::new("booted", image, pmem, accel, dir)
}

/// Find or build the booted state of `image` on `golden` for crash `model`.
pub fn booted_state(
    image: &GuestImage,
    golden: &GoldenImage,
    accel: Accel,
    model: &str,
    cache: &Path,
    debug: bool,
) -> Result<BootedState, ImageError> {
    let root = cache.join("booted");
    std::fs::create_dir_all(&root).map_err(|e| ImageError::io(&root, e))?;
    let inputs = StateInputs {
        image: image.hash.clone(),
        kernel: image.kernel_version.clone(),
        filesystem: golden.fs.name().into(),
        pmem_bytes: golden.bytes,
        golden: identity(&golden.path)?,
        model: model.into(),
        accel: accel.to_string(),
        qemu: qemu_version(),
        machine: machine_args(&state_spec(image, Path::new("PMEM"), accel, &root)),
    };
    let key = inputs.key();
    let dir = root.join(&key);
    let found = |dir: &Path| BootedState {
        key: key.clone(),
        state: dir.join("vm.state"),
        pmem_base: dir.join("pmem.base"),
    };
    if dir.join("info.json").exists() {
        return Ok(found(&dir));
    }
    let _lock = lock(&root.join(format!("{key}.lock")))?;
    if dir.join("info.json").exists() {
        return Ok(found(&dir));
    }
    let work = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(&root)
        .map_err(|e| ImageError::io(&root, e))?;
    let info = save(image, golden, accel, &inputs, work.path(), debug)?;
    let json = serde_json::to_vec_pretty(&info).expect("a struct of numbers and strings");
    let info_path = work.path().join("info.json");
    std::fs::write(&info_path, json).map_err(|e| ImageError::io(&info_path, e))?;
    for f in ["vm.state", "pmem.base", "info.json"] {
        let p = work.path().join(f);
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| ImageError::io(&p, e))?;
    }
    std::fs::rename(work.path(), &dir).map_err(|e| ImageError::io(&dir, e))?;
    // Renamed: the temporary directory no longer exists under its old name.
    let _ = work.keep();
    tracing::info!(
        key,
        boot_secs = info.boot_secs,
        save_secs = info.save_secs,
        "booted state saved"
    );
    Ok(found(&dir))
}

/// What `info.json` records.
#[derive(Debug, serde::Serialize)]
struct SavedInfo<'a> {
    inputs: &'a StateInputs,
    boot_secs: f64,
    save_secs: f64,
    state_bytes: u64,
    /// 4 KiB blocks in which the base differs from the golden image (boot-time writes).
    base_blocks_changed: u64,
}

/// Boot a guest on a copy of `golden` in `work`, save it, keep its pmem as the base.
fn save<'a>(
    image: &GuestImage,
    golden: &GoldenImage,
    accel: Accel,
    inputs: &'a StateInputs,
    work: &Path,
    debug: bool,
) -> Result<SavedInfo<'a>, ImageError> {
    let wrap = |e: VmError| ImageError::Booted { cause: Box::new(e) };
    let base = work.join("pmem.base");
    golden.copy_to(&base)?;
    let mut spec = state_spec(image, &base, accel, work);
    spec.debug = debug;
    let started = Instant::now();
    let vm = Vm::boot(&spec).map_err(wrap)?;
    let boot_secs = started.elapsed().as_secs_f64();
    let state = work.join("vm.state");
    let took = vm.save_state(&state).map_err(wrap)?;
    let state_bytes = std::fs::metadata(&state)
        .map_err(|e| ImageError::io(&state, e))?
        .len();
    Ok(SavedInfo {
        inputs,
        boot_secs,
        save_secs: took.as_secs_f64(),
        state_bytes,
        base_blocks_changed: blocks_changed(&golden.path, &base)?,
    })
}

/// 4 KiB blocks that differ between two files of one size.
fn blocks_changed(a: &Path, b: &Path) -> Result<u64, ImageError> {
    use std::io::Read;
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .map_err(|e| ImageError::io(p, e))
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut changed = 0;
    loop {
        let na = read_block(&mut fa, &mut ba).map_err(|e| ImageError::io(a, e))?;
        let nb = read_block(&mut fb, &mut bb).map_err(|e| ImageError::io(b, e))?;
        if na == 0 && nb == 0 {
            return Ok(changed);
        }
        if na != nb || ba[..na] != bb[..nb] {
            changed += 1;
        }
    }

    fn read_block(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

/// An exclusive lock on `path`, held until the file is dropped; waits up to
/// [`LOCK_TIMEOUT`] for another builder.
fn lock(path: &Path) -> Result<std::fs::File, ImageError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ImageError::io(path, e))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        // SAFETY: flock(2) on a file descriptor this function owns.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(f);
        }
        if Instant::now() >= deadline {
            return Err(ImageError::io(
                path,
                std::io::Error::other(format!(
                    "another powercut has been building this booted state for {} s",
                    LOCK_TIMEOUT.as_secs()
                )),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> StateInputs {
        StateInputs {
            image: "abc".into(),
            kernel: "6.12.0".into(),
            filesystem: "ext4".into(),
            pmem_bytes: 256 << 20,
            golden: "268435456:1".into(),
            model: "snapshot".into(),
            accel: "tcg".into(),
            qemu: "10.0.2".into(),
            machine: vec!["-m".into(), "512M".into()],
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs();
        let changed: Vec<StateInputs> = vec![
            StateInputs {
                image: "abd".into(),
                ..base.clone()
            },
            StateInputs {
                kernel: "6.1.0".into(),
                ..base.clone()
            },
            StateInputs {
                filesystem: "xfs".into(),
                ..base.clone()
            },
            StateInputs {
                pmem_bytes: 512 << 20,
                ..base.clone()
            },
            StateInputs {
                golden: "268435456:2".into(),
                ..base.clone()
            },
            StateInputs {
                model: "cache".into(),
                ..base.clone()
            },
            StateInputs {
                accel: "kvm".into(),
                ..base.clone()
            },
            StateInputs {
                qemu: "10.1.0".into(),
                ..base.clone()
            },
            StateInputs {
                machine: vec!["-m".into(), "1024M".into()],
                ..base.clone()
            },
        ];

        let mut keys: Vec<String> = changed.iter().map(StateInputs::key).collect();
        keys.push(base.key());
        keys.sort();
        keys.dedup();

        assert_eq!(keys.len(), changed.len() + 1);
        assert_eq!(base.key(), inputs().key(), "the key is a pure function");
    }

    #[test]
    fn changed_blocks_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut data = vec![0u8; 4 * 4096];
        std::fs::write(&a, &data).expect("write a");
        data[5] = 1;
        data[3 * 4096 + 7] = 1;
        std::fs::write(&b, &data).expect("write b");

        assert_eq!(blocks_changed(&a, &a).expect("same"), 0);
        assert_eq!(blocks_changed(&a, &b).expect("differ"), 2);
    }

    #[test]
    fn a_second_locker_waits_for_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.lock");
        let first = lock(&path).expect("first lock");
        let f = std::fs::File::open(&path).expect("open");

        // SAFETY: flock(2) on a descriptor owned by this test.
        let second = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        drop(first);
        // SAFETY: as above.
        let after = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };

        assert_eq!(second, -1, "held by the first");
        assert_eq!(after, 0, "free once the first is dropped");
    }
}
