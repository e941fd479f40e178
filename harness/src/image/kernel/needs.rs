//! Which modules this kernel's guest must load (pure): from its config and its
//! `modules.dep`/`modules.builtin`. Built-in code needs nothing; code that is a module here
//! is loaded with its dependencies; helpers a kernel no longer has are skipped.

use std::collections::BTreeSet;

use super::config::{KernelConfig, OptionValue};
use crate::image::modules::{module_name, ModuleDeps};
use crate::image::Filesystem;

/// How much a module matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// The guest cannot work without it (built in or a module).
    Required,
    /// Needed to test this file system; left out when the kernel has no such file system.
    Filesystem(Filesystem),
    /// Loaded when this kernel has it as a module; gone or built in elsewhere (crc32c is
    /// library code on 7.x).
    Helper,
}

/// A module the guest may need, the option that builds it, and how much it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestModule {
    /// Module name (`virtio_pci`).
    pub name: &'static str,
    /// Other names the same code has had as a module (the first one present is loaded).
    pub renamed: &'static [&'static str],
    /// The option that builds it (`CONFIG_VIRTIO_PCI`).
    pub option: &'static str,
    /// How much it matters.
    pub importance: Importance,
}

const fn module(name: &'static str, option: &'static str, importance: Importance) -> GuestModule {
    GuestModule {
        name,
        renamed: &[],
        option,
        importance,
    }
}

/// The modules a guest may need, in load order (dependencies come from `modules.dep`).
/// crc32c is looked up at mount time through the crypto API, which `modules.dep` does not
/// show: it is loaded first where it is a module (`crc32c_generic` up to 6.x,
/// `crc32c_cryptoapi` on 7.x, where ext4 and xfs call the crc32c library directly).
pub const GUEST_MODULES: &[GuestModule] = &[
    GuestModule {
        name: "crc32c_generic",
        renamed: &["crc32c_cryptoapi"],
        option: "CONFIG_CRYPTO_CRC32C",
        importance: Importance::Helper,
    },
    module("nfit", "CONFIG_ACPI_NFIT", Importance::Required),
    module("nd_pmem", "CONFIG_BLK_DEV_PMEM", Importance::Required),
    module(
        "ext4",
        "CONFIG_EXT4_FS",
        Importance::Filesystem(Filesystem::Ext4),
    ),
    module(
        "xfs",
        "CONFIG_XFS_FS",
        Importance::Filesystem(Filesystem::Xfs),
    ),
    module("virtio_pci", "CONFIG_VIRTIO_PCI", Importance::Required),
    module("virtio_net", "CONFIG_VIRTIO_NET", Importance::Required),
];

/// Names listed in `modules.builtin` (`kernel/fs/ext4/ext4.ko` per line).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// What the guest loads, and what it found built in or skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModulePlan {
    /// Module paths (relative to the module tree) in load order, dependencies first.
    pub load: Vec<String>,
    /// Needed modules that are built into this kernel.
    pub built_in: Vec<&'static str>,
    /// Modules left out, with the reason.
    pub skipped: Vec<(&'static str, String)>,
}

/// A needed module this kernel does not have in any form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingModule {
    /// Module name.
    pub name: &'static str,
    /// Why it counts as missing.
    pub why: String,
}

/// Decide, for each of [`GUEST_MODULES`], whether it is built in, loaded or skipped.
/// `config` is `None` when the kernel came without one: then a module in `modules.dep`
/// is loaded, and anything else is taken as built in (the boot will tell).
pub fn plan_modules(
    config: Option<&KernelConfig>,
    deps: &ModuleDeps,
    builtin: &BTreeSet<String>,
) -> Result<ModulePlan, Vec<MissingModule>> {
    let mut plan = ModulePlan::default();
    let mut wanted: Vec<&str> = Vec::new();
    let mut missing = Vec::new();
    for m in GUEST_MODULES {
        let setting = config.map(|c| c.get(m.option));
        let present = std::iter::once(m.name)
            .chain(m.renamed.iter().copied())
            .find(|n| deps.path_of(n).is_some());
        match (setting, present) {
            (Some(Some(OptionValue::BuiltIn)), _) => plan.built_in.push(m.name),
            _ if builtin.contains(m.name) => plan.built_in.push(m.name),
            (_, Some(name)) => wanted.push(name),
            (Some(Some(OptionValue::Module)), None) if m.importance != Importance::Helper => {
                missing.push(MissingModule {
                    name: m.name,
                    why: format!(
                        "{}=m, but {}.ko is not in modules.dep (modules not installed?)",
                        m.option, m.name
                    ),
                });
            }
            (None, None) if m.importance == Importance::Required => {
                // No config to ask: assume it is built in; init.sh says if it is not.
                plan.built_in.push(m.name);
            }
            (Some(_), None) if m.importance == Importance::Required => {
                missing.push(MissingModule {
                    name: m.name,
                    why: format!("{} is not set", m.option),
                });
            }
            _ => plan.skipped.push((
                m.name,
                format!("not a module of this kernel ({})", m.option),
            )),
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    plan.load = deps.resolve(&wanted).map_err(|names| {
        names
            .into_iter()
            .map(|n| MissingModule {
                name: GUEST_MODULES
                    .iter()
                    .find(|m| m.name == n || m.renamed.contains(&n.as_str()))
                    .map_or("?", |m| m.name),
                why: "not in modules.dep".into(),
            })
            .collect::<Vec<_>>()
    })?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 6.12: virtio PCI built in, crc32c and the rest modules.
    const DEP_612: &str = "\
kernel/crypto/crc32c_generic.ko.xz:
kernel/drivers/nvdimm/libnvdimm.ko.xz:
kernel/drivers/acpi/nfit/nfit.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
kernel/drivers/nvdimm/nd_pmem.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz
kernel/lib/libcrc32c.ko.xz:
kernel/fs/xfs/xfs.ko.xz: kernel/lib/libcrc32c.ko.xz
kernel/drivers/net/net_failover.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz
";

    const CONFIG_612: &str = "CONFIG_CRYPTO_CRC32C=m\nCONFIG_ACPI_NFIT=m\nCONFIG_BLK_DEV_PMEM=m\n\
CONFIG_EXT4_FS=m\nCONFIG_XFS_FS=m\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=m\n";

    fn names(plan: &ModulePlan) -> Vec<String> {
        plan.load.iter().map(|p| module_name(p)).collect()
    }

    #[test]
    fn built_in_code_is_not_loaded_and_modules_come_with_their_dependencies() {
        let config = KernelConfig::parse(CONFIG_612);
        let deps = ModuleDeps::parse(DEP_612);

        let plan = plan_modules(Some(&config), &deps, &BTreeSet::new()).expect("plan");

        assert_eq!(
            names(&plan),
            [
                "crc32c_generic",
                "libnvdimm",
                "nfit",
                "nd_pmem",
                "jbd2",
                "ext4",
                "libcrc32c",
                "xfs",
                "net_failover",
                "virtio_net"
            ]
        );
        assert_eq!(plan.built_in, ["virtio_pci"]);
    }

    #[test]
    fn virtio_pci_is_loaded_where_it_is_a_module() {
        // Debian 12's 6.1: without virtio_pci the guest has no eth0.
        let config = KernelConfig::parse(&CONFIG_612.replace("VIRTIO_PCI=y", "VIRTIO_PCI=m"));
        let dep = format!(
            "{DEP_612}kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:\n\
             kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz\n"
        );

        let plan =
            plan_modules(Some(&config), &ModuleDeps::parse(&dep), &BTreeSet::new()).expect("plan");

        let loaded = names(&plan);
        let pci = loaded
            .iter()
            .position(|n| n == "virtio_pci")
            .expect("loaded");
        assert_eq!(loaded[pci - 1], "virtio_pci_modern_dev");
        assert!(plan.built_in.is_empty(), "{:?}", plan.built_in);
    }

    #[test]
    fn a_removed_helper_is_skipped_not_fatal() {
        // 7.x: crc32c is library code, no crc32c_generic or libcrc32c module.
        let config = KernelConfig::parse(&CONFIG_612.replace("CONFIG_CRYPTO_CRC32C=m\n", ""));
        let dep = DEP_612
            .replace("kernel/crypto/crc32c_generic.ko.xz:\n", "")
            .replace("kernel/lib/libcrc32c.ko.xz:\n", "")
            .replace(" kernel/lib/libcrc32c.ko.xz", "");

        let plan =
            plan_modules(Some(&config), &ModuleDeps::parse(&dep), &BTreeSet::new()).expect("plan");

        assert!(!names(&plan).iter().any(|n| n.contains("crc32c")));
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "crc32c_generic");
    }

    #[test]
    fn a_renamed_helper_is_loaded_by_its_new_name_and_a_gone_one_is_skipped() {
        // 7.2: CONFIG_CRYPTO_CRC32C=m builds crc32c-cryptoapi.ko, not crc32c_generic.ko.
        let renamed = DEP_612.replace("crc32c_generic.ko.xz", "crc32c-cryptoapi.ko.xz");
        let gone = DEP_612.replace("kernel/crypto/crc32c_generic.ko.xz:\n", "");
        let config = KernelConfig::parse(CONFIG_612);

        let with_new_name = plan_modules(
            Some(&config),
            &ModuleDeps::parse(&renamed),
            &BTreeSet::new(),
        )
        .expect("plan");
        let without = plan_modules(Some(&config), &ModuleDeps::parse(&gone), &BTreeSet::new())
            .expect("a helper never fails the plan");

        assert_eq!(names(&with_new_name)[0], "crc32c_cryptoapi");
        assert!(!names(&without).iter().any(|n| n.starts_with("crc32c")));
        assert_eq!(without.skipped[0].0, "crc32c_generic");
    }

    #[test]
    fn modules_builtin_counts_as_built_in() {
        let deps = ModuleDeps::parse(
            &DEP_612.replace("kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz\n", ""),
        );
        let builtin = parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n");

        let plan = plan_modules(None, &deps, &builtin).expect("plan");

        assert!(plan.built_in.contains(&"ext4"));
        assert!(!names(&plan).contains(&"ext4".to_owned()));
    }

    #[test]
    fn a_module_the_config_promises_but_the_tree_lacks_is_named() {
        let config = KernelConfig::parse(CONFIG_612);
        let dep = DEP_612.replace(
            "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz\n",
            "",
        );

        let missing = plan_modules(Some(&config), &ModuleDeps::parse(&dep), &BTreeSet::new())
            .expect_err("missing");

        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].name, "virtio_net");
        assert!(
            missing[0].why.contains("CONFIG_VIRTIO_NET=m"),
            "{}",
            missing[0].why
        );
    }

    #[test]
    fn without_a_config_modules_present_are_loaded_and_the_rest_assumed_built_in() {
        let deps = ModuleDeps::parse(DEP_612);

        let plan = plan_modules(None, &deps, &BTreeSet::new()).expect("plan");

        assert!(names(&plan).contains(&"virtio_net".to_owned()));
        assert_eq!(plan.built_in, ["virtio_pci"]);
    }
}
