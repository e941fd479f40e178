//! Who lost what, the I/O side of [`crate::cache_model::attribution`]: collect what the
//! guest knows about its files and code (where `/dev/pmem0` starts in the NVDIMM and the
//! kernel's symbols before the first op, the FIEMAP extents of the workload's files after
//! the last),
//! check the extent map against the final pmem, and turn each crash state's lost lines into
//! a [`LostReport`]: `*.lost-lines.json` (typed, read back by the failure directory and the
//! reports) and `*.lost-lines.txt` beside the crash image.
//!
//! Where `/dev/pmem0` starts is measured, not assumed: the guest's
//! `/sys/block/pmem0/device/resource` (the fsdax pfn device's guest-physical data start)
//! minus the NVDIMM's guest-physical base. Measured on QEMU 10.0 / 6.12: 0x100200000 −
//! 0x100000000 = 2 MiB. Every run then checks the mapping: each written extent's bytes in
//! the final pmem must equal the file's bytes read back; if they do not, file offsets are
//! left out and the report says why.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use workloads::oracle::Observed;
use workloads::protocol::FileExtents;
use workloads::Workload;

use crate::cache_model::attribution::{attribute, sentence, FileMap, Symbols};
pub use crate::cache_model::lost::{json_path, LostReport, LOST_SCHEMA};
use crate::cache_model::CrashState;
use crate::vm::{Vm, VmError};

/// What the guest told about its files and code at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct GuestFacts {
    /// The file map (`None` when it could not be measured or did not check out).
    pub map: Option<FileMap>,
    /// Kernel text symbols.
    pub symbols: Symbols,
    /// The kallsyms text they were parsed from (coverage names its blocks with it).
    pub kallsyms: Option<String>,
    /// Why something is missing.
    pub notes: Vec<String>,
}

/// Collect [`GuestFacts`] from a workload VM before its first op (`base`: the NVDIMM's
/// guest-physical base): where `/dev/pmem0` starts and the kernel symbols (the mutant, if
/// any, is loaded by then). Done before the run so no command runs on the SSH session
/// while the agent's channel closes, and nothing of it lands in an op's part of the trace.
/// Nothing here fails the run: what cannot be had becomes a note.
pub fn collect(vm: &mut Vm, base: u64, image_hash: &str) -> GuestFacts {
    let mut facts = GuestFacts::default();
    match vm.run("cat /sys/block/pmem0/device/resource") {
        Ok(text) => match parse_hex(text.trim()).and_then(|start| start.checked_sub(base)) {
            Some(data_offset) => {
                facts.map = Some(FileMap {
                    data_offset,
                    files: Vec::new(),
                });
            }
            None => facts.notes.push(format!(
                "/sys/block/pmem0/device/resource says `{}`, not an address at or above the NVDIMM base {base:#x}",
                text.trim()
            )),
        },
        Err(e) => facts.notes.push(format!(
            "reading where /dev/pmem0 starts: {}",
            super::first_line(&e)
        )),
    }
    match kallsyms_text(vm, image_hash) {
        Ok(text) => {
            facts.symbols = Symbols::parse(&text);
            facts.kallsyms = Some(text);
        }
        Err(e) => facts.notes.push(format!("reading /proc/kallsyms: {e}")),
    }
    facts
}

impl GuestFacts {
    /// Add the files' extents (FIEMAP after the last op); their errors become notes.
    pub fn add_extents(&mut self, extents: Vec<FileExtents>) {
        self.notes
            .extend(extents.iter().filter_map(|f| f.error.clone()));
        if let Some(map) = &mut self.map {
            map.files = extents;
        }
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// The text symbols (`t`/`T` lines) of the guest's `/proc/kallsyms`. With `nokaslr` the
/// kernel's own addresses are fixed per image, and module addresses are those in
/// `/proc/modules`: the text is cached under a hash of both (reading `/proc/kallsyms` takes
/// ≈ 6 s under TCG, `/proc/modules` 0.3 s). The cache model's attribution and coverage
/// name code with it.
pub fn kallsyms_text(vm: &mut Vm, image_hash: &str) -> Result<String, String> {
    let modules = vm
        .run("cat /proc/modules")
        .map_err(|e| super::first_line(&e))?;
    let mut h = Sha256::new();
    h.update(image_hash.as_bytes());
    h.update(modules.as_bytes());
    let key: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = crate::cache_dir::cache_root()
        .join("kallsyms")
        .join(format!("{key}.txt"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text);
    }
    let all = vm
        .run("cat /proc/kallsyms")
        .map_err(|e| super::first_line(&e))?;
    let text: String = all
        .lines()
        .filter(|l| matches!(l.split_whitespace().nth(1), Some("t" | "T")))
        .flat_map(|l| [l, "\n"])
        .collect();
    // A cache that cannot be written only costs the next run the same read.
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_ok() {
            crate::host::write_atomically(&path, text.as_bytes()).ok();
        }
    }
    Ok(text)
}

/// Check the file map against the final pmem: every written extent's bytes must equal the
/// file's bytes read back (`pmem_at(off, len)` reads the final pmem file). Returns the map
/// when it checks out, else a note saying where it did not.
pub fn checked_map(
    map: FileMap,
    live: &BTreeMap<String, Observed>,
    pmem_at: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<FileMap, String> {
    let mut compared = 0usize;
    for (name, e, off) in map.written() {
        let Some(data) = live.get(name).filter(|o| o.exists).map(|o| &o.data) else {
            continue;
        };
        let lo = usize::try_from(e.logical)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let hi = usize::try_from(e.logical.saturating_add(e.length))
            .unwrap_or(usize::MAX)
            .min(data.len());
        if lo == hi {
            continue;
        }
        let found = pmem_at(off, hi - lo)
            .ok_or_else(|| format!("{name}'s extent at pmem {off:#x} lies past the pmem"))?;
        if found != data[lo..hi] {
            return Err(format!(
                "{name} [{lo}..{hi}) is not at pmem {off:#x} (device offset {:#x} + data offset {:#x}): file offsets left out",
                e.physical, map.data_offset
            ));
        }
        compared += hi - lo;
    }
    tracing::debug!(compared, data_offset = map.data_offset, "file map checked");
    Ok(map)
}

/// The report of one state of a run of `workload`.
pub fn report(state: &CrashState, facts: &GuestFacts, workload: &Workload) -> LostReport {
    let empty = FileMap::default();
    let map = facts.map.as_ref().unwrap_or(&empty);
    let ranges = attribute(&state.lost, map, &facts.symbols);
    let kind = |k: usize| {
        workload
            .ops
            .get(k)
            .map_or_else(|| "none".to_owned(), |op| op.kind().to_owned())
    };
    let points = workload.durability_points();
    let durable = |k: usize| points.get(k).copied().unwrap_or(false);
    let sentences = ranges
        .iter()
        .map(|r| sentence(r, state.point(), &kind, &durable))
        .collect();
    LostReport {
        schema: LOST_SCHEMA,
        point: state.point(),
        cut: state.cache_cut(),
        in_flight: state.in_flight,
        persisted: state.persisted,
        lost_lines: state.lost.len(),
        data_offset: facts.map.as_ref().map(|m| m.data_offset),
        ranges,
        sentences,
        notes: facts.notes.clone(),
    }
}

/// Write `lost-lines.json` and `lost-lines.txt` of `report` beside `image`.
pub fn write(image: &Path, report: &LostReport, base: u64) -> Result<(), VmError> {
    let io = |path: &Path, source: std::io::Error| VmError::HostIo {
        what: format!("writing {}", path.display()),
        source,
    };
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| VmError::Guest(format!("serializing the lost-lines report: {e}")))?;
    let jp = json_path(image);
    std::fs::write(&jp, json).map_err(|e| io(&jp, e))?;
    let tp = super::cache_run::lost_lines_path(image);
    std::fs::write(&tp, report.text(base)).map_err(|e| io(&tp, e))
}

#[cfg(test)]
#[path = "cache_lost_tests.rs"]
mod tests;
