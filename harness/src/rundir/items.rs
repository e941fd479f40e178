//! The run directory's record of its workload inputs: `workloads.json` (name and original
//! file of each, in order) and `workloads/<name>/workload.yaml` (an exact copy of the file as
//! it was validated when the campaign started). `--resume`, the reports, `repro` and
//! `minimize` read these copies, never the original files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::Workload;

use super::{write_atomically, RunDir, RunDirError, WORKLOAD};
use crate::config::inputs::WorkloadInput;

/// `workloads.json`.
pub const WORKLOADS_JSON: &str = "workloads.json";

/// One line of `workloads.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedInput {
    /// The workload's name (its item).
    pub name: String,
    /// The file it was copied from, as given to the campaign; for a workload a guided
    /// campaign derived, its corpus directory.
    pub file: String,
    /// For a workload a guided campaign derived (`campaign --guided`): how (the operators
    /// and the corpus entries it came from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<String>,
}

/// A recorded workload input, read back.
#[derive(Debug, Clone)]
pub struct RecordedWorkload {
    /// Name and original file.
    pub input: RecordedInput,
    /// The copy, validated.
    pub workload: Workload,
}

impl RunDir {
    /// `workloads.json`.
    pub fn workloads_json(&self) -> PathBuf {
        self.root.join(WORKLOADS_JSON)
    }

    /// Copy every input into `workloads/<name>/workload.yaml`, then write `workloads.json`
    /// (last, so a manifest never names a missing copy).
    pub fn write_workload_inputs(&self, inputs: &[WorkloadInput]) -> Result<(), RunDirError> {
        for w in inputs {
            let path = self.workload_item_dir(&w.name).join(WORKLOAD);
            write_atomically(&path, w.text.as_bytes()).map_err(|e| RunDirError::io(&path, e))?;
        }
        let manifest: Vec<RecordedInput> = inputs
            .iter()
            .map(|w| RecordedInput {
                name: w.name.clone(),
                file: w.file.display().to_string(),
                derived: None,
            })
            .collect();
        self.write_workload_manifest(&manifest)
    }

    /// Write `workloads.json` as `manifest` (the copies must be there already).
    pub fn write_workload_manifest(&self, manifest: &[RecordedInput]) -> Result<(), RunDirError> {
        let path = self.workloads_json();
        let json = serde_json::to_string_pretty(manifest)
            .map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        write_atomically(&path, json.as_bytes()).map_err(|e| RunDirError::io(&path, e))
    }

    /// Record a workload a guided campaign derived, before it runs: its `yaml` as
    /// `workloads/<name>/workload.yaml`, then its line appended to `workloads.json`, so
    /// `--resume`, the reports, `repro` and `minimize` find it like any workload input.
    pub fn add_derived_workload(
        &self,
        input: RecordedInput,
        yaml: &str,
    ) -> Result<(), RunDirError> {
        let path = self.workload_item_dir(&input.name).join(WORKLOAD);
        write_atomically(&path, yaml.as_bytes()).map_err(|e| RunDirError::io(&path, e))?;
        let mut manifest = self.read_workload_manifest()?;
        manifest.retain(|r| r.name != input.name);
        manifest.push(input);
        self.write_workload_manifest(&manifest)
    }

    /// `workloads.json`, or an empty list when the campaign has no workload inputs.
    pub fn read_workload_manifest(&self) -> Result<Vec<RecordedInput>, RunDirError> {
        let path = self.workloads_json();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| RunDirError::bad(&path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(RunDirError::io(&path, e)),
        }
    }

    /// Every recorded workload input, its copy loaded and validated.
    pub fn read_workload_inputs(&self) -> Result<Vec<RecordedWorkload>, RunDirError> {
        self.read_workload_manifest()?
            .into_iter()
            .map(|input| {
                crate::config::inputs::check_name(&input.name)
                    .map_err(|m| RunDirError::bad(&self.workloads_json(), m))?;
                let workload = self.read_workload_copy(&input.name)?;
                Ok(RecordedWorkload { input, workload })
            })
            .collect()
    }

    /// The copy of workload input `name`, loaded and validated.
    pub fn read_workload_copy(&self, name: &str) -> Result<Workload, RunDirError> {
        let path = self.workload_item_dir(name).join(WORKLOAD);
        let w = workloads::spec::load_workload(&path)
            .map_err(|e| RunDirError::bad(&path, e.to_string()))?;
        if w.name != name {
            return Err(RunDirError::bad(
                &path,
                format!("names workload `{}`, recorded as `{name}`", w.name),
            ));
        }
        Ok(w)
    }
}

/// The run directory a campaign config file sits in (`<run>/config.yaml`).
pub fn run_of_config(config: &Path) -> RunDir {
    RunDir::new(
        config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_inputs_read_back_from_the_copies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        let text = "name: a\nseed: 1\nops:\n  - {op: create, file: f0}\n";
        let input = WorkloadInput {
            name: "a".into(),
            file: PathBuf::from("specs/a.yaml"),
            text: text.into(),
            workload: workloads::spec::parse_workload(text, "a").expect("valid"),
        };

        run.write_workload_inputs(&[input]).expect("write");
        let back = run.read_workload_inputs().expect("read");

        assert_eq!(back.len(), 1);
        assert_eq!(back[0].input.file, "specs/a.yaml");
        assert_eq!(back[0].workload.ops.len(), 1);
        assert!(run.read_workload_copy("b").is_err());
    }

    #[test]
    fn a_derived_workload_is_appended_and_reads_back_like_an_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path());
        let text = "name: guided-1\nseed: 1\nops:\n  - {op: create, file: f0}\n";
        let derived = RecordedInput {
            name: "guided-1".into(),
            file: "/c".into(),
            derived: Some("insert of c000000".into()),
        };

        run.add_derived_workload(derived.clone(), text)
            .expect("add");
        let back = run.read_workload_inputs().expect("read");

        assert_eq!(back.len(), 1);
        assert_eq!(back[0].input, derived);
        assert_eq!(back[0].workload.name, "guided-1");
    }
}
