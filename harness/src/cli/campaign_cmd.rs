//! `powercut campaign`: the config (file, flags, or the run directory's own on `--resume`),
//! the guest image and accelerator, then the engine, the reports and the exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::campaign_inputs::workload_inputs;
use super::exit;
use crate::cache::cache_root;
use crate::campaign::config::{CampaignConfig, CrashModel};
use crate::campaign::fold::Totals;
use crate::campaign::matrix::{budget_share, verdict_table};
use crate::campaign::shard::{self, describe, Shard};
use crate::campaign::{run_campaign, CampaignEnv, CampaignError, MatrixKernel};
use crate::image::{self, golden_image, GoldenImage, GuestImage, ImageOptions, KernelSpec};
use crate::rundir::{KernelInfo, RunDir, RunInfo};
use crate::trial::cache_env::CacheEnv;
use crate::trial::start::VmStart;
use crate::trial::ModelSetup;
use crate::vm::resolve_accel;
use crate::vm::Accel;
use workloads::oracle::Verdict;

/// `campaign` options (override the config file).
#[derive(Debug, Clone, clap::Args)]
pub struct CampaignArgs {
    /// Config file (default: ci/smoke.yaml of this checkout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default: `<output>/<timestamp>` from the config).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Seeds, "A..B" (B exclusive), "A..=B" or "1,2,7"; "" for none.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Crash-test this workload file, or every *.yaml of this directory (repeatable;
    /// replaces the config's `workloads`). Without --seeds, only the workloads run.
    #[arg(long = "workload", value_name = "PATH")]
    pub workloads: Vec<PathBuf>,
    /// Load this mutant (m1..m7) in workload VMs.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Your own module, loaded in every workload VM after the mount: `PATH [NAME=VALUE...]`
    /// (one quoted argument, like an insmod command line). PATH is a .ko built for the guest
    /// kernel, or a source directory with a Kbuild file (built against the guest kernel's
    /// headers). Repeatable; added to the config's `modules:`.
    #[arg(long = "module", value_name = "PATH [ARGS]")]
    pub user_modules: Vec<String>,
    /// Crash model.
    #[arg(long, value_enum)]
    pub crash_model: Option<CrashModel>,
    /// File system under test (replaces the config's `filesystem`).
    #[arg(long, value_enum)]
    pub filesystem: Option<crate::image::Filesystem>,
    /// Size of the emulated NVDIMM in MiB (replaces the config's `pmem_mib`; xfs needs 512).
    #[arg(long, value_name = "MIB")]
    pub pmem_mib: Option<u64>,
    /// Generator profile of the seeds: smoke, default, deep (replaces the config's `profile`).
    #[arg(long)]
    pub profile: Option<String>,
    /// Workload VMs at once (0 = fit the machine).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Checker VMs (0 = fit the machine).
    #[arg(long)]
    pub checkers: Option<usize>,
    /// Keep drawing seeds until this much time has passed (`8h`, `30m`).
    #[arg(long)]
    pub time_budget: Option<String>,
    /// Accelerator.
    #[arg(long, value_enum)]
    pub accel: Option<crate::vm::AccelChoice>,
    /// Run only shard K of N of the campaign's items (1 ≤ K ≤ N ≤ 1000); merge the shards'
    /// run directories with `powercut report merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Boot every workload VM instead of restoring the saved booted one.
    #[arg(long)]
    pub cold_boot: bool,
    /// Continue the campaign in --output, skipping seeds the journal has finished.
    #[arg(long)]
    pub resume: bool,
    /// Also write JUnit XML (one testcase per seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// The kernel (overrides the config's `kernel`).
    #[command(flatten)]
    pub kernel: super::KernelArgs,
}

/// The config file's config with the flags applied; `None` when neither a file nor a flag
/// was given (a resume then takes the run directory's own).
fn configured(args: &CampaignArgs) -> anyhow::Result<CampaignConfig> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| crate::cache::workspace_root().join("ci/smoke.yaml"));
    let cfg = CampaignConfig::load(&path)?;
    with_flags(cfg, args)
}

fn with_flags(mut cfg: CampaignConfig, args: &CampaignArgs) -> anyhow::Result<CampaignConfig> {
    if !args.workloads.is_empty() {
        cfg.workloads = args.workloads.clone();
        if args.seeds.is_none() {
            cfg.seeds = String::new();
        }
    }
    if let Some(s) = &args.seeds {
        cfg.seeds = s.clone();
    }
    if let Some(m) = &args.mutant {
        cfg.mutant = super::mutant_arg(m);
    }
    for m in &args.user_modules {
        let spec = m
            .parse::<crate::image::user_modules::ModuleSpec>()
            .with_context(|| format!("--module `{m}`"))?;
        cfg.modules.push(spec);
    }
    if let Some(c) = args.crash_model {
        cfg.crash_model = c;
    }
    if let Some(f) = args.filesystem {
        cfg.filesystem = f;
    }
    if let Some(m) = args.pmem_mib {
        cfg.pmem_mib = m;
    }
    if let Some(p) = &args.profile {
        cfg.profile = p.clone();
    }
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if let Some(c) = args.checkers {
        cfg.checkers = c;
    }
    if let Some(b) = &args.time_budget {
        cfg.time_budget = Some(b.clone());
    }
    if let Some(a) = args.accel {
        cfg.accel = a;
    }
    if let Some(s) = args.shard {
        cfg.shard = Some(s);
    }
    if let Some(k) = args.kernel.spec()? {
        cfg.kernel = Some(k);
    }
    cfg.validate("command line")?;
    Ok(cfg)
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
fn campaign_config(args: &CampaignArgs, run: &RunDir) -> anyhow::Result<CampaignConfig> {
    if !args.resume {
        return configured(args);
    }
    let recorded = run
        .read_config()?
        .with_context(|| format!("{} has a journal but no config.yaml", run.root().display()))?;
    let cfg = match &args.config {
        Some(_) => configured(args)?,
        None => with_flags(recorded.clone(), args)?,
    };
    if cfg.shard != recorded.shard {
        anyhow::bail!(
            "--resume: {} ran shard {} of its campaign; this one would run shard {}: a resumed campaign keeps its shard (drop --shard, or resume the run directory of that shard)",
            run.root().display(),
            describe(recorded.shard),
            describe(cfg.shard)
        );
    }
    if let Some(field) = first_difference(&recorded, &cfg) {
        anyhow::bail!(
            "--resume: `{field}` differs from the run directory's config.yaml; a resumed campaign keeps its config (drop the flag, or start a new --output)"
        );
    }
    Ok(cfg)
}

/// The run directory and whether it is a resume, or the usage error to print.
fn run_dir(args: &CampaignArgs, output: &Path) -> Result<PathBuf, String> {
    match (&args.output, args.resume) {
        (Some(d), true) if !RunDir::new(d).has_journal() => Err(format!(
            "--resume: {} holds no campaign journal",
            d.display()
        )),
        (Some(d), false) if RunDir::new(d).has_journal() => Err(format!(
            "{} already holds a campaign journal: pass --resume to continue it, or another --output",
            d.display()
        )),
        (Some(d), _) => Ok(d.clone()),
        (None, true) => Err("--resume needs --output <run dir>".into()),
        (None, false) => Ok(output.join(chrono_stamp())),
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

/// `powercut campaign`: returns the exit code.
pub fn campaign(args: &CampaignArgs, debug: bool) -> anyhow::Result<i32> {
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Ok(exit::USAGE)
    };
    let default_out = match configured(args) {
        Ok(c) => c.output,
        Err(e) if args.resume => {
            tracing::debug!("no usable config file for the default output: {e:#}");
            PathBuf::from("runs")
        }
        Err(e) => return usage(&format!("{e:#}")),
    };
    let dir = match run_dir(args, &default_out).and_then(|d| check_output(&d).map(|()| d)) {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    let run = RunDir::new(&dir);
    let journal = if args.resume {
        // A damaged journal is refused before any VM boots.
        match crate::campaign::journal::read(&run.journal()) {
            Ok(j) => Some(j),
            Err(e) => return usage(&e),
        }
    } else {
        None
    };
    let cfg = match campaign_config(args, &run) {
        Ok(c) => c,
        Err(e) => return usage(&format!("{e:#}")),
    };
    if let Some(recorded) = journal.map(|j| j.shard()).filter(|s| *s != cfg.shard) {
        return usage(&format!(
            "--resume: {}:1 records shard {} but config.yaml shard {}: the run directory is inconsistent; start a new --output",
            run.journal().display(),
            describe(recorded),
            describe(cfg.shard)
        ));
    }
    // Workload inputs are validated before any VM boots: a new campaign reads the files, a
    // resumed one the copies in its run directory.
    let inputs = match workload_inputs(&cfg, &run, args.resume) {
        Ok(i) => i,
        Err(e) => return usage(&e),
    };
    let names: Vec<String> = (inputs.names().into_iter())
        .chain(cfg.seed_list().iter().map(u64::to_string))
        .collect();
    let unknown = crate::campaign::expect::unknown_items(&cfg.expect, &names);
    if !unknown.is_empty() {
        let msg = format!(
            "expect: names item(s) this campaign does not run: {}",
            unknown.join("; ")
        );
        // A typo in the config is an error; items left out by --workload or --seeds are not.
        if args.workloads.is_empty() && args.seeds.is_none() {
            return usage(&msg);
        }
        eprintln!("note: {msg} (narrowed on the command line: those expectations do not apply)");
    }
    let cache_model = cfg.crash_model == CrashModel::Cache;
    if cache_model && cfg.accel == crate::vm::AccelChoice::Kvm {
        return usage(
            &"crash_model `cache` needs TCG: its QEMU plugin traces stores and cache \
              flushes, which KVM executes natively; use --accel tcg (or auto), or --crash-model snapshot",
        );
    }
    let cache = cache_root();
    let matrix = cfg
        .kernel_matrix()
        .map_err(|e| anyhow::anyhow!("kernels: {e}"))?;
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
        kernels.push((
            name,
            prepare_kernel(spec, &cfg, &cache, args.cold_boot, debug)?,
        ));
    }
    let first = &kernels[0].1;
    let info = RunInfo {
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
    };
    if args.resume {
        if let Some(before) = run.read_run_info()? {
            let images = |i: &RunInfo| {
                let mut v = vec![(i.kernel.clone(), i.image.clone())];
                v.extend(
                    i.kernels
                        .iter()
                        .map(|k| (k.kernel.clone(), k.image.clone())),
                );
                v
            };
            if images(&before) != images(&info) {
                return usage(&format!(
                    "--resume: the campaign in {} ran on kernel {} (image {}); this one would use kernel {} (image {}); results of two kernels do not mix: start a new --output",
                    dir.display(), before.kernel, before.image, info.kernel, info.image
                ));
            }
        }
    }
    let run = RunDir::create(&dir).context("creating the run directory")?;
    if !args.resume {
        if let Some(list) = inputs.new_inputs().filter(|l| !l.is_empty()) {
            run.write_workload_inputs(list)
                .context("copying the workload inputs into the run directory")?;
        }
        run.write_config(&cfg).context("writing config.yaml")?;
    }
    run.write_run_info(&info)
        .context("recording the campaign's environment")?;
    let inputs = inputs.into_named();
    let accel = first.accel.to_string();
    let mut info = info;
    let deadline = cfg
        .budget()
        .map_err(|e| anyhow::anyhow!("time_budget: {e}"))?
        .and_then(|b| std::time::Instant::now().checked_add(b));
    let count = kernels.len();
    let mut totals = Totals::default();
    let mut interrupted = false;
    for (index, (name, k)) in kernels.into_iter().enumerate() {
        let mut cfg_k = cfg.clone();
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(std::time::Instant::now());
            cfg_k.time_budget = Some(format!("{}s", budget_share(left, count - index).as_secs()));
        }
        let env = CampaignEnv {
            image: k.image,
            golden: k.golden,
            accel: k.accel,
            model: k.model,
            start: k.start,
            dir: dir.clone(),
            debug,
            progress: std::io::stderr().is_terminal(),
            inputs: inputs.clone(),
            config_path: dir.join(crate::rundir::CONFIG),
            kernel: name.map(|name| MatrixKernel { index, name }),
        };
        let (workers, checkers) = cfg.parallelism();
        let names: Vec<String> = env.inputs.iter().map(|(n, _)| n.clone()).collect();
        let share = shard::share(&names, &cfg.seed_list(), cfg.shard, index);
        let of_shard = cfg
            .shard
            .map_or_else(String::new, |s| format!("shard {s}: "));
        eprintln!(
            "campaign: {of_shard}{} workload(s), {} seeds ({}), {} on {}, crash model {}, mutant {}, {workers} workload VM(s), {checkers} checker VM(s), run dir {}",
            share.workloads.len(),
            share.seeds.len(),
            cfg.profile,
            cfg.filesystem,
            env.image.kernel_version,
            env.model.name(),
            cfg.mutant.as_deref().unwrap_or("none"),
            dir.display()
        );
        let outcome = match run_campaign(&cfg_k, &env) {
            Ok(o) => o,
            Err(e @ CampaignError::Journal(_)) => return usage(&e),
            Err(e) => {
                eprintln!("error: {e}");
                crate::vm::process::kill_all();
                return Ok(exit::INFRA);
            }
        };
        if let (None, Some(why)) = (&info.restore_fallback, env.start.fallback()) {
            info.restore_fallback = Some(why.to_owned());
            run.write_run_info(&info)
                .context("recording the restore's fallback to cold boots")?;
        }
        let label = env.kernel.as_ref().map_or("", |k| k.name.as_str());
        totals.add(&outcome.totals, label);
        if outcome.interrupted {
            interrupted = true;
            break;
        }
    }
    let reports = crate::report::write_reports(&dir, args.junit.as_deref())
        .with_context(|| format!("writing the reports of {}", dir.display()))?;
    let start = match &info.restore_fallback {
        Some(_) if info.start == "restore" => "restore (some cold-boot)".to_owned(),
        _ => info.start.clone(),
    };
    println!(
        "{}",
        crate::ui::summary_table(&totals, &accel, &start, &dir)
    );
    if !reports.report.kernels.is_empty() {
        let rows: Vec<_> = reports
            .report
            .kernels
            .iter()
            .map(|k| {
                let by = k
                    .report
                    .by_verdict
                    .iter()
                    .filter_map(|(v, n)| Some((v.parse::<Verdict>().ok()?, *n)))
                    .collect();
                (k.name.clone(), by, k.report.totals.clone())
            })
            .collect();
        println!("{}", verdict_table(&rows));
    }
    println!("  report: {}", reports.html.display());
    if let Some(j) = &reports.junit {
        println!("  junit: {}", j.display());
    }
    let natural = if interrupted {
        130
    } else if totals.failures > 0 {
        exit::FAILURE
    } else if totals.infra > 0 {
        exit::INFRA
    } else {
        exit::PASS
    };
    let fstests = crate::report::fstests::summary_lines(&reports.report);
    if cfg.expect.is_empty() {
        print!("{fstests}");
        return Ok(natural);
    }
    let judgements: Vec<_> = crate::campaign::expect::outcomes_of(&reports.report)
        .iter()
        .map(|k| crate::campaign::expect::judge(&cfg.expect, k))
        .collect();
    println!("\n  expectations (`expect:` of the config)");
    for j in &judgements {
        println!("  {j}");
    }
    print!("{fstests}");
    Ok(crate::campaign::expect::exit_status(&judgements, natural))
}

/// One kernel of a campaign, ready to run: its image, accelerator, golden pmem and crash
/// model.
struct KernelSetup {
    image: GuestImage,
    accel: Accel,
    golden: GoldenImage,
    model: ModelSetup,
    start: VmStart,
}

/// Resolve and prepare one kernel spec: the one call every kernel of a campaign (the one
/// `kernel`, or each of `kernels:`) goes through.
fn prepare_kernel(
    spec: KernelSpec,
    cfg: &CampaignConfig,
    cache: &Path,
    cold_boot: bool,
    debug: bool,
) -> anyhow::Result<KernelSetup> {
    let (image, _) = image::build_image(&ImageOptions {
        cache: cache.to_owned(),
        kernel: spec,
        wants: cfg.kernel_wants(),
        modules: cfg.modules.clone(),
    })
    .context("building the guest image")?;
    let accel = if cfg.crash_model == CrashModel::Cache {
        crate::vm::accel::AccelDecision {
            accel: crate::vm::Accel::Tcg,
            reason: "the cache crash model's tracing plugin needs TCG".into(),
        }
    } else {
        resolve_accel(cfg.accel, &image, cache).context("choosing the accelerator")?
    };
    eprintln!("accelerator: {} ({})", accel.accel, accel.reason);
    let golden = golden_image(
        &image,
        cfg.filesystem,
        cfg.pmem_mib << 20,
        accel.accel,
        cache,
        debug,
    )
    .context("building the golden pmem image")?;
    let model = model_setup(cfg.crash_model == CrashModel::Cache, &image, &golden, cfg)?;
    let start =
        super::image_cmd::vm_start(cold_boot, &image, &golden, accel.accel, model.name(), debug);
    Ok(KernelSetup {
        image,
        accel: accel.accel,
        golden,
        model,
        start,
    })
}

/// The crash model's setup: for the cache model, the tracing plugin and the NVDIMM probe
/// (said once on stderr); for the snapshot model nothing to prepare.
pub(super) fn model_setup(
    cache_model: bool,
    image: &GuestImage,
    golden: &GoldenImage,
    cfg: &CampaignConfig,
) -> anyhow::Result<ModelSetup> {
    if !cache_model {
        return Ok(ModelSetup::Snapshot);
    }
    let env = CacheEnv::prepare(image, golden).context("preparing the cache crash model")?;
    eprintln!(
        "cache model: plugin {}, NVDIMM at {:#x} (+{:#x}), QEMU {}",
        env.plugin.display(),
        env.nvdimm.base,
        env.nvdimm.size,
        env.qemu_version
    );
    Ok(ModelSetup::Cache {
        env,
        cfg: cfg.cache.clone(),
    })
}

fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("campaign-{secs}")
}
