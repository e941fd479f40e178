//! A kernel's build configuration (`.config`, `boot/config-*`, `/proc/config.gz`) and the
//! options powercut needs from it, each with the reason (pure: text in, missing options out).

use std::collections::BTreeMap;
use std::fmt;

use crate::image::Filesystem;

/// How an option is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// `=y`: built into the kernel.
    BuiltIn,
    /// `=m`: a separate module.
    Module,
    /// Any other value (a number or a string).
    Value(String),
}

/// A parsed kernel configuration. Options that are absent or `is not set` are off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    options: BTreeMap<String, OptionValue>,
}

impl KernelConfig {
    /// Parse `.config` text; lines that are not `CONFIG_X=value` are ignored (comments,
    /// `# CONFIG_X is not set`).
    pub fn parse(text: &str) -> KernelConfig {
        let mut options = BTreeMap::new();
        for line in text.lines() {
            let Some((name, value)) = line.trim().split_once('=') else {
                continue;
            };
            if !name.starts_with("CONFIG_") || name.contains(char::is_whitespace) {
                continue;
            }
            let value = match value {
                "y" => OptionValue::BuiltIn,
                "m" => OptionValue::Module,
                "n" => continue,
                other => OptionValue::Value(other.to_owned()),
            };
            options.insert(name.to_owned(), value);
        }
        KernelConfig { options }
    }

    /// How `option` is set (`None`: off).
    pub fn get(&self, option: &str) -> Option<&OptionValue> {
        self.options.get(option)
    }

    /// Is `option` `=y` or `=m`?
    pub fn enabled(&self, option: &str) -> bool {
        matches!(
            self.get(option),
            Some(OptionValue::BuiltIn | OptionValue::Module)
        )
    }

    /// Number of options that are set.
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Does the text hold no option at all (not a kernel config)?
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// When an option is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// By every guest.
    Always,
    /// To test this file system.
    Filesystem(Filesystem),
    /// To load the mutant module.
    Mutants,
}

/// One option powercut needs and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// `CONFIG_…`.
    pub option: &'static str,
    /// Must it be `=y` (a boolean, or needed before any module can load)?
    pub built_in: bool,
    /// When it is needed.
    pub need: Need,
    /// Why, in words a kernel developer recognises.
    pub why: &'static str,
}

const fn req(option: &'static str, built_in: bool, need: Need, why: &'static str) -> Requirement {
    Requirement {
        option,
        built_in,
        need,
        why,
    }
}

/// Every option powercut needs (what `powercut kernel kconfig` turns on).
pub const REQUIREMENTS: &[Requirement] = &[
    req(
        "CONFIG_BLK_DEV_INITRD",
        true,
        Need::Always,
        "the guest boots from an initramfs",
    ),
    req(
        "CONFIG_DEVTMPFS",
        true,
        Need::Always,
        "the guest's init mounts devtmpfs on /dev",
    ),
    req(
        "CONFIG_SERIAL_8250",
        true,
        Need::Always,
        "the guest console is the serial port ttyS0",
    ),
    req(
        "CONFIG_SERIAL_8250_CONSOLE",
        true,
        Need::Always,
        "the host reads the guest's console on ttyS0",
    ),
    req(
        "CONFIG_ACPI",
        true,
        Need::Always,
        "QEMU describes the NVDIMM in ACPI tables",
    ),
    req(
        "CONFIG_ACPI_NFIT",
        false,
        Need::Always,
        "the NVDIMM is found through the ACPI NFIT",
    ),
    req(
        "CONFIG_LIBNVDIMM",
        false,
        Need::Always,
        "NVDIMM support (the emulated persistent memory)",
    ),
    req(
        "CONFIG_BLK_DEV_PMEM",
        false,
        Need::Always,
        "/dev/pmem0, the block device the file system is on",
    ),
    req(
        "CONFIG_NVDIMM_PFN",
        true,
        Need::Always,
        "the fsdax (pfn) namespace init.sh sets up: raw pmem has no DAX",
    ),
    req(
        "CONFIG_ZONE_DEVICE",
        true,
        Need::Always,
        "fsdax namespaces need ZONE_DEVICE struct pages",
    ),
    req(
        "CONFIG_FS_DAX",
        true,
        Need::Always,
        "DAX mounts (-o dax): what powercut tests",
    ),
    req(
        "CONFIG_NET",
        true,
        Need::Always,
        "the host reaches the guest over SSH",
    ),
    req(
        "CONFIG_INET",
        true,
        Need::Always,
        "the host reaches the guest over SSH (TCP/IP)",
    ),
    req(
        "CONFIG_PCI",
        true,
        Need::Always,
        "the guest's network card is on PCI",
    ),
    req(
        "CONFIG_VIRTIO_PCI",
        false,
        Need::Always,
        "the guest's network card is virtio on PCI",
    ),
    req(
        "CONFIG_VIRTIO_NET",
        false,
        Need::Always,
        "the guest's network card (eth0) is virtio-net",
    ),
    req(
        "CONFIG_EXT4_FS",
        false,
        Need::Filesystem(Filesystem::Ext4),
        "testing ext4",
    ),
    req(
        "CONFIG_XFS_FS",
        false,
        Need::Filesystem(Filesystem::Xfs),
        "testing xfs",
    ),
    req(
        "CONFIG_MODULES",
        true,
        Need::Mutants,
        "mutants are a loadable module",
    ),
    req(
        "CONFIG_KPROBES",
        true,
        Need::Mutants,
        "mutants re-introduce bugs with kprobes",
    ),
    req(
        "CONFIG_KALLSYMS",
        true,
        Need::Mutants,
        "mutants find functions and callers by name",
    ),
];

/// What the kernel will be used for: which requirements apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wants {
    /// File systems to test.
    pub filesystems: Vec<Filesystem>,
    /// Will a mutant be loaded?
    pub mutants: bool,
}

impl Default for Wants {
    /// ext4 on the stock kernel.
    fn default() -> Self {
        Wants {
            filesystems: vec![Filesystem::Ext4],
            mutants: false,
        }
    }
}

impl Wants {
    fn applies(&self, need: Need) -> bool {
        match need {
            Need::Always => true,
            Need::Filesystem(fs) => self.filesystems.contains(&fs),
            Need::Mutants => self.mutants,
        }
    }
}

/// An option the kernel lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingOption {
    /// The requirement.
    pub requirement: Requirement,
    /// How it is set now (`None`: off).
    pub now: Option<OptionValue>,
}

impl fmt::Display for MissingOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.requirement;
        match &self.now {
            Some(OptionValue::Module) => write!(f, "{}=m must be =y: {}", r.option, r.why),
            _ if r.built_in => write!(f, "{}=y is needed: {}", r.option, r.why),
            _ => write!(f, "{}=y or =m is needed: {}", r.option, r.why),
        }
    }
}

/// The requirements that apply to `wants` and `config` does not meet, in table order.
pub fn missing_options(config: &KernelConfig, wants: &Wants) -> Vec<MissingOption> {
    REQUIREMENTS
        .iter()
        .filter(|r| wants.applies(r.need))
        .filter_map(|r| {
            let now = config.get(r.option).cloned();
            let ok = match &now {
                Some(OptionValue::BuiltIn) => true,
                Some(OptionValue::Module) => !r.built_in,
                _ => false,
            };
            (!ok).then_some(MissingOption {
                requirement: *r,
                now,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every requirement met, the way Debian's 6.1 config has it (virtio PCI a module).
    fn complete() -> String {
        let mut text = String::from("# Linux/x86 6.1.0 Kernel Configuration\n");
        for r in REQUIREMENTS {
            let v = if r.built_in { "y" } else { "m" };
            text.push_str(&format!("{}={v}\n", r.option));
        }
        text.push_str("CONFIG_LOCALVERSION=\"-amd64\"\n");
        text
    }

    fn options(missing: &[MissingOption]) -> Vec<&str> {
        missing.iter().map(|m| m.requirement.option).collect()
    }

    #[test]
    fn a_complete_config_misses_nothing() {
        let config = KernelConfig::parse(&complete());
        let all = Wants {
            filesystems: vec![Filesystem::Ext4, Filesystem::Xfs],
            mutants: true,
        };

        assert!(missing_options(&config, &all).is_empty());
        assert_eq!(
            config.get("CONFIG_LOCALVERSION"),
            Some(&OptionValue::Value("\"-amd64\"".into()))
        );
    }

    #[test]
    fn every_missing_option_is_named_with_its_reason() {
        let text = complete()
            .replace("CONFIG_VIRTIO_PCI=m", "# CONFIG_VIRTIO_PCI is not set")
            .replace("CONFIG_FS_DAX=y\n", "")
            .replace("CONFIG_KPROBES=y", "CONFIG_KPROBES=n");
        let config = KernelConfig::parse(&text);
        let wants = Wants {
            filesystems: vec![Filesystem::Ext4],
            mutants: true,
        };

        let missing = missing_options(&config, &wants);

        assert_eq!(
            options(&missing),
            ["CONFIG_FS_DAX", "CONFIG_VIRTIO_PCI", "CONFIG_KPROBES"]
        );
        let lines: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert!(lines[0].contains("DAX mounts"), "{}", lines[0]);
        assert!(
            lines[1].contains("=y or =m") && lines[1].contains("virtio"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("kprobes"), "{}", lines[2]);
    }

    #[test]
    fn a_module_where_built_in_code_is_needed_is_named() {
        let text = complete().replace("CONFIG_FS_DAX=y", "CONFIG_FS_DAX=m");

        let missing = missing_options(&KernelConfig::parse(&text), &Wants::default());

        assert_eq!(options(&missing), ["CONFIG_FS_DAX"]);
        assert!(missing[0].to_string().contains("=m must be =y"));
    }

    #[test]
    fn file_system_and_mutant_options_count_only_when_wanted() {
        let text = complete()
            .replace("CONFIG_XFS_FS=m", "# CONFIG_XFS_FS is not set")
            .replace("CONFIG_KPROBES=y", "");
        let config = KernelConfig::parse(&text);
        let xfs = Wants {
            filesystems: vec![Filesystem::Xfs],
            mutants: false,
        };

        let for_ext4 = missing_options(&config, &Wants::default());
        let for_xfs = missing_options(&config, &xfs);

        assert!(for_ext4.is_empty(), "{for_ext4:?}");
        assert_eq!(options(&for_xfs), ["CONFIG_XFS_FS"]);
    }

    #[test]
    fn text_that_is_not_a_config_has_no_options() {
        let config = KernelConfig::parse("hello\nCONFIG X=y\n=y\n");

        assert!(config.is_empty());
    }
}
