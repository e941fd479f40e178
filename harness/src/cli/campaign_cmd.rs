//! `powercut campaign` and `powercut run --seed N`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

use super::exit;
use crate::cache::cache_root;
use crate::campaign::config::{CampaignConfig, CrashModel};
use crate::campaign::{run_campaign, CampaignEnv};
use crate::image::{self, golden_image, ImageOptions};
use crate::vm::resolve_accel;

/// `campaign` options (override the config file).
#[derive(Debug, Clone, clap::Args)]
pub struct CampaignArgs {
    /// Config file (default: ci/smoke.yaml of this checkout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default: `<output>/<timestamp>` from the config).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Seeds, "A..B" (B exclusive), "A..=B" or "1,2,7".
    #[arg(long)]
    pub seeds: Option<String>,
    /// Load this mutant (m1..m5) in workload VMs.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Crash model.
    #[arg(long, value_enum)]
    pub crash_model: Option<CrashModel>,
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
    /// Continue the campaign in --output, skipping seeds the journal has finished.
    #[arg(long)]
    pub resume: bool,
    /// Also write JUnit XML (one testcase per seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

fn load_config(args: &CampaignArgs) -> anyhow::Result<CampaignConfig> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| crate::cache::workspace_root().join("ci/smoke.yaml"));
    let mut cfg = CampaignConfig::load(&path)?;
    if let Some(s) = &args.seeds {
        cfg.seeds = s.clone();
    }
    if let Some(m) = &args.mutant {
        cfg.mutant = Some(m.clone());
    }
    if let Some(c) = args.crash_model {
        cfg.crash_model = c;
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
    cfg.validate("command line")?;
    Ok(cfg)
}

/// `powercut campaign`: returns the exit code.
pub fn campaign(args: &CampaignArgs, debug: bool) -> anyhow::Result<i32> {
    let cfg = match load_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let cache_model = cfg.crash_model == CrashModel::Cache;
    if cache_model && cfg.accel == crate::vm::AccelChoice::Kvm {
        eprintln!(
            "error: crash_model `cache` needs TCG: its QEMU plugin traces stores and cache \
             flushes, which KVM executes natively; use --accel tcg (or auto), or --crash-model snapshot"
        );
        return Ok(exit::USAGE);
    }
    let cache = cache_root();
    let (img, _) = image::build_image(&ImageOptions {
        cache: cache.clone(),
        kernel_deb: cfg.kernel_deb.clone(),
    })
    .context("building the guest image")?;
    let accel = if cache_model {
        crate::vm::accel::AccelDecision {
            accel: crate::vm::Accel::Tcg,
            reason: "the cache crash model's tracing plugin needs TCG".into(),
        }
    } else {
        resolve_accel(cfg.accel, &img, &cache).context("choosing the accelerator")?
    };
    eprintln!("accelerator: {} ({})", accel.accel, accel.reason);
    let golden = golden_image(
        &img,
        cfg.filesystem,
        cfg.pmem_mib << 20,
        accel.accel,
        &cache,
        debug,
    )
    .context("building the golden pmem image")?;
    let cache_env = if cache_model {
        let env = crate::campaign::cache_env::CacheEnv::prepare(&img, &golden)
            .context("preparing the cache crash model")?;
        eprintln!(
            "cache model: plugin {}, NVDIMM at {:#x} (+{:#x}), QEMU {}",
            env.plugin.display(),
            env.nvdimm.base,
            env.nvdimm.size,
            env.qemu_version
        );
        Some(env)
    } else {
        None
    };
    let dir = match (&args.output, args.resume) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            eprintln!("error: --resume needs --output <run dir>");
            return Ok(exit::USAGE);
        }
        (None, false) => cfg.output.join(chrono_stamp()),
    };
    if dir.join("journal.jsonl").exists() && !args.resume {
        eprintln!(
            "error: {} already holds a campaign journal: pass --resume to continue it, or another --output",
            dir.display()
        );
        return Ok(exit::USAGE);
    }
    let config_arg = args
        .config
        .as_ref()
        .map(|c| format!(" --config {}", c.display()))
        .unwrap_or_default();
    let mutant_arg = cfg
        .mutant
        .as_ref()
        .map(|m| format!(" --mutant {m}"))
        .unwrap_or_default();
    let model_arg = if cache_model {
        " --crash-model cache"
    } else {
        ""
    };
    let env = CampaignEnv {
        image: img,
        golden,
        accel: accel.accel,
        dir: dir.clone(),
        debug,
        progress: std::io::stderr().is_terminal(),
        repro_base: format!("cargo run --release -- campaign{config_arg}{mutant_arg}{model_arg}"),
        cache: cache_env,
    };
    eprintln!(
        "campaign: {} seeds ({}), {} on {}, crash model {}, mutant {}, run dir {}",
        cfg.seed_list().len(),
        cfg.profile,
        cfg.filesystem,
        env.image.kernel_version,
        serde_yaml::to_string(&cfg.crash_model)
            .unwrap_or_default()
            .trim(),
        cfg.mutant.as_deref().unwrap_or("none"),
        dir.display()
    );
    let (workers, checkers) = cfg.parallelism();
    eprintln!("parallelism: {workers} workload VM(s), {checkers} checker VM(s)");
    crate::campaign::signals::set_graceful(true);
    crate::report::RunInfo::of(&env)
        .write(&dir)
        .context("recording the campaign's environment")?;
    let totals = run_campaign(&cfg, &env)?;
    let reports = crate::report::write_reports(&dir, args.junit.as_deref())
        .with_context(|| format!("writing the reports of {}", dir.display()))?;
    println!(
        "{}",
        crate::ui::summary_table(&totals, &accel.accel.to_string(), &dir)
    );
    println!("  report: {}", reports.html.display());
    if let Some(j) = &reports.junit {
        println!("  junit: {}", j.display());
    }
    Ok(if crate::campaign::signals::stop_requested() {
        130
    } else if totals.failures > 0 {
        exit::FAILURE
    } else if totals.infra > 0 {
        exit::INFRA
    } else {
        exit::PASS
    })
}

fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("campaign-{secs}")
}
