//! The checker: a long-lived checker VM that mounts crash images (journal recovery runs in
//! the guest, never on the host kernel), reads back the files, and a host-side fsck of the
//! recovered image. Crash images are untrusted: a garbage image gives `mount-failed` or
//! `fs-corrupt`, and a checker VM that stops answering is replaced. A checker given a
//! [`dedupe::SharedSeen`] checks each distinct image once ([`dedupe`]); every check records
//! where its time went ([`CheckPhases`]).

pub mod dedupe;
pub mod fsck;

use std::path::Path;
use std::time::{Duration, Instant};

use workloads::oracle::Expectation;

use crate::host::blocks::sync_blocks;
use crate::host::digest::{image_digest, Scan};
use crate::image::golden::{scratch_pmem, GoldenCopy};
use crate::image::{BootedState, Filesystem, GoldenImage, GuestImage};
use crate::records::phases::micros;
use crate::records::{CheckPhases, StateRef};
use crate::vm::agent::{check_image, start_agent, CheckPlace, CheckedImage, Patterns, GUEST_DIR};
use crate::vm::{Accel, AgentChannel, Vm, VmError, VmSpec};
use dedupe::{judge, Readback, Seen, SharedSeen};

pub use crate::records::CheckOutcome;

/// Drops the guest's caches of `/dev/pmem0` so that it sees the next image's bytes (before
/// the first image; after each check the agent does it).
const DROP_CACHES: &str = "echo 3 > /proc/sys/vm/drop_caches; blockdev --flushbufs /dev/pmem0";
/// The checker's pmem device.
const PMEM_DEVICE: &str = "/dev/pmem0";
/// Where crash images are mounted in the checker.
const MOUNTPOINT: &str = "/mnt";

/// One checker VM.
pub struct Checker {
    vm: Vm,
    agent: AgentChannel,
    /// Deleted when the checker goes, after its VM.
    pmem: GoldenCopy,
    fs: Filesystem,
    name: String,
    /// The guest holds no cached block of `/dev/pmem0` (dropped after the last unmount).
    clean: bool,
    /// Read-backs of images checked before, when dedupe is on.
    seen: Option<SharedSeen>,
    /// Restored from a booted state (else cold-booted).
    restored: bool,
}

/// What a checker VM is started from.
#[derive(Debug, Clone, Copy)]
pub struct CheckerSpec<'a> {
    /// The guest image.
    pub image: &'a GuestImage,
    /// The golden pmem image of the file system checked.
    pub golden: &'a GoldenImage,
    /// Accelerator.
    pub accel: Accel,
    /// Directory of the checker's files (pmem copy, console log).
    pub dir: &'a Path,
    /// VM name.
    pub name: &'a str,
    /// Debug console.
    pub debug: bool,
    /// Timeout of every guest call of a check.
    pub check_timeout: Duration,
    /// The booted state to restore from (`None`: cold boot). Any crash model's state of
    /// this image and golden image will do: they are saved from the same plain VM.
    pub state: Option<&'a BootedState>,
}

fn copy_pmem(from: &Path, to: &Path) -> Result<GoldenCopy, VmError> {
    scratch_pmem(from, to)
        .map_err(|e| VmError::Guest(format!("copying the pmem image {}: {e}", from.display())))
}

impl Checker {
    /// Start the checker VM of `spec`: restored from its booted state when it has one (a
    /// failed restore falls back to a cold boot, logged), else cold-booted. Every guest
    /// call of a check times out after `spec.check_timeout` (a hung checker VM is then
    /// replaced by the campaign).
    pub fn start(spec: &CheckerSpec<'_>) -> Result<Checker, VmError> {
        std::fs::create_dir_all(spec.dir).map_err(|source| VmError::HostIo {
            what: format!("creating {}", spec.dir.display()),
            source,
        })?;
        let pmem_path = spec.dir.join(format!("{}.pmem", spec.name));
        let vm_spec = |pmem: &Path| {
            let mut vm_spec = VmSpec::new(spec.name, spec.image, pmem, spec.accel, spec.dir);
            vm_spec.debug = spec.debug;
            vm_spec
        };
        let mut started = None;
        if let Some(state) = spec.state {
            let restored = copy_pmem(&state.pmem_base, &pmem_path)
                .and_then(|pmem| Ok((Vm::restore(&vm_spec(pmem.path()), &state.state)?, pmem)));
            match restored {
                Ok(up) => started = Some((up, true)),
                Err(e) if e.is_disk_full() => return Err(e),
                Err(e) => tracing::warn!(
                    checker = spec.name,
                    "restoring the checker VM failed, cold-booting it: {e}"
                ),
            }
        }
        let ((vm, pmem), restored) = match started {
            Some(up) => up,
            None => {
                let pmem = copy_pmem(&spec.golden.path, &pmem_path)?;
                ((Vm::boot(&vm_spec(pmem.path()))?, pmem), false)
            }
        };
        vm.ssh().set_timeout(spec.check_timeout);
        let agent = start_agent(&vm)?;
        Ok(Checker {
            vm,
            agent,
            pmem,
            fs: spec.golden.fs,
            name: spec.name.to_owned(),
            clean: false,
            seen: None,
            restored,
        })
    }

    /// Was this checker VM restored from a booted state (else cold-booted)?
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Check each distinct crash image once, sharing read-backs through `seen` (with the
    /// campaign's other checkers); `None` checks every image.
    pub fn set_dedupe(&mut self, seen: Option<SharedSeen>) {
        self.seen = seen;
    }

    /// The time of one SSH command that does nothing (`true`) in this checker VM: the
    /// floor of every guest step of a check (for the benchmark).
    pub fn round_trip(&mut self) -> Result<Duration, VmError> {
        let t = Instant::now();
        self.vm.run("true")?;
        Ok(t.elapsed())
    }

    /// Name of this checker VM.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Check one crash image of the state `origin` against its expectation `exp`. With
    /// dedupe on, an image byte-identical to one checked before reuses that read-back and
    /// says so in [`CheckOutcome::same_as`]; the oracle still judges it by `exp`.
    pub fn check(
        &mut self,
        crash_image: &Path,
        exp: &Expectation,
        origin: &StateRef,
    ) -> Result<CheckOutcome, VmError> {
        let start = Instant::now();
        let mut phases = CheckPhases::default();
        let names: Vec<String> = exp.files.keys().cloned().collect();
        let digest = match &self.seen {
            Some(seen) => {
                let t = Instant::now();
                let d =
                    image_digest(crash_image, Scan::Extents).map_err(|source| VmError::HostIo {
                        what: format!("hashing crash image {}", crash_image.display()),
                        source,
                    })?;
                phases.hash_us = micros(t.elapsed());
                let hit = seen.lock().ok().and_then(|s| s.get(&d, &names));
                if let Some(hit) = hit {
                    let t = Instant::now();
                    let (verdict, findings, detail) = judge(&hit.readback, exp);
                    phases.oracle_us = micros(t.elapsed());
                    return Ok(CheckOutcome {
                        verdict,
                        findings,
                        detail,
                        millis: start.elapsed().as_millis() as u64,
                        bytes_written: 0,
                        phases,
                        same_as: Some(hit.origin.clone()),
                    });
                }
                Some(d)
            }
            None => None,
        };
        let sources = exp.sources();
        let patterns = Patterns {
            seed: exp.seed,
            sources: &sources,
        };
        let (readback, bytes_written) =
            self.read_back(crash_image, names.clone(), patterns, &mut phases)?;
        let t = Instant::now();
        let (verdict, findings, detail) = judge(&readback, exp);
        phases.oracle_us = micros(t.elapsed());
        if let (Some(seen), Some(d)) = (&self.seen, digest) {
            if let Ok(mut s) = seen.lock() {
                s.insert(
                    d,
                    names,
                    Seen {
                        readback,
                        origin: origin.clone(),
                    },
                );
            }
        }
        Ok(CheckOutcome {
            verdict,
            findings,
            detail,
            millis: start.elapsed().as_millis() as u64,
            bytes_written,
            phases,
            same_as: None,
        })
    }

    /// Write `crash_image` into the checker, mount it, read `names` back, unmount, fsck the
    /// recovered image on the host: what the checker observed, and the bytes written.
    fn read_back(
        &mut self,
        crash_image: &Path,
        names: Vec<String>,
        patterns: Patterns<'_>,
        phases: &mut CheckPhases,
    ) -> Result<(Readback, u64), VmError> {
        let t = Instant::now();
        if !self.clean {
            self.vm.run(DROP_CACHES)?;
        }
        // From here on the guest may cache blocks of this image.
        self.clean = false;
        let bytes_written =
            sync_blocks(crash_image, self.pmem.path()).map_err(|source| VmError::HostIo {
                what: format!(
                    "writing crash image {} into the checker",
                    crash_image.display()
                ),
                source,
            })?;
        phases.copy_us = micros(t.elapsed());
        // One request: mount, read back, unmount, drop the guest's caches of the device.
        let t = Instant::now();
        let place = CheckPlace {
            device: PMEM_DEVICE,
            fs: self.fs.name(),
            mountpoint: MOUNTPOINT,
            dir: GUEST_DIR,
        };
        let checked = check_image(&mut self.agent, place, names, patterns);
        let round_trip = micros(t.elapsed());
        if let Ok(c) = &checked {
            // The guest's own mount and cleanup times; the rest of the round trip (reading,
            // the way back over SSH, decoding) counts as the read-back.
            phases.mount_us = c.timings.mount_us.min(round_trip);
            phases.umount_us = c.timings.cleanup_us.min(round_trip - phases.mount_us);
        }
        phases.read_us = round_trip - phases.mount_us - phases.umount_us;
        let files = match checked.map(|c| c.image) {
            Ok(CheckedImage::Read(files)) => files,
            Ok(CheckedImage::MountFailed(why)) => {
                self.clean = true;
                self.vm.check_alive("while mounting a crash image")?;
                let dmesg = self.vm.run("dmesg | tail -n 8").unwrap_or_default();
                let detail = format!("{why}\n{dmesg}");
                return Ok((Readback::MountFailed { detail }, bytes_written));
            }
            Err(e) => {
                self.vm.check_alive("while checking a crash image")?;
                return Err(e);
            }
        };
        self.clean = true;
        let t = Instant::now();
        let fsck = match fsck::check_image(self.fs, self.pmem.path()) {
            Ok(()) => Ok(()),
            Err(fsck::FsckError::Corrupt(out)) => Err(out),
            // The check itself failed (timeout, missing tool): nothing is said about the
            // kernel, the image gets an infrastructure verdict.
            Err(fsck::FsckError::Infra(why)) => {
                return Err(VmError::Guest(format!(
                    "host fsck could not check the image: {why}"
                )))
            }
        };
        phases.fsck_us = micros(t.elapsed());
        Ok((Readback::Mounted { files, fsck }, bytes_written))
    }

    /// Shut the checker VM down.
    pub fn stop(self) {
        let _ = self.vm.shutdown();
    }
}
