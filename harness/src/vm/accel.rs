//! Choosing the accelerator: `auto` probes KVM for real (boots the guest once) and falls back
//! to TCG, because a `/dev/kvm` that opens is no proof a guest kernel survives in it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Accel, GuestBoot, Vm, VmError, VmSpec};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// Probe KVM once, fall back to TCG.
    Auto,
    /// KVM, no fallback.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

/// The accelerator to use and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccelDecision {
    /// Accelerator.
    pub accel: Accel,
    /// One line for the user ("KVM probe failed: …, using TCG").
    pub reason: String,
}

/// How long the KVM probe boot may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolve `choice` for `image`. `auto` boots the image under KVM once per host boot and
/// image (the verdict is cached in `cache/accel/`).
pub fn resolve_accel(
    choice: AccelChoice,
    image: impl Into<GuestBoot>,
    cache: &Path,
) -> Result<AccelDecision, VmError> {
    match choice {
        AccelChoice::Tcg => Ok(AccelDecision {
            accel: Accel::Tcg,
            reason: "tcg requested".into(),
        }),
        AccelChoice::Kvm => Ok(AccelDecision {
            accel: Accel::Kvm,
            reason: "kvm requested".into(),
        }),
        AccelChoice::Auto => probe(&image.into(), cache),
    }
}

fn probe(image: &GuestBoot, cache: &Path) -> Result<AccelDecision, VmError> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(AccelDecision {
            accel: Accel::Tcg,
            reason: "/dev/kvm is not usable; using TCG".into(),
        });
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let dir = cache.join("accel");
    let key = dir.join(format!("{}-{}.json", boot_id.trim(), image.id));
    if let Some(d) = std::fs::read_to_string(&key)
        .ok()
        .and_then(|t| serde_json::from_str::<AccelDecision>(&t).ok())
    {
        return Ok(d);
    }
    let _ = std::fs::create_dir_all(&dir);
    let scratch = tempfile::tempdir().map_err(VmError::Spawn)?;
    let pmem = scratch.path().join("probe.pmem");
    std::fs::File::create(&pmem)
        .and_then(|f| f.set_len(64 << 20))
        .map_err(VmError::Spawn)?;
    let mut spec = VmSpec::new(
        "kvm-probe",
        image.clone(),
        &pmem,
        Accel::Kvm,
        scratch.path(),
    );
    spec.boot_timeout = PROBE_TIMEOUT;
    let decision = match Vm::boot(&spec) {
        Ok(vm) => {
            let _ = vm.shutdown();
            AccelDecision {
                accel: Accel::Kvm,
                reason: "KVM probe booted the guest".into(),
            }
        }
        Err(e) => {
            let first = e
                .to_string()
                .lines()
                .find(|l| l.contains("KVM") || l.contains("kvm"))
                .unwrap_or("guest did not boot under KVM")
                .trim()
                .to_owned();
            AccelDecision {
                accel: Accel::Tcg,
                reason: format!("KVM probe failed ({first}); using TCG"),
            }
        }
    };
    if let Ok(json) = serde_json::to_string(&decision) {
        let _ = std::fs::write(&key, json);
    }
    Ok(decision)
}
