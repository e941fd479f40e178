//! The campaign as a use case: from a request (config file, overrides, run directory,
//! resume) to a finished campaign. Resume checks, the kernels prepared, run-info, the
//! kernel-matrix loop with its budget shares, the reports and the judgement of `expect:`
//! all happen here; the caller parses flags before and prints the [`Finished`] after.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::workload_inputs::{workload_inputs, WorkloadInputs};
use super::{CampaignEnv, CampaignError, MatrixKernel};
use crate::cache_dir::{cache_root, workspace_root};
use crate::config::expect::{self, Judgement};
use crate::config::kernels::budget_share;
use crate::config::overrides::Overrides;
use crate::config::shard::{self, describe};
use crate::config::CampaignConfig;
use crate::image::KernelSpec;
use crate::journal::fold::Totals;
use crate::journal::sink::EventSink;
use crate::prepare::KernelSetup;
use crate::records::CrashModel;
use crate::report::Written;
use crate::rundir::{KernelInfo, RunDir, RunInfo};

/// What to run: `powercut campaign`'s flags, parsed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--config` (default: ci/smoke.yaml of this checkout).
    pub config: Option<PathBuf>,
    /// Flags that replace config keys.
    pub overrides: Overrides,
    /// `--output` (default: `<output>/<timestamp>` from the config).
    pub output: Option<PathBuf>,
    /// `--resume`.
    pub resume: bool,
    /// `--cold-boot`.
    pub cold_boot: bool,
    /// `--no-dedupe`: check every crash image, also one byte-identical to an image checked
    /// before.
    pub no_dedupe: bool,
    /// `--junit`.
    pub junit: Option<PathBuf>,
    /// `--debug`.
    pub debug: bool,
}

/// A campaign that ran to its end (or was interrupted after an orderly drain).
#[derive(Debug)]
pub struct Finished {
    /// The run directory.
    pub dir: PathBuf,
    /// Totals over every kernel.
    pub totals: Totals,
    /// Stopped by SIGINT/SIGTERM before every item was done.
    pub interrupted: bool,
    /// The accelerator of the first kernel.
    pub accel: String,
    /// How workload VMs came up (`restore`, `restore (some cold-boot)`, `cold-boot`).
    pub start: String,
    /// The reports written.
    pub reports: Written,
    /// The judgement of `expect:` per kernel (empty without `expect:`).
    pub judgements: Vec<Judgement>,
}

impl Finished {
    /// The status without `expect:`: 130 interrupted, 1 failures, 69 infrastructure, else 0.
    pub fn natural_status(&self) -> i32 {
        use crate::exit;
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.totals.failures > 0 {
            exit::FAILURE
        } else if self.totals.infra > 0 {
            exit::INFRA
        } else {
            exit::PASS
        }
    }

    /// The exit status: the natural one, unless an expected failure did not come.
    pub fn exit_code(&self) -> i32 {
        if self.judgements.is_empty() {
            self.natural_status()
        } else {
            expect::exit_status(&self.judgements, self.natural_status())
        }
    }
}

/// Run the campaign `req` asks for, showing its events on `sink`.
pub fn run(req: &Request, sink: &mut dyn EventSink) -> Result<Finished, CampaignError> {
    let default_out = match configured(req) {
        Ok(c) => c.output,
        Err(e) if req.resume => {
            tracing::debug!("no usable config file for the default output: {e}");
            PathBuf::from("runs")
        }
        Err(e) => return Err(e),
    };
    let (dir, _lock) = run_dir(req, &default_out)?;
    check_output(&dir).map_err(CampaignError::Usage)?;
    let run = RunDir::new(&dir);
    let cfg = checked_config(req, &run)?;
    // Workload inputs are validated before any VM boots: a new campaign reads the files, a
    // resumed one the copies in its run directory.
    let inputs = workload_inputs(&cfg, &run, req.resume).map_err(CampaignError::Usage)?;
    check_expected_items(req, &cfg, &inputs, sink)?;
    let kernels = prepare_kernels(req, &cfg)?;
    let mut info = run_info(&cfg, &kernels);
    if req.resume {
        check_same_kernels(&run, &dir, &info)?;
    }
    let run = record_inputs(req, &dir, &cfg, inputs.new_inputs(), &info)?;
    let accel = kernels[0].1.accel.to_string();
    let (totals, interrupted) = run_kernels(req, &cfg, &run, inputs, kernels, &mut info, sink)?;
    let reports = crate::report::write_reports(&dir, req.junit.as_deref()).map_err(|source| {
        CampaignError::Report {
            what: format!("writing the reports of {}", dir.display()),
            source,
        }
    })?;
    let start = match &info.restore_fallback {
        Some(_) if info.start == "restore" => "restore (some cold-boot)".to_owned(),
        _ => info.start.clone(),
    };
    let judgements = if cfg.expect.is_empty() {
        Vec::new()
    } else {
        crate::report::outcomes_of(&reports.report)
            .iter()
            .map(|k| expect::judge(&cfg.expect, k))
            .collect()
    };
    Ok(Finished {
        dir,
        totals,
        interrupted,
        accel,
        start,
        reports,
        judgements,
    })
}

/// The config file's config with the flags applied.
fn configured(req: &Request) -> Result<CampaignConfig, CampaignError> {
    let path = req
        .config
        .clone()
        .unwrap_or_else(|| workspace_root().join("ci/smoke.yaml"));
    let cfg = CampaignConfig::load(&path).map_err(|e| CampaignError::Usage(e.to_string()))?;
    req.overrides
        .apply(cfg)
        .map_err(|e| CampaignError::Usage(e.to_string()))
}

/// The first top-level key whose value differs between two configs.
fn first_difference(a: &CampaignConfig, b: &CampaignConfig) -> Option<String> {
    let (Ok(serde_yaml::Value::Mapping(a)), Ok(serde_yaml::Value::Mapping(b))) =
        (serde_yaml::to_value(a), serde_yaml::to_value(b))
    else {
        return Some("(unreadable)".into());
    };
    a.iter()
        .find(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str().unwrap_or("?").to_owned())
}

/// The config of a campaign in `run`: a new one's from the file and flags; a resumed one's
/// from its `config.yaml` (with flags on top), refusing a `--config` that differs.
fn campaign_config(req: &Request, run: &RunDir) -> Result<CampaignConfig, CampaignError> {
    if !req.resume {
        return configured(req);
    }
    let usage = |m: String| CampaignError::Usage(m);
    let recorded = run
        .read_config()
        .map_err(|e| usage(e.to_string()))?
        .ok_or_else(|| {
            usage(format!(
                "{} has a journal but no config.yaml",
                run.root().display()
            ))
        })?;
    let cfg = match &req.config {
        Some(_) => configured(req)?,
        None => req
            .overrides
            .apply(recorded.clone())
            .map_err(|e| usage(e.to_string()))?,
    };
    if cfg.shard != recorded.shard {
        return Err(usage(format!(
            "--resume: {} ran shard {} of its campaign; this one would run shard {}: a resumed campaign keeps its shard (drop --shard, or resume the run directory of that shard)",
            run.root().display(),
            describe(recorded.shard),
            describe(cfg.shard)
        )));
    }
    if let Some(field) = first_difference(&recorded, &cfg) {
        return Err(usage(format!(
            "--resume: `{field}` differs from the run directory's config.yaml; a resumed campaign keeps its config (drop the flag, or start a new --output)"
        )));
    }
    Ok(cfg)
}

/// The run directory of `req`: `--output`, checked against `--resume`, or a new one; locked
/// for this campaign (the lock is held until the returned guard is dropped), so two
/// campaigns started at once on one `--output` cannot both pass the journal check and
/// write into one directory.
fn run_dir(
    req: &Request,
    output: &Path,
) -> Result<(PathBuf, crate::cache_dir::lock::CacheLock), CampaignError> {
    let dir = match &req.output {
        Some(d) => d.clone(),
        None => output.join(chrono_stamp()),
    };
    let lock = lock_run_dir(&dir)?;
    let dir = checked_run_dir(req, &dir)?;
    Ok((dir, lock))
}

/// An exclusive lock for the run directory `dir` (in the cache's `locks/`, keyed by the
/// directory's absolute path, so a directory not yet created leaves nothing behind);
/// another campaign holding it is a usage error.
fn lock_run_dir(dir: &Path) -> Result<crate::cache_dir::lock::CacheLock, CampaignError> {
    use sha2::{Digest, Sha256};
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    // The nearest existing ancestor resolved (symlinks), the rest as given.
    let mut base = abs.as_path();
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(c) = base.canonicalize() {
            break c;
        }
        match (base.parent(), base.file_name()) {
            (Some(p), Some(n)) => {
                rest.push(n.to_owned());
                base = p;
            }
            _ => break abs.clone(),
        }
    };
    let key = rest.iter().rev().fold(resolved, |p, n| p.join(n));
    let name = format!(
        "rundir-{}",
        hex::encode(&Sha256::digest(key.as_os_str().as_encoded_bytes())[..12])
    );
    crate::cache_dir::lock::CacheLock::acquire(&cache_root(), &name, Duration::ZERO, |_| {})
        .map_err(|e| match e {
            crate::cache_dir::lock::CacheLockError::Timeout { .. } => CampaignError::Usage(format!(
                "{}: another powercut campaign is running in this run directory; wait for it,                  or choose another --output",
                dir.display()
            )),
            other => CampaignError::Usage(format!("locking the run directory {}: {other}", dir.display())),
        })
}

/// `dir` checked against `--resume`: a journal there only when resuming.
fn checked_run_dir(req: &Request, dir: &Path) -> Result<PathBuf, CampaignError> {
    let usage = |m: String| Err(CampaignError::Usage(m));
    match (&req.output, req.resume) {
        (Some(d), true) if !RunDir::new(d).has_journal() => usage(format!(
            "--resume: {} holds no campaign journal",
            d.display()
        )),
        (Some(d), false) if RunDir::new(d).has_journal() => usage(format!(
            "{} already holds a campaign journal: pass --resume to continue it, or another --output",
            d.display()
        )),
        (Some(d), _) => Ok(d.clone()),
        (None, true) => usage("--resume needs --output <run dir>".into()),
        (None, false) => Ok(dir.to_owned()),
    }
}

/// Check the run directory before any image work, writing nothing: an existing directory
/// this process can write into, or a path whose nearest existing ancestor is such a
/// directory (so it can be created). Returns the one-line usage error otherwise.
fn check_output(dir: &Path) -> Result<(), String> {
    let what = |why: String| format!("--output {}: {why}", dir.display());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some((existing, meta)) = dir
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find_map(|a| std::fs::metadata(a).ok().map(|m| (a, m)))
    else {
        return Err(what("no part of the path exists".into()));
    };
    if !meta.is_dir() {
        return Err(what(if existing == dir {
            "exists and is not a directory: give a directory for the run".into()
        } else {
            format!(
                "cannot be created: {} is not a directory",
                existing.display()
            )
        }));
    }
    // An unnamed temporary file: proves the directory is writable and leaves nothing.
    tempfile::tempfile_in(existing)
        .map(drop)
        .map_err(|e| what(format!("{} cannot be written: {e}", existing.display())))
}

/// The config, with a resumed campaign's journal read first (a damaged journal is refused
/// before any VM boots) and its shard checked against the config's; a cache model that
/// cannot run under the chosen accelerator is refused too.
fn checked_config(req: &Request, run: &RunDir) -> Result<CampaignConfig, CampaignError> {
    let journal = if req.resume {
        Some(crate::journal::read(&run.journal()).map_err(CampaignError::Journal)?)
    } else {
        None
    };
    let cfg = campaign_config(req, run)?;
    if let Some(recorded) = journal.map(|j| j.shard()).filter(|s| *s != cfg.shard) {
        return Err(CampaignError::Usage(format!(
            "--resume: {}:1 records shard {} but config.yaml shard {}: the run directory is inconsistent; start a new --output",
            run.journal().display(),
            describe(recorded),
            describe(cfg.shard)
        )));
    }
    if cfg.crash_model == CrashModel::Cache && cfg.accel == crate::vm::AccelChoice::Kvm {
        return Err(CampaignError::Usage(
            "crash_model `cache` needs TCG: its QEMU plugin traces stores and cache \
              flushes, which KVM executes natively; use --accel tcg (or auto), or --crash-model snapshot"
                .into(),
        ));
    }
    Ok(cfg)
}

/// Items `expect:` names that the campaign does not run: an error for a typo in the
/// config, a note when the command line narrowed the items.
fn check_expected_items(
    req: &Request,
    cfg: &CampaignConfig,
    inputs: &WorkloadInputs,
    sink: &mut dyn EventSink,
) -> Result<(), CampaignError> {
    let names: Vec<String> = (inputs.names().into_iter())
        .chain(cfg.seed_list().iter().map(u64::to_string))
        .collect();
    let unknown = expect::unknown_items(&cfg.expect, &names);
    if unknown.is_empty() {
        return Ok(());
    }
    let msg = format!(
        "expect: names item(s) this campaign does not run: {}",
        unknown.join("; ")
    );
    if !req.overrides.narrows_items() {
        return Err(CampaignError::Usage(msg));
    }
    sink.note(&format!(
        "note: {msg} (narrowed on the command line: those expectations do not apply)"
    ));
    Ok(())
}

/// Every kernel of the campaign (the one `kernel`, or each of `kernels:`), prepared.
fn prepare_kernels(
    req: &Request,
    cfg: &CampaignConfig,
) -> Result<Vec<(Option<String>, KernelSetup)>, CampaignError> {
    let cache = cache_root();
    let matrix = cfg
        .kernel_matrix()
        .map_err(|e| CampaignError::Usage(format!("kernels: {e}")))?;
    let specs: Vec<(Option<String>, KernelSpec)> = if matrix.is_empty() {
        vec![(None, cfg.kernel.clone().unwrap_or_default())]
    } else {
        matrix.into_iter().map(|(n, s)| (Some(n), s)).collect()
    };
    let mut kernels = Vec::new();
    for (name, spec) in specs {
        if let Some(n) = &name {
            eprintln!("kernel matrix: preparing {n}");
        }
        let k = crate::prepare::kernel(spec, cfg, &cache, req.cold_boot, req.debug)?;
        kernels.push((name, k));
    }
    Ok(kernels)
}

/// `run-info.json` of a campaign on `kernels`.
fn run_info(cfg: &CampaignConfig, kernels: &[(Option<String>, KernelSetup)]) -> RunInfo {
    let first = &kernels[0].1;
    RunInfo {
        powercut: env!("CARGO_PKG_VERSION").to_owned(),
        rng: workloads::generator::RNG.to_owned(),
        kernel: first.image.kernel_version.clone(),
        image: first.image.hash.clone(),
        accelerator: first.accel.to_string(),
        start: first.start.mode().to_string(),
        restore_fallback: first.start.fallback().map(str::to_owned),
        modules: first.image.user_modules.clone(),
        kernels: kernels
            .iter()
            .filter_map(|(name, k)| {
                Some(KernelInfo {
                    name: name.clone()?,
                    kernel: k.image.kernel_version.clone(),
                    image: k.image.hash.clone(),
                    modules: k.image.user_modules.clone(),
                })
            })
            .collect(),
        shard: cfg.shard,
        merged: Vec::new(),
    }
}

/// A resumed campaign runs on the kernels (and images) it started on.
fn check_same_kernels(run: &RunDir, dir: &Path, info: &RunInfo) -> Result<(), CampaignError> {
    let Some(before) = run.read_run_info()? else {
        return Ok(());
    };
    let images = |i: &RunInfo| {
        let mut v = vec![(i.kernel.clone(), i.image.clone())];
        v.extend(
            i.kernels
                .iter()
                .map(|k| (k.kernel.clone(), k.image.clone())),
        );
        v
    };
    if images(&before) == images(info) {
        return Ok(());
    }
    Err(CampaignError::Usage(format!(
        "--resume: the campaign in {} ran on kernel {} (image {}); this one would use kernel {} (image {}); results of two kernels do not mix: start a new --output",
        dir.display(), before.kernel, before.image, info.kernel, info.image
    )))
}

/// Create the run directory; a new campaign's workload inputs and config go in; the
/// run-info is (re)written.
fn record_inputs(
    req: &Request,
    dir: &Path,
    cfg: &CampaignConfig,
    new_inputs: Option<&Vec<crate::config::inputs::WorkloadInput>>,
    info: &RunInfo,
) -> Result<RunDir, CampaignError> {
    let what = |w: &str| {
        let w = w.to_owned();
        move |source| CampaignError::Record { what: w, source }
    };
    let run = RunDir::create(dir).map_err(what("creating the run directory"))?;
    if !req.resume {
        if let Some(list) = new_inputs.filter(|l| !l.is_empty()) {
            run.write_workload_inputs(list)
                .map_err(what("copying the workload inputs into the run directory"))?;
        }
        run.write_config(cfg).map_err(what("writing config.yaml"))?;
    }
    run.write_run_info(info)
        .map_err(what("recording the campaign's environment"))?;
    Ok(run)
}

/// The engine once per kernel, each with its share of the time budget left; stops after
/// an interrupted kernel. Returns the totals and whether it was interrupted.
fn run_kernels(
    req: &Request,
    cfg: &CampaignConfig,
    run: &RunDir,
    inputs: WorkloadInputs,
    kernels: Vec<(Option<String>, KernelSetup)>,
    info: &mut RunInfo,
    sink: &mut dyn EventSink,
) -> Result<(Totals, bool), CampaignError> {
    let dir = run.root().to_owned();
    let derived = inputs.derived_names();
    let inputs = inputs.into_named();
    let deadline = cfg
        .budget()
        .map_err(|e| CampaignError::Usage(format!("time_budget: {e}")))?
        .and_then(|b| Instant::now().checked_add(b));
    let count = kernels.len();
    let mut totals = Totals::default();
    for (index, (name, k)) in kernels.into_iter().enumerate() {
        let mut cfg_k = cfg.clone();
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            cfg_k.time_budget = Some(format!("{}s", budget_share(left, count - index).as_secs()));
        }
        let env = CampaignEnv {
            image: k.image,
            golden: k.golden,
            accel: k.accel,
            model: k.model,
            start: k.start,
            dir: dir.clone(),
            debug: req.debug,
            dedupe: !req.no_dedupe,
            inputs: inputs.clone(),
            config_path: dir.join(crate::rundir::CONFIG),
            coverage: k.coverage.map(|mut c| {
                if let Some(p) = &c.patch {
                    let path = dir.join(crate::coverage::PATCH_FILE);
                    if let Err(e) = crate::coverage::write_json(&path, p.as_ref()) {
                        tracing::warn!(
                            "coverage diff: {e} (the report will have no diff coverage)"
                        );
                    }
                }
                c.map_out = Some(dir.join(crate::coverage::map_file(name.as_deref())));
                c.seed_file = crate::coverage::seed_file(name.as_deref());
                c
            }),
            kernel: name.map(|name| MatrixKernel { index, name }),
            guided: None,
        };
        let env = with_guided(cfg, env, &derived)?;
        announce(cfg, &env, index);
        let outcome = super::coordinator::run(&cfg_k, &env, sink)?;
        if let (None, Some(why)) = (&info.restore_fallback, env.start.fallback()) {
            info.restore_fallback = Some(why.to_owned());
            run.write_run_info(info)
                .map_err(|source| CampaignError::Record {
                    what: "recording the restore's fallback to cold boots".into(),
                    source,
                })?;
        }
        let label = env.kernel.as_ref().map_or("", |k| k.name.as_str());
        totals.add(&outcome.totals, label);
        if outcome.interrupted {
            return Ok((totals, true));
        }
    }
    Ok((totals, false))
}

/// `env` with the guided setup of a `--guided` campaign; refused when the kernel has no
/// coverage (the accelerator turned out to be KVM).
fn with_guided(
    cfg: &CampaignConfig,
    mut env: CampaignEnv,
    derived: &[String],
) -> Result<CampaignEnv, CampaignError> {
    if !cfg.guided {
        return Ok(env);
    }
    let Some(cov) = &env.coverage else {
        return Err(CampaignError::Usage(format!(
            "--guided is steered by kernel coverage, which this campaign does not have (accelerator {}: coverage needs TCG and `coverage: true`); use --accel tcg",
            env.accel
        )));
    };
    let map_id = cov.cached_map.file_stem().map_or_else(
        || env.image.kernel_version.clone(),
        |s| s.to_string_lossy().into_owned(),
    );
    let corpus = cfg
        .corpus
        .clone()
        .unwrap_or_else(|| env.dir.join(crate::guided::store::CORPUS_DIR));
    let lock = crate::guided::store::CorpusDir::new(&corpus)
        .lock()
        .map_err(CampaignError::Usage)?;
    env.guided = Some(super::guided::GuidedSetup {
        corpus,
        derived: derived.to_vec(),
        map_id,
        lock: std::sync::Arc::new(lock),
    });
    Ok(env)
}

/// The line that says what one kernel's run of the engine does.
fn announce(cfg: &CampaignConfig, env: &CampaignEnv, index: usize) {
    let (workers, checkers) = cfg.parallelism();
    let names = env.input_names();
    let share = shard::share(&names, &cfg.seed_list(), cfg.shard, index);
    let of_shard = cfg
        .shard
        .map_or_else(String::new, |s| format!("shard {s}: "));
    let guided = env.guided.as_ref().map_or_else(String::new, |g| {
        format!(", guided (corpus {})", g.corpus.display())
    });
    eprintln!(
        "campaign: {of_shard}{} workload(s), {} seeds ({}), {} on {}, crash model {}, mutant {}, {workers} workload VM(s), {checkers} checker VM(s){guided}, run dir {}",
        share.workloads.len(),
        share.seeds.len(),
        cfg.profile,
        cfg.filesystem,
        env.image.kernel_version,
        env.model.name(),
        cfg.mutant.as_deref().unwrap_or("none"),
        env.dir.display()
    );
}

fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("campaign-{secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_directory_is_locked_by_one_campaign_whatever_its_spelling() {
        let parent = tempfile::tempdir().expect("tempdir");
        let link = tempfile::tempdir().expect("tempdir");
        let via = link.path().join("via");
        std::os::unix::fs::symlink(parent.path(), &via).expect("symlink");
        let dir = parent.path().join("not-yet/run");

        let first = lock_run_dir(&dir).expect("free");
        let second = lock_run_dir(&via.join("not-yet/run"));
        let other = lock_run_dir(&parent.path().join("other"));
        drop(first);
        let again = lock_run_dir(&dir);

        let e = second.expect_err("held").to_string();
        assert!(e.contains("another powercut campaign is running"), "{e}");
        assert!(other.is_ok() && again.is_ok());
        assert!(
            !dir.exists(),
            "locking creates nothing in the run directory's place"
        );
    }
}
