//! The QEMU command line for a powercut guest, built as a pure function of [`QemuConfig`].

use crate::host::shell_quote;
use std::path::PathBuf;

/// Which accelerator QEMU runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation (always works; needed for the cache crash model).
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// Everything that goes on the QEMU command line.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// Accelerator.
    pub accel: Accel,
    /// Guest RAM in MiB (besides the NVDIMM).
    pub memory_mib: u32,
    /// Kernel image.
    pub kernel: PathBuf,
    /// initramfs.
    pub initrd: PathBuf,
    /// Extra kernel command-line words (after the fixed ones).
    pub append: Vec<String>,
    /// NVDIMM backing file.
    pub pmem: PathBuf,
    /// NVDIMM size in bytes (the backing file must be at least this big).
    pub pmem_bytes: u64,
    /// Host port forwarded to the guest's SSH (on 127.0.0.1 only).
    pub ssh_port: u16,
    /// QMP unix socket.
    pub qmp_socket: PathBuf,
    /// Serial console log file.
    pub serial_log: PathBuf,
    /// Extra arguments (e.g. `-plugin …`).
    pub extra: Vec<String>,
    /// Start paused, waiting for a saved state (`-incoming defer`, then QMP
    /// `migrate-incoming`): a restore instead of a boot.
    pub incoming: bool,
}

/// Fixed kernel command line: serial console, a panic ends QEMU (with `-no-reboot`), fixed
/// kernel addresses, and no IO-APIC timer check: under TCG on a loaded host the kernel's
/// `check_timer()` can miss its window and panic with "IO-APIC + timer doesn't work" (seen
/// with load average 24 on the 2-core machine), which is the host's speed, not the kernel
/// under test. `loglevel=5`: the console gets warnings too (`KERN_WARNING`: `WARN_ON()`,
/// lockdep's reports, hung tasks), not only errors, so a guest console shows every kernel
/// complaint a debug kernel (lockdep, KASAN, DEBUG_VM) makes during a workload.
pub const BASE_APPEND: &[&str] = &[
    "console=ttyS0",
    "panic=-1",
    "nokaslr",
    "no_timer_check",
    "quiet",
    "loglevel=5",
];

impl QemuConfig {
    /// The argument vector (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| (*s).to_owned()));
        push(&[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ]);
        push(&["-machine", &format!("pc,nvdimm=on,accel={}", self.accel)]);
        // -cpu max exposes clwb/clflushopt under TCG; -cpu host fails on MSR 0x10a on the
        // PVM hosts we run on, so KVM uses max too.
        push(&["-cpu", "max", "-smp", "1"]);
        push(&["-m", &format!("{}M,slots=2,maxmem=4G", self.memory_mib)]);
        push(&["-kernel", &self.kernel.to_string_lossy()]);
        push(&["-initrd", &self.initrd.to_string_lossy()]);
        let mut append: Vec<String> = BASE_APPEND.iter().map(|s| (*s).to_owned()).collect();
        append.extend(self.append.iter().cloned());
        push(&["-append", &append.join(" ")]);
        push(&[
            "-object",
            &format!(
                "memory-backend-file,id=pm0,share=on,mem-path={},size={}",
                qemu_opt_value(&self.pmem.to_string_lossy()),
                self.pmem_bytes
            ),
            "-device",
            "nvdimm,memdev=pm0,id=nv0",
        ]);
        // restrict=on: the guest reaches nothing (no host services, no outside); the SSH
        // forward into it still works.
        push(&[
            "-netdev",
            &format!(
                "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{}-:22",
                self.ssh_port
            ),
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
        ]);
        // The legacy `file:` form takes the rest of the argument as the path, literally
        // (QEMU's qemu_chr_parse_compat): no comma doubling here, unlike `unix:` below.
        push(&[
            "-serial",
            &format!("file:{}", self.serial_log.to_string_lossy()),
        ]);
        push(&[
            "-qmp",
            &format!(
                "unix:{},server=on,wait=off",
                qemu_opt_value(&self.qmp_socket.to_string_lossy())
            ),
        ]);
        a.extend(self.extra.iter().cloned());
        if self.incoming {
            a.extend(["-incoming".to_owned(), "defer".to_owned()]);
        }
        a
    }

    /// The command line as one shell-quoted string (for `--debug` and error messages).
    pub fn shell_line(&self) -> String {
        std::iter::once(self.qemu.to_string_lossy().into_owned())
            .chain(self.args())
            .map(|s| shell_quote(&s))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `s` as a value inside a QEMU option string (`key=value,key=value`, QEMU's QemuOpts and
/// keyval syntax: `-object`, `-device`, `-plugin`, `-chardev`, the `unix:` socket form):
/// every comma doubled, so that a path with a comma stays one value. Use it for every path
/// or user-given text put into such a string (not for the legacy `-serial file:PATH`, which
/// QEMU takes literally).
pub fn qemu_opt_value(s: &str) -> String {
    s.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> QemuConfig {
        QemuConfig {
            qemu: "qemu-system-x86_64".into(),
            accel: Accel::Tcg,
            memory_mib: 512,
            kernel: "/c/bzImage".into(),
            initrd: "/c/initramfs.cpio".into(),
            append: vec!["powercut.mode=run".into()],
            pmem: "/run/pmem.img".into(),
            pmem_bytes: 256 << 20,
            ssh_port: 40022,
            qmp_socket: "/run/qmp.sock".into(),
            serial_log: "/run/console.log".into(),
            extra: vec![],
            incoming: false,
        }
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn nvdimm_is_a_shared_file_backend() {
        let args = cfg().args();
        assert_eq!(value_after(&args, "-machine"), ["pc,nvdimm=on,accel=tcg"]);
        assert_eq!(
            value_after(&args, "-object"),
            ["memory-backend-file,id=pm0,share=on,mem-path=/run/pmem.img,size=268435456"]
        );
        assert_eq!(value_after(&args, "-device")[0], "nvdimm,memdev=pm0,id=nv0");
        assert_eq!(value_after(&args, "-m"), ["512M,slots=2,maxmem=4G"]);
    }

    #[test]
    fn ssh_is_forwarded_on_loopback_only() {
        let args = cfg().args();
        assert_eq!(
            value_after(&args, "-netdev"),
            ["user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22"]
        );
    }

    #[test]
    fn option_values_double_their_commas() {
        assert_eq!(qemu_opt_value("/a,b/c,,d"), "/a,,b/c,,,,d");
        assert_eq!(qemu_opt_value("/plain/path"), "/plain/path");
        assert_eq!(qemu_opt_value(""), "");
    }

    #[test]
    fn paths_with_commas_stay_one_option_value() {
        let mut c = cfg();
        c.pmem = "/runs/a,b/pmem".into();
        c.serial_log = "/runs/a,b/console.log".into();
        c.qmp_socket = "/runs/a,b/qmp.sock".into();

        let args = c.args();

        assert_eq!(
            value_after(&args, "-object"),
            ["memory-backend-file,id=pm0,share=on,mem-path=/runs/a,,b/pmem,size=268435456"]
        );
        assert_eq!(
            value_after(&args, "-serial"),
            ["file:/runs/a,b/console.log"]
        );
        assert_eq!(
            value_after(&args, "-qmp"),
            ["unix:/runs/a,,b/qmp.sock,server=on,wait=off"]
        );
    }

    #[test]
    fn panics_end_qemu_and_kaslr_is_off() {
        let args = cfg().args();
        assert!(args.iter().any(|a| a == "-no-reboot"));
        let append = value_after(&args, "-append")[0];
        for w in ["console=ttyS0", "panic=-1", "nokaslr", "powercut.mode=run"] {
            assert!(append.split(' ').any(|x| x == w), "{append}");
        }
    }

    #[test]
    fn a_restore_waits_for_its_state_and_a_boot_does_not() {
        let mut c = cfg();
        assert!(value_after(&c.args(), "-incoming").is_empty());

        c.incoming = true;

        assert_eq!(value_after(&c.args(), "-incoming"), ["defer"]);
    }

    #[test]
    fn kvm_config_selects_kvm() {
        let mut c = cfg();
        c.accel = Accel::Kvm;
        assert_eq!(
            value_after(&c.args(), "-machine"),
            ["pc,nvdimm=on,accel=kvm"]
        );
    }

    #[test]
    fn shell_line_quotes_what_needs_it() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("-m"), "-m");
        assert!(cfg()
            .shell_line()
            .contains("-append 'console=ttyS0 panic=-1"));
    }
}
