//! `powercut report merge OUT DIR...`: the run directories of one campaign's shards
//! (`--shard K/N`) become one run directory `OUT`, as if one campaign had run them all. Its
//! journal is the shards' events under one header ([`check::merged_journal`]), so the
//! reports, the summary, `repro` and `minimize` read it like any run directory; nothing is
//! aggregated a second way.
//!
//! `OUT` gets `config.yaml` (the shards' config without `shard`), `run-info.json` (with
//! `merged`: each directory and its shard), `journal.jsonl`, every item directory
//! (`seeds/`, `workloads/`), every failure directory, and each shard's checker logs under
//! `checkers/shard-K-of-N/`. A bucket that several shards found keeps the first shard's
//! directory under its name; another shard's directory of it is kept as
//! `failures/<slug>-shard-K-of-N`, and the bucket's `instances.jsonl` lists the instances of
//! every shard. Crash images and scratch pmem files outside `failures/` are not copied.
//! `OUT` is written under a temporary name beside it and renamed into place.

pub mod check;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use check::{Refusal, Source};

use crate::config::shard::Shard;
use crate::host::{fsync_dir, write_atomically};
use crate::journal::fold::CampaignState;
use crate::journal::{self, JournalError};
use crate::rundir::failure::{write_instances, FailureRecord, Instance, FAILURE_JSON};
use crate::rundir::items::WORKLOADS_JSON;
use crate::rundir::{
    is_scratch, MergedRun, RunDir, RunDirError, RunInfo, FAILURES, RUN_INFO, SEEDS, WORKLOADS,
};

/// Errors of merging run directories.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file of a directory to merge is missing or unreadable as what it should be.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A journal to merge is damaged.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The directories are not shards of one campaign, or overlap.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Writing `OUT` failed.
    #[error(transparent)]
    Write(#[from] RunDirError),
}

impl MergeError {
    /// Bad input (exit 2), as opposed to a failure to write `OUT` (exit 69)?
    pub fn is_bad_input(&self) -> bool {
        match self {
            MergeError::Input { .. } | MergeError::Refused(_) => true,
            MergeError::Journal(e) => !matches!(e, JournalError::Io { .. }),
            MergeError::Write(_) => false,
        }
    }
}

/// What [`merge`] did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The directories merged, in merge (shard) order, with their shards.
    pub runs: Vec<MergedRun>,
    /// Shards of the split that were not given.
    pub missing: Vec<Shard>,
    /// Failure directories kept under another name (a bucket several shards found):
    /// `(from, to)`, relative to their run directories.
    pub renamed: Vec<(String, String)>,
}

/// Merge the run directories `dirs` into the new run directory `out` (see the module doc).
pub fn merge(out: &Path, dirs: &[PathBuf]) -> Result<Merged, MergeError> {
    let occupied = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if occupied || (out.exists() && !out.is_dir()) {
        return Err(MergeError::Input {
            path: out.to_owned(),
            message: "exists and is not an empty directory: merge writes a new run directory"
                .into(),
        });
    }
    let sources = dirs
        .iter()
        .map(|d| load_source(d))
        .collect::<Result<Vec<_>, _>>()?;
    let (order, missing) = check::check(&sources)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| RunDirError::io(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".powercut-merge-")
        .tempdir_in(&parent)
        .map_err(|e| RunDirError::io(&parent, e))?;
    let root = tmp.path();
    let mut renames = vec![BTreeMap::new(); sources.len()];
    let mut renamed = Vec::new();
    for &i in &order {
        let (s, dir) = (&sources[i], &dirs[i]);
        for sub in [SEEDS, WORKLOADS] {
            copy_tree(&dir.join(sub), &root.join(sub), &s.dir, true)?;
        }
        // The kernel's code map: the first shard's (every shard's map of a kernel is one).
        for map in crate::runs::coverage::map_files(dir) {
            let to = root.join(map.file_name().unwrap_or_default());
            if !to.exists() {
                copy_file(&map, &to, &s.dir)?;
            }
        }
        let label = s.shard().map_or_else(
            || "whole".to_owned(),
            |k| format!("shard-{}-of-{}", k.index(), k.count()),
        );
        copy_tree(
            &dir.join("checkers"),
            &root.join("checkers").join(&label),
            &s.dir,
            true,
        )?;
        for name in failure_dirs(&dir.join(FAILURES))? {
            let mut to = name.clone();
            let mut n = 1;
            while root.join(FAILURES).join(&to).exists() {
                to = format!("{name}-{label}");
                if n > 1 {
                    to.push_str(&format!("-{n}"));
                }
                n += 1;
            }
            copy_tree(
                &dir.join(FAILURES).join(&name),
                &root.join(FAILURES).join(&to),
                &s.dir,
                false,
            )?;
            if to != name {
                let (from, to) = (format!("{FAILURES}/{name}"), format!("{FAILURES}/{to}"));
                renamed.push((format!("{}/{from}", s.dir), to.clone()));
                renames[i].insert(from, to);
            }
        }
    }
    let run = RunDir::new(root);
    merge_workload_manifests(&run, &order, dirs)?;
    let first = &sources[order[0]];
    let mut config = first.config.clone();
    config.shard = None;
    run.write_config(&config)?;
    let runs: Vec<MergedRun> = order
        .iter()
        .map(|&i| MergedRun {
            dir: sources[i].dir.clone(),
            shard: sources[i].shard(),
            accelerator: sources[i].info.accelerator.clone(),
        })
        .collect();
    let mut accels: Vec<String> = Vec::new();
    for r in &runs {
        if !accels.contains(&r.accelerator) {
            accels.push(r.accelerator.clone());
        }
    }
    // How the shards' workload VMs started, like the accelerators (comma-separated when
    // they differ), and the first reason any shard fell back to a cold boot.
    let mut starts: Vec<String> = Vec::new();
    for s in &sources {
        if !starts.contains(&s.info.start) {
            starts.push(s.info.start.clone());
        }
    }
    let restore_fallback = sources.iter().find_map(|s| s.info.restore_fallback.clone());
    run.write_run_info(&RunInfo {
        accelerator: accels.join(", "),
        start: starts.join(", "),
        restore_fallback,
        shard: None,
        merged: runs.clone(),
        ..first.info.clone()
    })?;
    let text = check::merged_journal(&sources, &order, &renames).map_err(|e| {
        RunDirError::bad(
            &run.journal(),
            format!("serializing the merged journal: {e}"),
        )
    })?;
    write_atomically(&run.journal(), text.as_bytes())
        .map_err(|e| RunDirError::io(&run.journal(), e))?;
    rewrite_instances(&run)?;
    for name in failure_dirs(&run.failures())? {
        point_reproduce_at(&run.failures().join(name), &out.join(crate::rundir::CONFIG))?;
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, out).map_err(|e| {
        // Leave nothing half-merged behind.
        std::fs::remove_dir_all(&tmp).ok();
        RunDirError::io(out, e)
    })?;
    fsync_dir(&parent).map_err(|e| RunDirError::io(&parent, e))?;
    Ok(Merged {
        runs,
        missing,
        renamed,
    })
}

/// Read one directory to merge: its journal (strictly), `config.yaml` and `run-info.json`,
/// each required.
fn load_source(dir: &Path) -> Result<Source, MergeError> {
    let run = RunDir::new(dir);
    let need = |path: PathBuf| {
        if path.is_file() {
            Ok(path)
        } else if path.exists() {
            // Read as what it is (a FIFO, a device): the reader refuses it by type.
            Ok(path)
        } else {
            Err(MergeError::Input {
                path,
                message: "missing: not a campaign run directory (merge needs its journal.jsonl, config.yaml and run-info.json)".into(),
            })
        }
    };
    let journal = journal::read(&need(run.journal())?)?;
    if journal.events.is_empty() {
        return Err(MergeError::Input {
            path: run.journal(),
            message: "empty: no journal header".into(),
        });
    }
    let config_path = need(run.config())?;
    let config = run
        .read_config()
        .map_err(|e| MergeError::Input {
            path: config_path.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| MergeError::Input {
            path: config_path,
            message: "missing".into(),
        })?;
    let info_path = need(dir.join(RUN_INFO))?;
    let info = run
        .read_run_info()
        .map_err(|e| MergeError::Input {
            path: info_path.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| MergeError::Input {
            path: info_path,
            message: "missing".into(),
        })?;
    Ok(Source {
        dir: dir.display().to_string(),
        config,
        info,
        journal,
    })
}

/// The names of the failure directories under `failures/` (not the hidden ones a writer
/// left half-done, not symlinks), sorted.
fn failure_dirs(dir: &Path) -> Result<Vec<String>, MergeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RunDirError::io(dir, e).into()),
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    Ok(out)
}

/// Copy the tree `from` into `to` (regular files and directories; symlinks and other files
/// are skipped, and with `skip_scratch` crash images and pmem files). A file `to` already
/// holds (from an earlier directory) must have the same bytes: the workload copies every
/// shard of a campaign holds; different bytes mean different campaigns.
fn copy_tree(from: &Path, to: &Path, source: &str, skip_scratch: bool) -> Result<(), MergeError> {
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RunDirError::io(from, e).into()),
    };
    std::fs::create_dir_all(to).map_err(|e| RunDirError::io(to, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RunDirError::io(from, e))?;
        let kind = entry
            .file_type()
            .map_err(|e| RunDirError::io(&entry.path(), e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if kind.is_dir() {
            copy_tree(&src, &dst, source, skip_scratch)?;
        } else if kind.is_file() && !(skip_scratch && is_scratch(&src)) {
            copy_file(&src, &dst, source)?;
        }
    }
    Ok(())
}

/// Copy one file (if it exists) unless `to` already holds the same bytes; different bytes
/// are refused, naming the file.
/// The merged `workloads.json`: every shard lists the same workload inputs (else refused);
/// the workloads a guided shard derived (named per shard) are appended in merge order. No
/// shard with a `workloads.json`: none.
fn merge_workload_manifests(
    run: &RunDir,
    order: &[usize],
    dirs: &[PathBuf],
) -> Result<(), MergeError> {
    let mut inputs: Option<Vec<crate::rundir::items::RecordedInput>> = None;
    let mut derived = Vec::new();
    for &i in order {
        let path = dirs[i].join(WORKLOADS_JSON);
        if !path.is_file() {
            continue;
        }
        let list = RunDir::new(&dirs[i])
            .read_workload_manifest()
            .map_err(|e| MergeError::Input {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let (own, made): (Vec<_>, Vec<_>) = list.into_iter().partition(|r| r.derived.is_none());
        let clash = made.iter().any(|r| {
            derived
                .iter()
                .any(|d: &crate::rundir::items::RecordedInput| d.name == r.name)
        });
        if inputs.as_ref().is_some_and(|f| *f != own) || clash {
            return Err(Refusal(format!(
                "not one campaign: {} differs from the same file of a run directory merged before it (another workload file under the same name?)",
                path.display()
            ))
            .into());
        }
        inputs.get_or_insert(own);
        derived.extend(made);
    }
    if let Some(mut all) = inputs {
        all.extend(derived);
        run.write_workload_manifest(&all)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path, source: &str) -> Result<(), MergeError> {
    if !from.is_file() {
        return Ok(());
    }
    if to.exists() {
        let same = std::fs::read(from).ok() == std::fs::read(to).ok();
        if same {
            return Ok(());
        }
        return Err(Refusal(format!(
            "not one campaign: {} differs from the same file of a run directory merged before it (another workload file under the same name?)",
            from.display()
        ))
        .into());
    }
    std::fs::copy(from, to).map_err(|e| MergeError::Input {
        path: from.to_owned(),
        message: format!("copying it into {source}'s merge: {e}"),
    })?;
    Ok(())
}

/// Make a copied failure directory's reproduce command (`failure.json`, `reproduce.sh`)
/// name the merged run directory's `config.yaml` instead of its shard's, which the merge's
/// reader may not have. A `failure.json` this powercut does not read is left as it is.
fn point_reproduce_at(dir: &Path, config: &Path) -> Result<(), MergeError> {
    let path = dir.join(FAILURE_JSON);
    let Some(mut record) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<FailureRecord>(&b).ok())
    else {
        return Ok(());
    };
    record.reproduce = record.item().reproduce(config, record.kernel.as_deref());
    let json = serde_json::to_string_pretty(&record)
        .map_err(|e| RunDirError::bad(&path, e.to_string()))?;
    write_atomically(&path, json.as_bytes()).map_err(|e| RunDirError::io(&path, e))?;
    let sh = dir.join("reproduce.sh");
    let script = format!(
        "#!/bin/sh\n# Re-run the seed or workload that produced this failure.\n{}\n",
        record.reproduce
    );
    write_atomically(&sh, script.as_bytes()).map_err(|e| RunDirError::io(&sh, e))?;
    Ok(())
}

/// Rewrite `instances.jsonl` of every bucket's directory from the merged journal, so it
/// lists the instances of every shard (as a campaign does when it starts or resumes).
fn rewrite_instances(run: &RunDir) -> Result<(), MergeError> {
    let contents = journal::read(&run.journal())?;
    let mut kernels: Vec<Option<String>> = vec![None];
    kernels.extend(contents.kernel_names().into_iter().map(Some));
    let mut lists: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
    for k in &kernels {
        let state = CampaignState::of(&contents.of_kernel(k.as_deref()));
        for (bucket, dir) in state.failure_dirs() {
            let list = lists.entry(dir.to_owned()).or_default();
            list.extend(state.instances(bucket).filter_map(Instance::of));
        }
    }
    for (dir, list) in lists {
        if run.root().join(&dir).is_dir() {
            write_instances(run, &dir, &list)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
