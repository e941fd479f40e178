//! Workload files as campaign input (`workloads:` in the config, `campaign --workload`):
//! expanding the paths (a file, or every `*.yaml` of a directory), loading and validating
//! each workload, and checking that their names can name a run directory entry and are
//! unique. All of it happens before any VM boots; an error names the file.
//!
//! A new campaign copies every workload file into its run directory
//! ([`crate::rundir::RunDir::write_workload_inputs`]); `--resume`, `repro` and `minimize` read
//! those copies, never the original files, so editing a spec does not change a recorded
//! campaign.

use std::path::{Path, PathBuf};

use workloads::Workload;

/// Most workload files one campaign takes.
pub const MAX_WORKLOAD_INPUTS: usize = 1_000;

/// Longest workload name accepted as a campaign item (it names a directory).
pub const MAX_WORKLOAD_NAME: usize = 64;

/// A workload file, loaded and validated.
#[derive(Debug, Clone)]
pub struct WorkloadInput {
    /// The workload's name (the item's name).
    pub name: String,
    /// The file it came from, as given.
    pub file: PathBuf,
    /// Its exact bytes (copied into the run directory).
    pub text: String,
    /// The workload.
    pub workload: Workload,
}

/// Why the workload inputs were refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path cannot be used (missing, unreadable, no workload files, a bad or duplicate
    /// name).
    #[error("{path}: {message}")]
    Bad {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A workload file does not parse or validate (the message names the file and line).
    #[error(transparent)]
    Spec(#[from] workloads::spec::SpecError),
}

fn bad(path: &Path, message: impl Into<String>) -> InputError {
    InputError::Bad {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The workload files named by `paths`: a file as it is, a directory as its `*.yaml` files
/// (sorted by name, not recursive).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| bad(p, e.to_string()))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| bad(p, e.to_string()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "yaml") && f.is_file())
                .collect();
            if files.is_empty() {
                return Err(bad(p, "the directory holds no *.yaml workload file"));
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
        if out.len() > MAX_WORKLOAD_INPUTS {
            return Err(bad(
                p,
                format!("more than {MAX_WORKLOAD_INPUTS} workload files"),
            ));
        }
    }
    Ok(out)
}

/// Is `name` usable as an item name (and a directory name)?
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > MAX_WORKLOAD_NAME || !ok_chars || name.starts_with('.') {
        return Err(format!(
            "workload name `{name}` cannot name a campaign item: use 1 to {MAX_WORKLOAD_NAME} of A-Z a-z 0-9 - _ . (not starting with a dot), e.g. the file stem"
        ));
    }
    Ok(())
}

/// Load and validate one workload file for a pmem of `pmem_bytes`.
pub fn load(file: &Path, pmem_bytes: u64) -> Result<WorkloadInput, InputError> {
    let text =
        workloads::spec::yaml_limits::read_capped(file, workloads::spec::MAX_WORKLOAD_FILE_BYTES)
            .map_err(|e| bad(file, e.to_string()))?;
    let workload = workloads::spec::parse_workload(&text, &file.display().to_string())?;
    workloads::spec::check_fits(&workload, pmem_bytes).map_err(|e| bad(file, e.to_string()))?;
    check_name(&workload.name).map_err(|m| bad(file, m))?;
    Ok(WorkloadInput {
        name: workload.name.clone(),
        file: file.to_owned(),
        text,
        workload,
    })
}

/// Every workload of `paths`, loaded and validated, names unique.
pub fn load_all(paths: &[PathBuf], pmem_bytes: u64) -> Result<Vec<WorkloadInput>, InputError> {
    let mut out: Vec<WorkloadInput> = Vec::new();
    for file in expand(paths)? {
        let w = load(&file, pmem_bytes)?;
        if let Some(other) = out.iter().find(|o| o.name == w.name) {
            return Err(bad(
                &file,
                format!(
                    "workload name `{}` is also the name of {}: names identify campaign items and must be unique",
                    w.name,
                    other.file.display()
                ),
            ));
        }
        out.push(w);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str =
        "name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n  - {op: fsync, file: f0}\n";

    #[test]
    fn a_directory_gives_its_yaml_files_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("b.yaml"),
            SPEC.replace("name: a", "name: b"),
        )
        .expect("b");
        std::fs::write(dir.path().join("a.yaml"), SPEC).expect("a");
        std::fs::write(dir.path().join("notes.md"), "x").expect("md");

        let got = load_all(&[dir.path().to_owned()], 256 << 20).expect("loads");

        let names: Vec<&str> = got.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
    }

    #[test]
    fn duplicate_names_bad_names_and_bad_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c, d) = (
            dir.path().join("a.yaml"),
            dir.path().join("b.yaml"),
            dir.path().join("c.yaml"),
            dir.path().join("d.yaml"),
        );
        std::fs::write(&a, SPEC).expect("a");
        std::fs::write(&b, SPEC).expect("b");
        std::fs::write(&c, SPEC.replace("name: a", "name: ../x")).expect("c");
        std::fs::write(&d, SPEC.replace("fsync, file: f0", "fsync, file: nope")).expect("d");

        let dup = load_all(&[a.clone(), b.clone()], 256 << 20).expect_err("dup");
        let name = load_all(std::slice::from_ref(&c), 256 << 20).expect_err("name");
        let invalid = load_all(std::slice::from_ref(&d), 256 << 20).expect_err("invalid");
        let missing = load_all(&[dir.path().join("none.yaml")], 256 << 20).expect_err("missing");

        assert!(
            dup.to_string().starts_with(&b.display().to_string()),
            "{dup}"
        );
        assert!(dup.to_string().contains("must be unique"), "{dup}");
        assert!(name.to_string().contains("cannot name"), "{name}");
        assert!(
            invalid.to_string().starts_with(&d.display().to_string()),
            "{invalid}"
        );
        assert!(missing.to_string().contains("none.yaml"), "{missing}");
    }
}
