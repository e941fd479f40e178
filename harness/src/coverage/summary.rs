//! What a campaign (or several, merged) reached: per subsystem and per function, reached
//! blocks against the map's blocks (union over the runs, the ops phase; set-up apart),
//! never-reached functions, and reached blocks over the campaign's time. The `report.json`
//! section, the HTML section and `powercut coverage` all show this one value. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::map::CodeMap;
use super::seed::SeedCoverage;

/// One subsystem's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemCoverage {
    /// Name.
    pub name: String,
    /// Functions the map holds for it.
    pub functions: usize,
    /// Functions with a block reached during the ops.
    pub functions_reached: usize,
    /// Blocks the map holds for it.
    pub blocks: usize,
    /// Blocks reached during the ops.
    pub blocks_reached: usize,
    /// Blocks reached during set-up (mount, module loading, agent start).
    pub blocks_setup: usize,
}

/// One function's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCoverage {
    /// Key (`name`, `name [module]`).
    pub function: String,
    /// Subsystem.
    pub subsystem: String,
    /// Source file, when grouped by sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Blocks in the function.
    pub blocks: usize,
    /// Blocks reached during the ops.
    pub reached: usize,
    /// Blocks reached during set-up.
    pub setup: usize,
}

/// A point of the time line: after `secs` since the first run ended, `blocks` map blocks
/// had been reached during the ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePoint {
    /// Seconds since the first run with coverage ended.
    pub secs: u64,
    /// Map blocks reached so far (ops phase).
    pub blocks: usize,
}

/// The coverage of one kernel over a set of runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageSummary {
    /// Kernel release.
    pub kernel: String,
    /// How functions were grouped.
    pub grouping: String,
    /// Runs with coverage.
    pub runs: usize,
    /// Kernel blocks translated during the ops, largest of one run.
    pub max_run_ops_blocks: usize,
    /// Per subsystem, in the map's order.
    pub subsystems: Vec<SubsystemCoverage>,
    /// Per function, by subsystem then name.
    pub functions: Vec<FunctionCoverage>,
    /// Reached blocks over time.
    pub timeline: Vec<TimePoint>,
    /// What the map could not do.
    pub notes: Vec<String>,
}

impl CoverageSummary {
    /// The functions of the map no run reached during the ops.
    pub fn never_reached(&self) -> impl Iterator<Item = &FunctionCoverage> {
        self.functions.iter().filter(|f| f.reached == 0)
    }
}

/// Summarize `seeds` (runs of `map`'s kernel) against `map`.
pub fn summarize(map: &CodeMap, seeds: &[SeedCoverage]) -> CoverageSummary {
    let mut ops: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut setup: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut order: Vec<&SeedCoverage> = seeds.iter().collect();
    order.sort_by_key(|s| s.at_ms);
    let t0 = order.first().map_or(0, |s| s.at_ms);
    let mut timeline = Vec::new();
    let mut total = 0usize;
    for s in &order {
        for (k, h) in &s.functions {
            let Some((key, mf)) = map.functions.get_key_value(k) else {
                continue;
            };
            let n = mf.blocks.len() as u32;
            let set = ops.entry(key.as_str()).or_default();
            for &i in h.ops.iter().filter(|&&i| i < n) {
                total += usize::from(set.insert(i));
            }
            setup
                .entry(key.as_str())
                .or_default()
                .extend(h.setup.iter().filter(|&&i| i < n));
        }
        timeline.push(TimePoint {
            secs: s.at_ms.saturating_sub(t0) / 1000,
            blocks: total,
        });
    }
    let mut functions: Vec<FunctionCoverage> = map
        .functions
        .iter()
        .map(|(k, mf)| FunctionCoverage {
            function: k.clone(),
            subsystem: mf.subsystem.clone(),
            file: mf.file.clone(),
            blocks: mf.blocks.len(),
            reached: ops.get(k.as_str()).map_or(0, BTreeSet::len),
            setup: setup.get(k.as_str()).map_or(0, BTreeSet::len),
        })
        .collect();
    let rank = |s: &str| map.subsystems.iter().position(|x| x == s);
    functions
        .sort_by(|a, b| (rank(&a.subsystem), &a.function).cmp(&(rank(&b.subsystem), &b.function)));
    let subsystems = map
        .subsystems
        .iter()
        .map(|name| {
            let fs = functions.iter().filter(|f| &f.subsystem == name);
            let mut s = SubsystemCoverage {
                name: name.clone(),
                ..SubsystemCoverage::default()
            };
            for f in fs {
                s.functions += 1;
                s.functions_reached += usize::from(f.reached > 0);
                s.blocks += f.blocks;
                s.blocks_reached += f.reached;
                s.blocks_setup += f.setup;
            }
            s
        })
        .collect();
    CoverageSummary {
        kernel: map.kernel.clone(),
        grouping: map.grouping.clone(),
        runs: seeds.len(),
        max_run_ops_blocks: seeds.iter().map(|s| s.blocks.ops).max().unwrap_or(0),
        subsystems,
        functions,
        timeline,
        notes: map.notes.clone(),
    }
}

/// Percentage, one decimal, of `part` in `whole` (0 when `whole` is 0).
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

/// The summary as text tables: subsystems, then (with `functions`) every function of the
/// subsystem matching `only` (all when `None`), then the never-reached ones by name.
pub fn render(s: &CoverageSummary, functions: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kernel {}: {} runs with coverage", s.kernel, s.runs);
    let _ = writeln!(out, "grouping: {}", s.grouping);
    let w = s
        .subsystems
        .iter()
        .map(|x| x.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    let _ = writeln!(
        out,
        "\n{:<w$} {:>11} {:>16} {:>8} {:>8}",
        "subsystem", "functions", "blocks", "%", "set-up"
    );
    for x in &s.subsystems {
        let _ = writeln!(
            out,
            "{:<w$} {:>5}/{:<5} {:>7}/{:<8} {:>7.1}% {:>8}",
            x.name,
            x.functions_reached,
            x.functions,
            x.blocks_reached,
            x.blocks,
            percent(x.blocks_reached, x.blocks),
            x.blocks_setup
        );
    }
    if functions {
        let _ = writeln!(out, "\n{:<52} {:>12} {:>8}", "function", "blocks", "set-up");
        for f in s.functions.iter().filter(|f| f.reached > 0) {
            let _ = writeln!(
                out,
                "{:<52} {:>5}/{:<6} {:>8}",
                f.function, f.reached, f.blocks, f.setup
            );
        }
    }
    for x in &s.subsystems {
        let never: Vec<&str> = s
            .never_reached()
            .filter(|f| f.subsystem == x.name)
            .map(|f| f.function.as_str())
            .collect();
        if !never.is_empty() {
            let _ = writeln!(
                out,
                "\nnever reached in {} ({}): {}",
                x.name,
                never.len(),
                never.join(", ")
            );
        }
    }
    for n in &s.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::map::MapFunction;
    use crate::coverage::seed::FunctionHits;

    fn map() -> CodeMap {
        let mut m = CodeMap {
            kernel: "6.12".into(),
            subsystems: vec!["fs/dax.c".into(), "ext4".into()],
            ..CodeMap::default()
        };
        let f = |s: &str, n: u32| MapFunction {
            subsystem: s.into(),
            file: None,
            bytes: 64,
            blocks: (0..n).collect(),
        };
        m.functions.insert("dax_a".into(), f("fs/dax.c", 4));
        m.functions.insert("dax_b".into(), f("fs/dax.c", 2));
        m.functions.insert("ext4_f [ext4]".into(), f("ext4", 3));
        m
    }

    fn seed(at_ms: u64, hits: &[(&str, &[u32], &[u32])]) -> SeedCoverage {
        SeedCoverage {
            at_ms,
            functions: hits
                .iter()
                .map(|(k, o, s)| {
                    let h = FunctionHits {
                        ops: o.to_vec(),
                        setup: s.to_vec(),
                    };
                    ((*k).to_owned(), h)
                })
                .collect(),
            ..SeedCoverage::default()
        }
    }

    #[test]
    fn runs_merge_as_a_union_with_a_time_line() {
        let seeds = [
            seed(
                5_000,
                &[("dax_a", &[0, 1], &[3]), ("ext4_f [ext4]", &[], &[0])],
            ),
            seed(1_000, &[("dax_a", &[1, 2], &[])]),
            // An index past the function and an unknown key are ignored.
            seed(9_000, &[("dax_a", &[9], &[]), ("gone", &[0], &[])]),
        ];

        let s = summarize(&map(), &seeds);

        assert_eq!(s.runs, 3);
        assert_eq!(
            s.subsystems[0],
            SubsystemCoverage {
                name: "fs/dax.c".into(),
                functions: 2,
                functions_reached: 1,
                blocks: 6,
                blocks_reached: 3,
                blocks_setup: 1,
            }
        );
        assert_eq!(s.subsystems[1].blocks_setup, 1);
        assert_eq!(s.subsystems[1].blocks_reached, 0);
        let never: Vec<&str> = s.never_reached().map(|f| f.function.as_str()).collect();
        assert_eq!(never, ["dax_b", "ext4_f [ext4]"]);
        let t: Vec<(u64, usize)> = s.timeline.iter().map(|p| (p.secs, p.blocks)).collect();
        assert_eq!(t, [(0, 2), (4, 3), (8, 3)]);
        assert_eq!(percent(3, 6), 50.0);
        assert!(render(&s, true).contains("never reached in fs/dax.c (1): dax_b"));
    }
}
