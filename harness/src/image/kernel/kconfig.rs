//! `powercut kernel kconfig TREE`: turn on in a build tree's `.config` every option
//! powercut needs, through the tree's own `scripts/config`, then `make olddefconfig`, and
//! check that they stayed on (an option whose dependencies are off is turned off again).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::config::{missing_options, KernelConfig, OptionValue, Wants, REQUIREMENTS};
use super::ImageError;
use crate::host::process::ChildGuard;
use crate::image::Filesystem;

/// How long `make olddefconfig` may take.
pub const OLDDEFCONFIG_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Options the requirements depend on (Kconfig `depends on`), turned on first so that
/// `olddefconfig` keeps the requirements: ZONE_DEVICE needs memory hot-plug and -remove
/// with a virtual memmap; virtio-net needs network devices.
pub const DEPENDENCIES: &[&str] = &[
    "CONFIG_BLOCK",
    "CONFIG_BLK_DEV",
    "CONFIG_SPARSEMEM_VMEMMAP",
    "CONFIG_MEMORY_HOTPLUG",
    "CONFIG_MIGRATION",
    "CONFIG_MEMORY_HOTREMOVE",
    "CONFIG_DAX",
    "CONFIG_VIRTIO_MENU",
    "CONFIG_NETDEVICES",
    "CONFIG_NET_CORE",
];

/// What `kconfig` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KconfigReport {
    /// Options that were off (or `=m` where built-in code is needed) and are now on.
    pub enabled: Vec<String>,
}

/// The `scripts/config` arguments that turn on what `config` lacks: `--enable` for each
/// dependency and requirement that is off, or `=m` where it must be built in. Options that
/// are modules and may be stay modules.
pub fn config_arguments(config: &KernelConfig) -> Vec<String> {
    let deps = DEPENDENCIES
        .iter()
        .filter(|o| config.get(o) != Some(&OptionValue::BuiltIn) && !config.enabled(o));
    let reqs = REQUIREMENTS
        .iter()
        .filter_map(|r| match config.get(r.option) {
            Some(OptionValue::BuiltIn) => None,
            Some(OptionValue::Module) if !r.built_in => None,
            _ => Some(&r.option),
        });
    deps.chain(reqs)
        .flat_map(|o| {
            [
                "--enable".to_owned(),
                o.strip_prefix("CONFIG_").unwrap_or(o).to_owned(),
            ]
        })
        .collect()
}

/// Prepare `tree`'s `.config` for powercut (see the module documentation).
pub fn kconfig(tree: &Path) -> Result<KconfigReport, ImageError> {
    let bad = |why: &str| ImageError::KernelInput {
        path: tree.to_owned(),
        why: why.to_owned(),
    };
    let script = tree.join("scripts/config");
    let config_path = tree.join(".config");
    if !script.is_file() {
        return Err(bad("no scripts/config: not a kernel source tree"));
    }
    if !config_path.is_file() {
        return Err(bad(
            "no .config yet: start from one (`make defconfig`, or copy your distribution's)",
        ));
    }
    let read = || -> Result<KernelConfig, ImageError> {
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ImageError::io(&config_path, e))?;
        Ok(KernelConfig::parse(&text))
    };
    let before = read()?;
    let args = config_arguments(&before);
    if !args.is_empty() {
        super::run(
            // scripts/config is a bash script (not always executable in a source tarball).
            Command::new("bash")
                .arg(&script)
                .arg("--file")
                .arg(&config_path)
                .args(&args),
            "scripts/config",
        )?;
    }
    olddefconfig(tree)?;
    let after = read()?;
    let all = Wants {
        filesystems: vec![Filesystem::Ext4, Filesystem::Xfs],
        mutants: true,
    };
    let still = missing_options(&after, &all);
    if !still.is_empty() {
        let lines: Vec<String> = still.iter().map(ToString::to_string).collect();
        return Err(ImageError::KernelConfig {
            kernel: tree.display().to_string(),
            config: config_path,
            missing: lines,
        });
    }
    let enabled = REQUIREMENTS
        .iter()
        .map(|r| r.option)
        .chain(DEPENDENCIES.iter().copied())
        .filter(|o| before.get(o) != after.get(o))
        .map(|o| {
            format!(
                "{o}={}",
                if after.get(o) == Some(&OptionValue::Module) {
                    "m"
                } else {
                    "y"
                }
            )
        })
        .collect();
    Ok(KconfigReport { enabled })
}

/// `make olddefconfig` in `tree`, bounded by [`OLDDEFCONFIG_TIMEOUT`].
fn olddefconfig(tree: &Path) -> Result<(), ImageError> {
    let log = tempfile::NamedTempFile::new().map_err(|e| ImageError::io(tree, e))?;
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(tree).arg("olddefconfig");
    let mut child = ChildGuard::spawn(&mut cmd, log.path()).map_err(|e| ImageError::io(tree, e))?;
    let status = child.wait_timeout(OLDDEFCONFIG_TIMEOUT);
    let tail = crate::host::logtail::console_tail(log.path(), 15);
    let tool = format!("make -C {} olddefconfig", tree.display());
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(ImageError::Tool {
            tool,
            detail: format!("{s}:\n{tail}"),
        }),
        None => {
            child.kill();
            Err(ImageError::Tool {
                tool,
                detail: format!(
                    "did not finish within {} s; killed",
                    OLDDEFCONFIG_TIMEOUT.as_secs()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_off_is_enabled_and_allowed_modules_stay_modules() {
        let mut text = String::new();
        for r in REQUIREMENTS {
            text.push_str(&format!(
                "{}={}\n",
                r.option,
                if r.built_in { "y" } else { "m" }
            ));
        }
        for d in DEPENDENCIES {
            text.push_str(&format!("{d}=y\n"));
        }
        let text = text
            .replace("CONFIG_FS_DAX=y", "CONFIG_FS_DAX=m")
            .replace("CONFIG_XFS_FS=m\n", "")
            .replace(
                "CONFIG_MEMORY_HOTREMOVE=y",
                "# CONFIG_MEMORY_HOTREMOVE is not set",
            );

        let args = config_arguments(&KernelConfig::parse(&text));

        assert_eq!(
            args,
            [
                "--enable",
                "MEMORY_HOTREMOVE",
                "--enable",
                "FS_DAX",
                "--enable",
                "XFS_FS"
            ]
        );
    }

    #[test]
    fn a_config_with_everything_needs_no_change() {
        let mut text = String::new();
        for o in REQUIREMENTS
            .iter()
            .map(|r| r.option)
            .chain(DEPENDENCIES.iter().copied())
        {
            text.push_str(&format!("{o}=y\n"));
        }

        assert!(config_arguments(&KernelConfig::parse(&text)).is_empty());
    }
}
