//! One run's coverage: the blocks the plugin saw, named through the kallsyms of the same
//! VM (module addresses move from VM to VM) and placed on the code map's blocks. A map
//! block is reached when a translated block covers its first byte (QEMU ends a translated
//! block at every jump, so all of it ran). Written as `coverage.json` in the item's
//! directory. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trace_format::coverage::{PHASE_AFTER, PHASE_OPS, PHASE_SETUP, PHASE_TRANSLATED};

use super::map::CodeMap;
use super::raw::RawBlock;
use super::symbols::KernelSymbols;

/// Version of `coverage.json`.
pub const SEED_SCHEMA: u32 = 1;

/// Kernel blocks translated, by phase (a block counts in every phase it ran in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseCounts {
    /// Every kernel block translated.
    pub total: usize,
    /// Ran in set-up (restore, mount, modules, agent start).
    pub setup: usize,
    /// Ran between the first op's start and the last op's end.
    pub ops: usize,
    /// Ran after the last op (read-back, quit).
    pub after: usize,
    /// Not counted (out of counter slots): phase of translation only.
    pub uncounted: usize,
}

/// The map blocks one function reached in a run, by index into its `blocks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionHits {
    /// During the ops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<u32>,
    /// During set-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<u32>,
}

/// `coverage.json` of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedCoverage {
    /// [`SEED_SCHEMA`].
    pub schema: u32,
    /// Kernel release.
    pub kernel: String,
    /// When the run ended (ms since the epoch): the order of the campaign's time line.
    pub at_ms: u64,
    /// Kernel blocks by phase.
    pub blocks: PhaseCounts,
    /// Translated blocks outside every kallsyms function.
    pub unnamed: usize,
    /// Reached blocks of the map's functions, by function key.
    pub functions: BTreeMap<String, FunctionHits>,
}

/// Map one run's translated blocks onto `map` through `syms` (this VM's kallsyms).
pub fn map_run(raw: &[RawBlock], syms: &KernelSymbols, map: &CodeMap, at_ms: u64) -> SeedCoverage {
    let mut blocks = PhaseCounts {
        total: raw.len(),
        ..PhaseCounts::default()
    };
    let mut unnamed = 0;
    let mut hits: BTreeMap<String, (BTreeSet<u32>, BTreeSet<u32>)> = BTreeMap::new();
    for b in raw {
        let counted = b.phases & PHASE_TRANSLATED == 0;
        blocks.setup += usize::from(b.phases & PHASE_SETUP != 0);
        blocks.ops += usize::from(b.phases & PHASE_OPS != 0);
        blocks.after += usize::from(b.phases & PHASE_AFTER != 0);
        blocks.uncounted += usize::from(!counted);
        let Some((f, off)) = syms.find(b.vaddr) else {
            unnamed += 1;
            continue;
        };
        let Some(mf) = map.functions.get(&f.key()) else {
            continue;
        };
        let (lo, hi) = (off, off.saturating_add(u64::from(b.bytes.max(1))));
        let first = mf.blocks.partition_point(|&s| u64::from(s) < lo);
        let last = mf.blocks.partition_point(|&s| u64::from(s) < hi);
        let entry = hits.entry(f.key()).or_default();
        for i in first..last {
            let i = i as u32;
            if b.phases & PHASE_OPS != 0 {
                entry.0.insert(i);
            }
            if b.phases & PHASE_SETUP != 0 {
                entry.1.insert(i);
            }
        }
    }
    let functions = hits
        .into_iter()
        .filter(|(_, (o, s))| !o.is_empty() || !s.is_empty())
        .map(|(k, (o, s))| {
            let h = FunctionHits {
                ops: o.into_iter().collect(),
                setup: s.into_iter().collect(),
            };
            (k, h)
        })
        .collect();
    SeedCoverage {
        schema: SEED_SCHEMA,
        kernel: map.kernel.clone(),
        at_ms,
        blocks,
        unnamed,
        functions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::map::MapFunction;

    #[test]
    fn translated_blocks_reach_the_map_blocks_they_cover() {
        let syms = KernelSymbols::parse(
            "ffffffff81000000 T dax_a\nffffffff81000100 T other\nffffffffc0000000 t ext4_f\t[ext4]\n",
        )
        .expect("symbols");
        let mut map = CodeMap::default();
        let f = |blocks: Vec<u32>| MapFunction {
            subsystem: "s".into(),
            file: None,
            bytes: 0x100,
            blocks,
        };
        map.functions
            .insert("dax_a".into(), f(vec![0, 0x10, 0x20, 0x40]));
        map.functions.insert("ext4_f [ext4]".into(), f(vec![0, 8]));
        let raw = [
            // dax_a 0x00..0x18: blocks 0 and 0x10, during the ops.
            RawBlock {
                vaddr: 0xffff_ffff_8100_0000,
                insns: 4,
                bytes: 0x18,
                phases: PHASE_OPS,
            },
            // dax_a 0x40..0x44 in set-up only.
            RawBlock {
                vaddr: 0xffff_ffff_8100_0040,
                insns: 1,
                bytes: 4,
                phases: PHASE_SETUP,
            },
            // ext4_f starting mid-block (after an interrupt): no block start covered.
            RawBlock {
                vaddr: 0xffff_ffff_c000_0002,
                insns: 1,
                bytes: 3,
                phases: PHASE_OPS,
            },
            // A function outside the map, and an address below every symbol.
            RawBlock {
                vaddr: 0xffff_ffff_8100_0100,
                insns: 1,
                bytes: 3,
                phases: PHASE_OPS,
            },
            RawBlock {
                vaddr: 0xffff_8000_0000_0000,
                insns: 1,
                bytes: 3,
                phases: PHASE_AFTER,
            },
        ];

        let cov = map_run(&raw, &syms, &map, 7);

        assert_eq!(cov.functions.len(), 1);
        let a = &cov.functions["dax_a"];
        assert_eq!(a.ops, [0, 1]);
        assert_eq!(a.setup, [3]);
        assert_eq!(cov.unnamed, 1);
        assert_eq!(
            cov.blocks,
            PhaseCounts {
                total: 5,
                setup: 1,
                ops: 3,
                after: 1,
                uncounted: 0
            }
        );
    }
}
