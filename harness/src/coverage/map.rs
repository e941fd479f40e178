//! The code map of one kernel: every function of the reported subsystems with its basic
//! blocks (offsets from its entry) and the subsystem and source file it was grouped into,
//! and how the grouping was made. Built once per kernel ([`super::kernel_code`]), written
//! into the run directory, read by every run's mapping and by the reports. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::subsystems::{Fallback, Subsystem};
use super::symbols::source_name;

/// Version of the map's JSON.
pub const MAP_SCHEMA: u32 = 1;
/// Version of how a map is made (grouping, block rules): part of the cached map's name, so a
/// change rebuilds every kernel's map.
pub const MAP_VERSION: u32 = 4;

/// One function of a reported subsystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapFunction {
    /// Subsystem name.
    pub subsystem: String,
    /// Source file it is defined in, when grouped by sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Length in bytes.
    pub bytes: u32,
    /// Start offsets of its basic blocks, sorted.
    pub blocks: Vec<u32>,
}

/// The code map of one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeMap {
    /// [`MAP_SCHEMA`].
    pub schema: u32,
    /// Kernel release.
    pub kernel: String,
    /// How functions were grouped, one sentence.
    pub grouping: String,
    /// Subsystem names, in report order.
    pub subsystems: Vec<String>,
    /// Functions by key (`name`, `name [module]`).
    pub functions: BTreeMap<String, MapFunction>,
    /// What could not be mapped, and why.
    pub notes: Vec<String>,
}

/// Function definitions of a kernel's source files (file → names), where there are some.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Relative path → names defined there.
    pub files: BTreeMap<String, BTreeSet<String>>,
}

/// The subsystem (index into `subsystems`) and source file of the function `name` of
/// `module` (`None`: the kernel image), if it belongs to one.
pub fn classify<'a>(
    subsystems: &'a [Subsystem],
    sources: Option<&'a Sources>,
    name: &str,
    module: Option<&str>,
) -> Option<(usize, Option<&'a str>)> {
    let base = source_name(name);
    for (i, s) in subsystems.iter().enumerate() {
        let in_module = match (s.module, module) {
            (Some(ms), Some(m)) => ms
                .iter()
                .any(|x| x.replace('-', "_") == m.replace('-', "_")),
            (None, None) => true,
            _ => false,
        };
        if !in_module || s.only.is_some_and(|only| !only.contains(&base)) {
            continue;
        }
        match sources {
            Some(src) if !s.files.is_empty() => {
                let file = s
                    .files
                    .iter()
                    .find(|f| src.files.get(**f).is_some_and(|defs| defs.contains(base)));
                if let Some(f) = file {
                    return Some((i, Some(f)));
                }
            }
            Some(_) if s.module.is_some() => return Some((i, None)),
            _ => {
                let yes = match s.fallback {
                    Fallback::WholeModule => true,
                    Fallback::Prefixes(p) => p.iter().any(|x| base.starts_with(x)),
                    Fallback::Listed => s.only.is_some(),
                };
                if yes {
                    return Some((i, None));
                }
            }
        }
    }
    None
}

/// The sentence a report shows for how the map grouped functions.
pub fn grouping_sentence(sources: Option<&str>) -> String {
    match sources {
        Some(src) => format!(
            "Functions grouped by the source file that defines them ({src}); drivers/nvdimm by module."
        ),
        None => "No kernel sources (ci/kernel-source): ext4, xfs and drivers/nvdimm by module membership \
                 (every function of the module), fs/dax.c by name (dax_*, __dax_*), mm by a list of names."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::subsystems::SUBSYSTEMS;

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.files.insert(
            "fs/dax.c".into(),
            ["dax_iomap_rw", "grab_mapping_entry"]
                .map(String::from)
                .into(),
        );
        s.files.insert(
            "fs/ext4/file.c".into(),
            ["ext4_dax_fault"].map(String::from).into(),
        );
        s
    }

    #[test]
    fn with_sources_functions_go_to_the_file_that_defines_them() {
        let src = sources();
        let name = |i: usize| SUBSYSTEMS[i].name;

        let dax = classify(SUBSYSTEMS, Some(&src), "grab_mapping_entry", None);
        let cold = classify(SUBSYSTEMS, Some(&src), "dax_iomap_rw.cold", None);
        let ext4 = classify(SUBSYSTEMS, Some(&src), "ext4_dax_fault", Some("ext4"));
        let other = classify(SUBSYSTEMS, Some(&src), "ext4_fill_super", Some("ext4"));
        let pmem = classify(SUBSYSTEMS, Some(&src), "pmem_submit_bio", Some("nd_pmem"));
        let mm = classify(SUBSYSTEMS, Some(&src), "insert_pfn", None);

        assert_eq!(
            dax.map(|d| (name(d.0), d.1)),
            Some(("fs/dax.c", Some("fs/dax.c")))
        );
        assert_eq!(cold.map(|d| d.1), Some(Some("fs/dax.c")));
        assert_eq!(ext4.map(|d| d.1), Some(Some("fs/ext4/file.c")));
        assert_eq!(other, None);
        assert_eq!(
            pmem.map(|d| (name(d.0), d.1)),
            Some((SUBSYSTEMS[3].name, None))
        );
        // mm/memory.c is not in these sources: the list alone does not place it.
        assert_eq!(mm, None);
    }

    #[test]
    fn without_sources_modules_and_names_decide() {
        let dax = classify(SUBSYSTEMS, None, "dax_iomap_rw", None);
        let not_dax = classify(SUBSYSTEMS, None, "grab_mapping_entry", None);
        let ext4 = classify(SUBSYSTEMS, None, "ext4_fill_super", Some("ext4"));
        let mm = classify(SUBSYSTEMS, None, "insert_pfn", None);
        let xfs_in_ext4 = classify(SUBSYSTEMS, None, "dax_iomap_rw", Some("ext4"));

        assert_eq!(dax.map(|d| d.0), Some(0));
        assert_eq!(not_dax, None);
        assert_eq!(ext4.map(|d| d.0), Some(1));
        assert_eq!(mm.map(|d| d.0), Some(5));
        assert_eq!(xfs_in_ext4.map(|d| d.0), Some(1));
    }
}
