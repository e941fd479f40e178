//! Kernel module dependency resolution from `modules.dep` (pure: text in, load order out).

use std::collections::{BTreeMap, HashSet};

/// Parsed `modules.dep`: module path (relative to `/lib/modules/<kver>/`) → its dependencies.
#[derive(Debug, Default, Clone)]
pub struct ModuleDeps {
    deps: BTreeMap<String, Vec<String>>,
}

/// Stem of a module path: `kernel/fs/ext4/ext4.ko.xz` → `ext4`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl ModuleDeps {
    /// Parse the text of `modules.dep` (`path: dep dep …` per line).
    pub fn parse(text: &str) -> Self {
        let mut deps = BTreeMap::new();
        for line in text.lines() {
            let Some((path, rest)) = line.split_once(':') else {
                continue;
            };
            let list = rest.split_whitespace().map(str::to_owned).collect();
            deps.insert(path.trim().to_owned(), list);
        }
        ModuleDeps { deps }
    }

    /// Path of the module named `name` (`-` and `_` are the same), if present.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        let want = name.replace('-', "_");
        self.deps
            .keys()
            .find(|p| module_name(p) == want)
            .map(String::as_str)
    }

    /// Load order for `names` with all dependencies, dependencies first, each module once.
    /// Returns the names that were not found in `Err`.
    pub fn resolve(&self, names: &[&str]) -> Result<Vec<String>, Vec<String>> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for name in names {
            match self.path_of(name) {
                Some(p) => self.visit(p, &mut seen, &mut order),
                None => missing.push((*name).to_owned()),
            }
        }
        if missing.is_empty() {
            Ok(order)
        } else {
            Err(missing)
        }
    }

    fn visit(&self, path: &str, seen: &mut HashSet<String>, order: &mut Vec<String>) {
        if !seen.insert(path.to_owned()) {
            return;
        }
        if let Some(ds) = self.deps.get(path) {
            // modules.dep lists deps so that the last must be loaded first.
            for d in ds.iter().rev() {
                self.visit(d, seen, order);
            }
        }
        order.push(path.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/nvdimm/nd_pmem.ko.xz: kernel/drivers/nvdimm/nd_btt.ko.xz kernel/drivers/nvdimm/libnvdimm.ko.xz
kernel/drivers/nvdimm/nd_btt.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
kernel/drivers/nvdimm/libnvdimm.ko.xz:
kernel/drivers/acpi/nfit/nfit.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
";

    #[test]
    fn dependencies_come_first_and_once() {
        let d = ModuleDeps::parse(DEP);
        let order = d
            .resolve(&["nfit", "nd_pmem", "ext4"])
            .expect("all present");
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(
            names,
            [
                "libnvdimm",
                "nfit",
                "nd_btt",
                "nd_pmem",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4"
            ]
        );
    }

    #[test]
    fn missing_modules_are_named() {
        let d = ModuleDeps::parse(DEP);
        assert_eq!(d.resolve(&["ext4", "xfs"]), Err(vec!["xfs".to_owned()]));
    }

    #[test]
    fn dash_and_underscore_are_the_same_name() {
        let d = ModuleDeps::parse("kernel/x/nd-foo.ko: \n");
        assert_eq!(d.path_of("nd_foo"), Some("kernel/x/nd-foo.ko"));
    }
}
