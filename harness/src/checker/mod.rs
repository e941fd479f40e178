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
use crate::image::golden::GoldenCopy;
use crate::image::{Filesystem, GoldenImage, GuestImage};
use crate::records::phases::micros;
use crate::records::{CheckPhases, StateRef};
use crate::vm::agent::{read_files, start_agent, GUEST_DIR};
use crate::vm::{Accel, AgentChannel, Vm, VmError, VmSpec};
use dedupe::{judge, Readback, Seen, SharedSeen};

pub use crate::records::CheckOutcome;

/// Drops the guest's caches of `/dev/pmem0` so that it sees the next image's bytes.
const DROP_CACHES: &str = "echo 3 > /proc/sys/vm/drop_caches; blockdev --flushbufs /dev/pmem0";

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
}

impl Checker {
    /// Boot a checker VM named `name` on a copy of `golden`, files in `dir`.
    /// Every guest call of a check times out after `check_timeout` (a hung checker VM is
    /// then replaced by the campaign).
    pub fn start(
        image: &GuestImage,
        golden: &GoldenImage,
        accel: Accel,
        dir: &Path,
        name: &str,
        debug: bool,
        check_timeout: Duration,
    ) -> Result<Checker, VmError> {
        std::fs::create_dir_all(dir).map_err(|source| VmError::HostIo {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let pmem = golden
            .scratch_copy(&dir.join(format!("{name}.pmem")))
            .map_err(|e| VmError::Guest(format!("copying the golden pmem image: {e}")))?;
        let mut spec = VmSpec::new(name, image, pmem.path(), accel, dir);
        spec.debug = debug;
        let vm = Vm::boot(&spec)?;
        vm.ssh().set_timeout(check_timeout);
        let agent = start_agent(&vm)?;
        Ok(Checker {
            vm,
            agent,
            pmem,
            fs: golden.fs,
            name: name.to_owned(),
            clean: false,
            seen: None,
        })
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
        let (readback, bytes_written) = self.read_back(crash_image, names.clone(), &mut phases)?;
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
        let t = Instant::now();
        let mount = self.vm.ssh().exec(&format!(
            "mount -t {} -o dax /dev/pmem0 /mnt 2>&1",
            self.fs.name()
        ))?;
        phases.mount_us = micros(t.elapsed());
        if mount.status != 0 {
            self.vm.check_alive("while mounting a crash image")?;
            let dmesg = self.vm.run("dmesg | tail -n 8").unwrap_or_default();
            let detail = format!("{}\n{dmesg}", mount.stdout.trim());
            return Ok((Readback::MountFailed { detail }, bytes_written));
        }
        let t = Instant::now();
        let observed = read_files(&mut self.agent, GUEST_DIR, names);
        phases.read_us = micros(t.elapsed());
        let t = Instant::now();
        // One round trip: unmount and drop the caches for the next image.
        let umount = self.vm.run(&format!("umount /mnt && {{ {DROP_CACHES}; }}"));
        phases.umount_us = micros(t.elapsed());
        let files = observed?;
        umount?;
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
