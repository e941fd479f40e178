//! The subsystems coverage is reported for, and how a function is put in one: by the
//! functions *defined* in the subsystem's source files of that kernel release (Debian's
//! `linux-source` package, unpacked by `ci/kernel-source` into `<cache>/source/<release>/`),
//! else by module membership (ext4, xfs, libnvdimm, nd_pmem) and, for built-in code, by a
//! name rule that says so (the definitions themselves: [`super::csource`]). Pure.

/// One subsystem.
#[derive(Debug, Clone, Copy)]
pub struct Subsystem {
    /// Short name shown in reports.
    pub name: &'static str,
    /// The module its code lives in (`None`: the kernel image).
    pub module: Option<&'static [&'static str]>,
    /// Source files (relative to the tree) whose functions belong to it.
    pub files: &'static [&'static str],
    /// Only these functions of the files (the DAX part of a large file), if set.
    pub only: Option<&'static [&'static str]>,
    /// Without sources: does a function of the right module (or the image) belong here?
    pub fallback: Fallback,
}

impl Subsystem {
    /// The name reports show: without sources it says how the grouping was made instead
    /// (`fs/dax.c (by name, no sources)`).
    pub fn display_name(&self, with_sources: bool) -> String {
        if with_sources {
            return self.name.to_owned();
        }
        let how = match self.fallback {
            Fallback::WholeModule => "whole module",
            Fallback::Prefixes(_) => "by name",
            Fallback::Listed => "listed names",
        };
        format!("{} ({how}, no sources)", self.name)
    }
}

/// How a function is grouped when the kernel's sources are not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Every function of the module.
    WholeModule,
    /// Functions of the image whose source name starts with one of these.
    Prefixes(&'static [&'static str]),
    /// Only the functions listed in `only`.
    Listed,
}

/// The fault path of a DAX mapping in mm (6.12): the PTE/PMD fault handlers, write-protect
/// faults, and the pfn insertions `fs/dax.c` calls.
const MM_DAX_FAULT: &[&str] = &[
    "handle_mm_fault",
    "__handle_mm_fault",
    "handle_pte_fault",
    "do_fault",
    "__do_fault",
    "do_read_fault",
    "do_shared_fault",
    "do_cow_fault",
    "do_page_mkwrite",
    "fault_dirty_shared_page",
    "finish_fault",
    "do_wp_page",
    "wp_pfn_shared",
    "wp_page_shared",
    "create_huge_pmd",
    "wp_huge_pmd",
    "create_huge_pud",
    "wp_huge_pud",
    "vmf_insert_pfn",
    "vmf_insert_pfn_prot",
    "vmf_insert_mixed",
    "vmf_insert_mixed_mkwrite",
    "__vm_insert_mixed",
    "insert_pfn",
    "vmf_insert_pfn_pmd",
    "vmf_insert_pfn_pud",
    "insert_pfn_pmd",
    "insert_pfn_pud",
    "do_huge_pmd_wp_page",
    "zap_huge_pmd",
    "__split_huge_pmd",
    "unmap_mapping_range",
    "unmap_mapping_pages",
];

/// Every subsystem, in report order.
pub const SUBSYSTEMS: &[Subsystem] = &[
    Subsystem {
        name: "fs/dax.c",
        module: None,
        files: &["fs/dax.c"],
        only: None,
        fallback: Fallback::Prefixes(&["dax_", "__dax_"]),
    },
    Subsystem {
        name: "ext4 (file, fsync, inode, extents, page-io)",
        module: Some(&["ext4"]),
        files: &[
            "fs/ext4/file.c",
            "fs/ext4/fsync.c",
            "fs/ext4/inode.c",
            "fs/ext4/extents.c",
            "fs/ext4/page-io.c",
        ],
        only: None,
        fallback: Fallback::WholeModule,
    },
    Subsystem {
        name: "xfs (file, iomap, aops, bmap_util)",
        module: Some(&["xfs"]),
        files: &[
            "fs/xfs/xfs_file.c",
            "fs/xfs/xfs_iomap.c",
            "fs/xfs/xfs_aops.c",
            "fs/xfs/xfs_bmap_util.c",
        ],
        only: None,
        fallback: Fallback::WholeModule,
    },
    Subsystem {
        name: "drivers/nvdimm (libnvdimm, nd_pmem)",
        module: Some(&["libnvdimm", "nd_pmem"]),
        files: &[],
        only: None,
        fallback: Fallback::WholeModule,
    },
    Subsystem {
        name: "drivers/dax/super.c",
        module: None,
        files: &["drivers/dax/super.c"],
        only: None,
        fallback: Fallback::Listed,
    },
    Subsystem {
        name: "mm DAX fault path",
        module: None,
        files: &["mm/memory.c", "mm/huge_memory.c"],
        only: Some(MM_DAX_FAULT),
        fallback: Fallback::Listed,
    },
];

/// The subsystems a guided campaign (`campaign --guided`) steers towards: `fs/dax.c`, the
/// ext4 and xfs DAX, fsync, writeback and fallocate files, and the mm DAX fault path (by
/// [`Subsystem::name`]; the libnvdimm driver and `drivers/dax/super.c` are reached by every
/// run alike and are left out).
pub const GUIDED_TARGETS: &[&str] = &[
    "fs/dax.c",
    "ext4 (file, fsync, inode, extents, page-io)",
    "xfs (file, iomap, aops, bmap_util)",
    "mm DAX fault path",
];

/// Is the subsystem a code map names `display` (a [`Subsystem::display_name`]) one of the
/// [`GUIDED_TARGETS`]?
pub fn is_guided_target(display: &str) -> bool {
    GUIDED_TARGETS.iter().any(|n| {
        display == *n
            || display
                .strip_prefix(n)
                .is_some_and(|rest| rest.starts_with(" (") && rest.ends_with(", no sources)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_sources_the_name_says_how_functions_were_grouped() {
        assert_eq!(SUBSYSTEMS[0].display_name(true), "fs/dax.c");
        assert_eq!(
            SUBSYSTEMS[0].display_name(false),
            "fs/dax.c (by name, no sources)"
        );
        assert!(SUBSYSTEMS[1]
            .display_name(false)
            .ends_with("(whole module, no sources)"));
    }

    #[test]
    fn every_subsystem_has_a_way_to_group_without_sources() {
        for s in SUBSYSTEMS {
            match s.fallback {
                Fallback::WholeModule => assert!(s.module.is_some(), "{}", s.name),
                Fallback::Listed => assert!(s.only.is_some() || !s.files.is_empty()),
                Fallback::Prefixes(p) => assert!(!p.is_empty()),
            }
        }
    }

    #[test]
    fn guided_targets_are_named_with_and_without_sources() {
        let dax = &SUBSYSTEMS[0];
        let nvdimm = &SUBSYSTEMS[3];

        assert!(is_guided_target(&dax.display_name(true)));
        assert!(is_guided_target(&dax.display_name(false)));
        assert!(!is_guided_target(&nvdimm.display_name(true)));
        assert!(!is_guided_target(&nvdimm.display_name(false)));
        assert!(GUIDED_TARGETS
            .iter()
            .all(|t| SUBSYSTEMS.iter().any(|s| s.name == *t)));
    }
}
