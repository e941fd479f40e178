//! Diff coverage: for each function a patch changes ([`ChangedFunction`], from
//! [`super::patch`]), whether and how much a campaign reached it, from the campaign's
//! [`CoverageSummary`]; the one-line verdict ("your change touches 6 functions; 4 reached
//! (61/80 blocks); not reached: …") and the table `powercut coverage --diff` and the
//! reports show. A changed function is found in the summary by its source name, in the
//! module its file is built into (fs/ext4 in `ext4`, fs/xfs in `xfs`, drivers/nvdimm in
//! `libnvdimm`/`nd_pmem`, anything else in the kernel image), and, when the map knows the
//! function's file, in that file. Pure.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::summary::{CoverageSummary, FunctionCoverage};
use super::symbols::source_name;

/// A function a patch changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChangedFunction {
    /// Source file, relative to the tree.
    pub file: String,
    /// Function name.
    pub name: String,
}

/// What the functions of a patch are, recorded when a campaign starts
/// (`coverage-diff.json` in the run directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchFunctions {
    /// The tree.
    pub tree: String,
    /// The revision the tree was compared against, as given.
    pub rev: String,
    /// That revision's commit.
    pub commit: String,
    /// The functions, in diff order.
    pub functions: Vec<ChangedFunction>,
    /// Changed files (`.c`, `.h`) with no function changed in them.
    pub files_without_functions: Vec<String>,
    /// What was left out of the diff, and why.
    pub notes: Vec<String>,
}

/// How far the campaign reached one changed function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// At least one block ran during the ops.
    Reached,
    /// In the code map, but no block ran during the ops.
    NotReached,
    /// Not in the code map: inlined into its callers (no symbol of its own), not built into
    /// this kernel, in a module powercut does not map, or a name several functions share.
    NotMapped,
}

/// One changed function's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionDiffCoverage {
    /// Source file.
    pub file: String,
    /// Function name.
    pub name: String,
    /// Its symbols in the map (`name`, `name.isra.0 [ext4]`, …).
    pub symbols: Vec<String>,
    /// Blocks of those symbols.
    pub blocks: usize,
    /// Blocks reached during the ops.
    pub reached: usize,
    /// Blocks reached only during set-up (mount, module loading).
    pub setup: usize,
    /// Verdict.
    pub reach: Reach,
}

/// A patch's coverage by one campaign (one kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffCoverage {
    /// Kernel release.
    pub kernel: String,
    /// Tree and revision (`TREE` against `REV` (`commit`)).
    pub patch: String,
    /// Each changed function.
    pub functions: Vec<FunctionDiffCoverage>,
    /// The one-line verdict.
    pub line: String,
    /// What was left out.
    pub notes: Vec<String>,
}

/// The modules a source file's code is built into (`None`: the kernel image).
fn modules_of(file: &str) -> Option<&'static [&'static str]> {
    if file.starts_with("fs/ext4/") {
        Some(&["ext4"])
    } else if file.starts_with("fs/xfs/") {
        Some(&["xfs"])
    } else if file == "drivers/nvdimm/pmem.c" || file == "drivers/nvdimm/pmem.h" {
        Some(&["nd_pmem"])
    } else if file.starts_with("drivers/nvdimm/") {
        Some(&["libnvdimm"])
    } else {
        None
    }
}

/// `name [module]` as its name and module.
fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.strip_suffix(']').and_then(|k| k.rsplit_once(" [")) {
        Some((name, module)) => (name, Some(module)),
        None => (key, None),
    }
}

fn matches(f: &FunctionCoverage, changed: &ChangedFunction) -> bool {
    let (name, module) = split_key(&f.function);
    if source_name(name) != changed.name {
        return false;
    }
    let module_ok = match (modules_of(&changed.file), module) {
        (None, None) => true,
        (Some(ms), Some(m)) => ms
            .iter()
            .any(|x| x.replace('-', "_") == m.replace('-', "_")),
        _ => false,
    };
    // A header's function is compiled into whoever includes it: any file of the map.
    let file_ok =
        changed.file.ends_with(".h") || f.file.as_deref().is_none_or(|x| x == changed.file);
    module_ok && file_ok
}

/// The coverage of `patch`'s functions in `summary`.
pub fn diff_coverage(patch: &PatchFunctions, summary: &CoverageSummary) -> DiffCoverage {
    let functions: Vec<FunctionDiffCoverage> = patch
        .functions
        .iter()
        .map(|c| {
            let hits: Vec<&FunctionCoverage> =
                summary.functions.iter().filter(|f| matches(f, c)).collect();
            let blocks = hits.iter().map(|f| f.blocks).sum();
            let reached = hits.iter().map(|f| f.reached).sum();
            let reach = if hits.is_empty() {
                Reach::NotMapped
            } else if reached > 0 {
                Reach::Reached
            } else {
                Reach::NotReached
            };
            FunctionDiffCoverage {
                file: c.file.clone(),
                name: c.name.clone(),
                symbols: hits.iter().map(|f| f.function.clone()).collect(),
                blocks,
                reached,
                setup: hits.iter().map(|f| f.setup).sum(),
                reach,
            }
        })
        .collect();
    let mut notes = patch.notes.clone();
    if !patch.files_without_functions.is_empty() {
        notes.push(format!(
            "changed outside any function (declarations, macros, data): {}",
            patch.files_without_functions.join(", ")
        ));
    }
    DiffCoverage {
        kernel: summary.kernel.clone(),
        patch: format!("{} against {} ({})", patch.tree, patch.rev, patch.commit),
        line: verdict(&functions),
        functions,
        notes,
    }
}

/// "your change touches 6 functions; 4 reached (61/80 blocks); not reached: a, b; not in the
/// code map (inlined, or not mapped): c".
pub fn verdict(functions: &[FunctionDiffCoverage]) -> String {
    let n = functions.len();
    if n == 0 {
        return "your change touches no function".into();
    }
    let reached: Vec<_> = functions
        .iter()
        .filter(|f| f.reach == Reach::Reached)
        .collect();
    let mapped: Vec<_> = functions
        .iter()
        .filter(|f| f.reach != Reach::NotMapped)
        .collect();
    let names = |r: Reach| -> Vec<&str> {
        functions
            .iter()
            .filter(|f| f.reach == r)
            .map(|f| f.name.as_str())
            .collect()
    };
    let mut line = format!(
        "your change touches {n} function{}; {} reached ({}/{} blocks)",
        if n == 1 { "" } else { "s" },
        reached.len(),
        mapped.iter().map(|f| f.reached).sum::<usize>(),
        mapped.iter().map(|f| f.blocks).sum::<usize>(),
    );
    let not_reached = names(Reach::NotReached);
    if !not_reached.is_empty() {
        let _ = write!(line, "; not reached: {}", not_reached.join(", "));
    }
    let unmapped = names(Reach::NotMapped);
    if !unmapped.is_empty() {
        let _ = write!(
            line,
            "; not in the code map (inlined, or not mapped): {}",
            unmapped.join(", ")
        );
    }
    line
}

/// The diff coverage as text: the verdict, then one line per function.
pub fn render(d: &DiffCoverage) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kernel {}: patch {}", d.kernel, d.patch);
    let _ = writeln!(out, "{}", d.line);
    if !d.functions.is_empty() {
        let _ = writeln!(
            out,
            "  {:<44} {:<34} {:>15}",
            "function", "file", "blocks reached"
        );
    }
    for f in &d.functions {
        let figure = match f.reach {
            Reach::NotMapped => "not in the map".to_owned(),
            _ if f.reached == 0 && f.setup > 0 => format!("0/{} (set-up {})", f.blocks, f.setup),
            _ => format!("{}/{}", f.reached, f.blocks),
        };
        let _ = writeln!(out, "  {:<44} {:<34} {figure:>15}", f.name, f.file);
    }
    for n in &d.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(key: &str, file: Option<&str>, blocks: usize, reached: usize) -> FunctionCoverage {
        FunctionCoverage {
            function: key.into(),
            subsystem: "s".into(),
            file: file.map(str::to_owned),
            blocks,
            reached,
            setup: 0,
        }
    }

    fn changed(file: &str, name: &str) -> ChangedFunction {
        ChangedFunction {
            file: file.into(),
            name: name.into(),
        }
    }

    #[test]
    fn each_changed_function_is_found_in_its_module_and_file() {
        let summary = CoverageSummary {
            kernel: "6.12".into(),
            functions: vec![
                fc("dax_iomap_rw", Some("fs/dax.c"), 20, 12),
                fc("dax_iomap_pmd_fault", Some("fs/dax.c"), 45, 0),
                fc("ext4_sync_file [ext4]", Some("fs/ext4/fsync.c"), 30, 25),
                fc("ext4_sync_file.cold [ext4]", Some("fs/ext4/fsync.c"), 2, 0),
                // The same name in another module is another function.
                fc("xfs_sync_file [xfs]", None, 9, 9),
            ],
            ..CoverageSummary::default()
        };
        let patch = PatchFunctions {
            tree: "/src/linux".into(),
            rev: "HEAD~1".into(),
            commit: "abc".into(),
            functions: vec![
                changed("fs/dax.c", "dax_iomap_rw"),
                changed("fs/dax.c", "dax_iomap_pmd_fault"),
                changed("fs/ext4/fsync.c", "ext4_sync_file"),
                changed("fs/ext4/file.c", "xfs_sync_file"),
                changed("fs/dax.c", "dax_entry_order"),
            ],
            ..PatchFunctions::default()
        };

        let d = diff_coverage(&patch, &summary);

        let reach: Vec<_> = d
            .functions
            .iter()
            .map(|f| (f.reach.clone(), f.reached, f.blocks))
            .collect();
        assert_eq!(
            reach,
            [
                (Reach::Reached, 12, 20),
                (Reach::NotReached, 0, 45),
                (Reach::Reached, 25, 32),
                (Reach::NotMapped, 0, 0),
                (Reach::NotMapped, 0, 0),
            ]
        );
        assert_eq!(
            d.line,
            "your change touches 5 functions; 2 reached (37/97 blocks); not reached: \
             dax_iomap_pmd_fault; not in the code map (inlined, or not mapped): xfs_sync_file, \
             dax_entry_order"
        );
        assert!(render(&d).contains("dax_iomap_pmd_fault"));
    }

    #[test]
    fn a_patch_without_functions_says_so() {
        let d = diff_coverage(
            &PatchFunctions {
                files_without_functions: vec!["fs/dax.c".into()],
                ..PatchFunctions::default()
            },
            &CoverageSummary::default(),
        );
        assert_eq!(d.line, "your change touches no function");
        assert_eq!(d.notes.len(), 1);
    }
}
