//! The checker: a long-lived checker VM that mounts crash images (journal recovery runs in
//! the guest, never on the host kernel), reads back the files, and a host-side fsck of the
//! recovered image. Crash images are untrusted: a garbage image gives `mount-failed` or
//! `fs-corrupt`, and a checker VM that stops answering is replaced.

pub mod fsck;

use std::path::Path;
use std::time::{Duration, Instant};

use workloads::oracle::{Expectation, Verdict};

use crate::host::blocks::sync_blocks;
use crate::image::golden::GoldenCopy;
use crate::image::{Filesystem, GoldenImage, GuestImage};
use crate::vm::agent::{read_files, start_agent, GUEST_DIR};
use crate::vm::{Accel, AgentChannel, Vm, VmError, VmSpec};

pub use crate::records::CheckOutcome;

/// One checker VM.
pub struct Checker {
    vm: Vm,
    agent: AgentChannel,
    /// Deleted when the checker goes, after its VM.
    pmem: GoldenCopy,
    fs: Filesystem,
    name: String,
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
        })
    }

    /// Name of this checker VM.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Check one crash image against `exp`.
    pub fn check(
        &mut self,
        crash_image: &Path,
        exp: &Expectation,
    ) -> Result<CheckOutcome, VmError> {
        let start = Instant::now();
        // The guest has /dev/pmem0 unmounted here; drop its block-device cache so it sees
        // the new bytes.
        self.vm
            .run("echo 3 > /proc/sys/vm/drop_caches; blockdev --flushbufs /dev/pmem0")?;
        let bytes_written =
            sync_blocks(crash_image, self.pmem.path()).map_err(|source| VmError::HostIo {
                what: format!(
                    "writing crash image {} into the checker",
                    crash_image.display()
                ),
                source,
            })?;
        let done = |verdict, findings, detail: String| CheckOutcome {
            verdict,
            findings,
            detail,
            millis: start.elapsed().as_millis() as u64,
            bytes_written,
        };
        let mount = self.vm.ssh().exec(&format!(
            "mount -t {} -o dax /dev/pmem0 /mnt 2>&1",
            self.fs.name()
        ))?;
        if mount.status != 0 {
            self.vm.check_alive("while mounting a crash image")?;
            let dmesg = self.vm.run("dmesg | tail -n 8").unwrap_or_default();
            return Ok(done(
                Verdict::MountFailed,
                Vec::new(),
                format!("{}\n{dmesg}", mount.stdout.trim()),
            ));
        }
        let names: Vec<String> = exp.files.keys().cloned().collect();
        let observed = read_files(&mut self.agent, GUEST_DIR, names);
        let umount = self.vm.run("umount /mnt");
        let observed = observed?;
        umount?;
        let result = exp.check(&observed);
        let (verdict, detail) = match (fsck::check_image(self.fs, self.pmem.path()), result.verdict)
        {
            (Ok(()), v) => (v, String::new()),
            // The check itself failed (timeout, missing tool): nothing is said about the
            // kernel, the image gets an infrastructure verdict.
            (Err(fsck::FsckError::Infra(why)), _) => {
                return Err(VmError::Guest(format!(
                    "host fsck could not check the image: {why}"
                )))
            }
            (Err(fsck::FsckError::Corrupt(out)), Verdict::Pass) => (Verdict::FsCorrupt, out),
            (Err(fsck::FsckError::Corrupt(out)), v) => (v, out),
        };
        Ok(done(verdict, result.findings, detail))
    }

    /// Shut the checker VM down.
    pub fn stop(self) {
        let _ = self.vm.shutdown();
    }
}
