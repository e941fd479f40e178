//! `powercut bench coverage`: random generation against coverage-guided generation for the
//! same wall time, on the same kernel, file system and crash model. Two campaigns run one
//! after the other in one output directory (`random/`, then `guided/` with a fresh corpus
//! of its own), each with the same listed seeds and time budget; then the target
//! subsystems' blocks each reached during the ops (`powercut coverage`'s figures) are
//! printed side by side with their ratio. Figures are printed, never asserted.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::campaign::{Finished, Request};
use crate::config::overrides::Overrides;
use crate::coverage::subsystems::is_guided_target;
use crate::coverage::CoverageSummary;
use crate::error::Error;
use crate::records::CrashModel;
use crate::ui::Progress;

/// `bench coverage` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCoverageArgs {
    /// Wall time of each campaign (`10m`, `1h`).
    #[arg(long, default_value = "10m")]
    pub time_budget: String,
    /// Campaign config both campaigns start from (default: ci/smoke.yaml of this checkout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seeds both campaigns run first (the guided corpus starts from them).
    #[arg(long, default_value = "1..3")]
    pub seeds: String,
    /// Generator profile; default: the config's.
    #[arg(long)]
    pub profile: Option<String>,
    /// File system under test; default: the config's.
    #[arg(long, value_enum)]
    pub filesystem: Option<crate::image::Filesystem>,
    /// Crash model; default: the config's.
    #[arg(long, value_enum)]
    pub crash_model: Option<CrashModel>,
    /// Where the two run directories go (default: `runs/bench-coverage-<unix seconds>`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The kernel (default: the config's).
    #[command(flatten)]
    pub kernel: super::KernelArgs,
}

/// `powercut bench coverage`: both campaigns, then the table; exit 0 unless a campaign
/// could not run.
pub fn bench_coverage(args: &BenchCoverageArgs, debug: bool) -> Result<i32, Error> {
    let out = args.output.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("bench-coverage-{secs}"))
    });
    let mut figures = Vec::new();
    for guided in [false, true] {
        let name = if guided { "guided" } else { "random" };
        let dir = out.join(name);
        eprintln!("bench coverage: {name} generation for {}", args.time_budget);
        let finished = crate::campaign::run(&request(args, guided, &dir, debug)?, &mut progress())?;
        figures.push((name, finished_line(&finished), summary_of(&dir)?));
    }
    for (name, line, _) in &figures {
        println!("{name}: {line}");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    print!("{}", side_by_side(&figures[0].2, &figures[1].2));
    Ok(crate::exit::PASS)
}

fn progress() -> Progress {
    Progress::new(std::io::stderr().is_terminal())
}

/// The campaign of one side: the same flags, `--guided` or not, TCG (coverage needs it).
fn request(
    args: &BenchCoverageArgs,
    guided: bool,
    dir: &Path,
    debug: bool,
) -> Result<Request, Error> {
    let overrides = Overrides {
        seeds: Some(args.seeds.clone()),
        profile: args.profile.clone(),
        filesystem: args.filesystem,
        crash_model: args.crash_model,
        time_budget: Some(args.time_budget.clone()),
        accel: Some(crate::vm::AccelChoice::Tcg),
        kernel: args.kernel.spec()?,
        guided,
        ..Overrides::default()
    };
    Ok(Request {
        config: args.config.clone(),
        overrides,
        output: Some(dir.to_owned()),
        debug,
        ..Request::default()
    })
}

/// One line per campaign: items run and its outcome.
fn finished_line(f: &Finished) -> String {
    format!(
        "{} items, {} crash images checked, {} failure instance(s), {} infrastructure problem(s), run dir {}",
        f.totals.seeds,
        f.totals.checks,
        f.totals.failures,
        f.totals.infra,
        f.dir.display()
    )
}

/// The coverage of one run directory (its one kernel).
fn summary_of(dir: &Path) -> Result<CoverageSummary, Error> {
    let (mut summaries, notes) = crate::runs::coverage::read_coverage(&[dir]);
    for n in notes {
        eprintln!("note: {n}");
    }
    summaries.pop().ok_or_else(|| {
        Error::Usage(format!(
            "{}: no coverage recorded (it needs TCG and `coverage: true`)",
            dir.display()
        ))
    })
}

/// The table: per target subsystem, blocks reached during the ops by each side, and
/// guided / random; then the runs each had.
pub fn side_by_side(random: &CoverageSummary, guided: &CoverageSummary) -> String {
    let mut s = format!(
        "\n  {:<46} {:>8} {:>8} {:>7}\n",
        "target subsystem (blocks reached in the ops)", "random", "guided", "ratio"
    );
    let (mut sum_r, mut sum_g) = (0, 0);
    for sub in random
        .subsystems
        .iter()
        .filter(|x| is_guided_target(&x.name))
    {
        let g = guided
            .subsystems
            .iter()
            .find(|x| x.name == sub.name)
            .map_or(0, |x| x.blocks_reached);
        sum_r += sub.blocks_reached;
        sum_g += g;
        let _ = writeln!(
            s,
            "  {:<46} {:>8} {:>8} {:>7}   (of {})",
            sub.name,
            sub.blocks_reached,
            g,
            ratio(g, sub.blocks_reached),
            sub.blocks
        );
    }
    let _ = writeln!(
        s,
        "  {:<46} {:>8} {:>8} {:>7}",
        "all targets",
        sum_r,
        sum_g,
        ratio(sum_g, sum_r)
    );
    let _ = writeln!(
        s,
        "  runs with coverage: random {}, guided {}",
        random.runs, guided.runs
    );
    s
}

/// `guided / random` with two decimals, `-` when random reached nothing.
fn ratio(guided: usize, random: usize) -> String {
    if random == 0 {
        return "-".into();
    }
    format!("{:.2}", guided as f64 / random as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::summary::SubsystemCoverage;

    fn summary(runs: usize, reached: &[(&str, usize)]) -> CoverageSummary {
        CoverageSummary {
            runs,
            subsystems: reached
                .iter()
                .map(|(name, r)| SubsystemCoverage {
                    name: (*name).into(),
                    blocks: 700,
                    blocks_reached: *r,
                    ..SubsystemCoverage::default()
                })
                .collect(),
            ..CoverageSummary::default()
        }
    }

    #[test]
    fn the_table_compares_target_subsystems_only_with_their_ratio() {
        let random = summary(
            9,
            &[
                ("fs/dax.c", 200),
                ("drivers/nvdimm (libnvdimm, nd_pmem)", 50),
                ("mm DAX fault path", 0),
            ],
        );
        let guided = summary(
            7,
            &[
                ("fs/dax.c", 300),
                ("drivers/nvdimm (libnvdimm, nd_pmem)", 60),
                ("mm DAX fault path", 10),
            ],
        );

        let t = side_by_side(&random, &guided);

        assert!(t.contains("fs/dax.c") && t.contains("1.50"), "{t}");
        assert!(!t.contains("nvdimm"), "{t}");
        let mm = t.lines().find(|l| l.contains("mm DAX")).expect("mm row");
        assert!(mm.contains(" - "), "{mm}");
        let all = t.lines().find(|l| l.contains("all targets")).expect("sum");
        assert!(
            all.contains("200") && all.contains("310") && all.contains("1.55"),
            "{all}"
        );
        assert!(t.contains("random 9, guided 7"), "{t}");
    }
}
