//! What the cache crash model needs once per campaign: the TCG plugin built from this
//! workspace, the NVDIMM's guest-physical range, and the QEMU version for the trace header.
//!
//! The NVDIMM range is *probed*, not computed: QEMU places the device in its device-memory
//! region at an address that depends on the machine type, `-m`/`maxmem` and the QEMU
//! version. A probe starts QEMU with `-S` (no guest code runs: well under a second), asks
//! QMP `query-memory-devices`, and quits. Every traced run checks the range again on its
//! own VM, so a changed layout is an error, never a silently empty trace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::host::process::ChildGuard;
use crate::image::{GoldenImage, GuestImage};
use crate::vm::cmdline::{qemu_opt_value, QemuConfig};
use crate::vm::{free_port, qemu_binary, Accel, NvdimmRange, QmpClient};

/// How long the `-S` probe may take to answer QMP.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors of preparing the cache model.
#[derive(Debug, thiserror::Error)]
pub enum CacheEnvError {
    /// cargo failed to build the plugin.
    #[error("building the TCG plugin (cargo build -p powercut-plugin) failed:\n{0}")]
    Build(String),
    /// The probe QEMU failed.
    #[error("probing the NVDIMM address with `qemu -S` failed: {0}")]
    Probe(String),
}

/// The cache model's per-campaign setup.
#[derive(Debug, Clone)]
pub struct CacheEnv {
    /// `libpowercut_plugin.so`.
    pub plugin: PathBuf,
    /// Where the NVDIMM sits in guest-physical memory.
    pub nvdimm: NvdimmRange,
    /// `qemu-system-x86_64 --version`, first line's version word.
    pub qemu_version: String,
}

impl CacheEnv {
    /// Build the plugin and probe the NVDIMM range for VMs of `image` with `golden`.
    pub fn prepare(image: &GuestImage, golden: &GoldenImage) -> Result<CacheEnv, CacheEnvError> {
        let plugin = build_plugin(&crate::cache_dir::workspace_root())?;
        let nvdimm = probe_nvdimm(image, golden)?;
        Ok(CacheEnv {
            plugin,
            nvdimm,
            qemu_version: crate::vm::qemu_version(),
        })
    }

    /// The `-plugin` argument tracing into `out` (commas in paths escaped as QEMU wants).
    pub fn plugin_arg(&self, out: &Path) -> String {
        format!(
            "{},base={:#x},size={:#x},out={},qemu={}",
            qemu_opt_value(&self.plugin.to_string_lossy()),
            self.nvdimm.base,
            self.nvdimm.size,
            qemu_opt_value(&out.to_string_lossy()),
            self.qemu_version
        )
    }
}

/// Build `libpowercut_plugin.so` (release) with cargo; returns its path.
pub fn build_plugin(workspace: &Path) -> Result<PathBuf, CacheEnvError> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "--quiet", "-p", "powercut-plugin"])
        .output()
        .map_err(|e| CacheEnvError::Build(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(CacheEnvError::Build(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let so = target_dir.join("release/libpowercut_plugin.so");
    if !so.exists() {
        return Err(CacheEnvError::Build(format!(
            "cargo succeeded but {} is missing",
            so.display()
        )));
    }
    Ok(so)
}

/// Start QEMU with the campaign's memory layout and `-S`, read the NVDIMM range, quit.
pub fn probe_nvdimm(
    image: &GuestImage,
    golden: &GoldenImage,
) -> Result<NvdimmRange, CacheEnvError> {
    let err = |m: String| CacheEnvError::Probe(m);
    let dir = tempfile::Builder::new()
        .prefix("powercut-probe-")
        .tempdir()
        .map_err(|e| err(e.to_string()))?;
    // A sparse stand-in of the golden image's size: the probe never touches the real one.
    let pmem = dir.path().join("probe.pmem");
    std::fs::File::create(&pmem)
        .and_then(|f| f.set_len(golden.bytes))
        .map_err(|e| err(e.to_string()))?;
    let spec = crate::vm::VmSpec::new("probe", image, &pmem, Accel::Tcg, dir.path());
    let cfg = QemuConfig {
        qemu: qemu_binary(),
        accel: Accel::Tcg,
        memory_mib: spec.memory_mib,
        kernel: image.bzimage.clone(),
        initrd: image.initramfs.clone(),
        append: Vec::new(),
        pmem,
        pmem_bytes: golden.bytes,
        ssh_port: free_port().map_err(|e| err(e.to_string()))?,
        qmp_socket: dir.path().join("qmp.sock"),
        serial_log: dir.path().join("console.log"),
        extra: vec!["-S".into()],
        incoming: false,
    };
    let log = dir.path().join("qemu.log");
    let mut guard = ChildGuard::spawn(Command::new(&cfg.qemu).args(cfg.args()), &log)
        .map_err(|e| err(e.to_string()))?;
    let res = QmpClient::connect(&cfg.qmp_socket, Instant::now() + PROBE_TIMEOUT)
        .and_then(|mut q| {
            let r = q.nvdimm("nv0");
            let _ = q.quit();
            r
        })
        .map_err(|e| {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            err(format!("{e}\n{out}"))
        });
    let _ = guard.wait_timeout(Duration::from_secs(5));
    guard.kill();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_arguments_escape_commas_in_paths() {
        let env = CacheEnv {
            plugin: "/w,x/libpowercut_plugin.so".into(),
            nvdimm: NvdimmRange {
                base: 0x1_0000_0000,
                size: 256 << 20,
            },
            qemu_version: "10.0.2".into(),
        };

        let arg = env.plugin_arg(Path::new("/runs/a,b/seeds/1/trace.bin"));

        assert_eq!(
            arg,
            "/w,,x/libpowercut_plugin.so,base=0x100000000,size=0x10000000,out=/runs/a,,b/seeds/1/trace.bin,qemu=10.0.2"
        );
    }
}
