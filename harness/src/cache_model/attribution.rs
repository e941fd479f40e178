//! Who lost what (pure): each lost cache line of a crash state mapped to the file and file
//! offset it holds (through the file system's extent map), the code that last stored to it
//! (a kernel symbol from the guest's `/proc/kallsyms`, or user stores through a mapping),
//! and how it was left in flight; adjacent lines with the same story merge into one range.
//!
//! pmem offsets are offsets in the NVDIMM's backing file. A FIEMAP extent gives block-device
//! offsets of `/dev/pmem0`, which starts `data_offset` bytes into the backing file (the fsdax
//! pfn info block and its reservation come first); the caller measures that offset.

use std::fmt;

use serde::{Deserialize, Serialize};
use workloads::oracle::CrashPoint;
use workloads::protocol::{Extent, FileExtents, EXTENT_UNWRITTEN};

use super::format::LINE;
use super::lines::InFlight;
use super::states::LostLine;

/// First address of the kernel half: a store from a PC below it is a user store.
const KERNEL_HALF: u64 = 1 << 63;

/// Where the workload's files lie in the pmem backing file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMap {
    /// Backing-file offset of block-device offset 0.
    pub data_offset: u64,
    /// Each file's extents (FIEMAP at the end of the run).
    pub files: Vec<FileExtents>,
}

impl FileMap {
    /// The file and file offset behind pmem offset `off`, if a file's extent holds it.
    pub fn locate(&self, off: u64) -> Option<(&str, u64)> {
        let dev = off.checked_sub(self.data_offset)?;
        self.files.iter().find_map(|f| {
            f.extents
                .iter()
                .find(|e| dev >= e.physical && dev - e.physical < e.length)
                .map(|e| (f.name.as_str(), e.logical + (dev - e.physical)))
        })
    }

    /// Written extents (not `unwritten`), with the backing-file offset of each: what the
    /// caller compares with the live file data to check `data_offset`.
    pub fn written(&self) -> impl Iterator<Item = (&str, &Extent, u64)> + '_ {
        self.files.iter().flat_map(move |f| {
            f.extents
                .iter()
                .filter(|e| e.flags & EXTENT_UNWRITTEN == 0)
                .map(move |e| (f.name.as_str(), e, e.physical + self.data_offset))
        })
    }
}

/// Kernel symbols, from `/proc/kallsyms` (text symbols only).
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    /// (address, name with its `[module]`), by address.
    syms: Vec<(u64, String)>,
}

impl Symbols {
    /// Parse `/proc/kallsyms` text; lines that are not `addr type name [module]` with a text
    /// type (`t`/`T`) and a non-zero address are skipped (zeros: kptr_restrict).
    pub fn parse(text: &str) -> Symbols {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let addr = u64::from_str_radix(w.next()?, 16).ok()?;
                let kind = w.next()?;
                let name = w.next()?;
                if addr == 0 || !kind.eq_ignore_ascii_case("t") {
                    return None;
                }
                Some(match w.next() {
                    Some(m) => (addr, format!("{name} {m}")),
                    None => (addr, name.to_owned()),
                })
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        Symbols { syms }
    }

    /// Number of symbols.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// `name+0xoff` (with ` [module]`) of a kernel PC; `None` below the first symbol.
    pub fn name(&self, pc: u64) -> Option<String> {
        let i = self.syms.partition_point(|s| s.0 <= pc).checked_sub(1)?;
        let (addr, name) = &self.syms[i];
        Some(match name.split_once(' ') {
            Some((n, m)) => format!("{n}+{:#x} {m}", pc - addr),
            None => format!("{name}+{:#x}", pc - addr),
        })
    }
}

/// The code that last stored to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Storer {
    /// User space, through a shared mapping of the file.
    User {
        /// Guest PC.
        pc: u64,
    },
    /// Kernel code.
    Kernel {
        /// Guest PC.
        pc: u64,
        /// `symbol+0xoff [module]`, if the symbols know it.
        symbol: Option<String>,
    },
    /// Not recorded (a trace without store sites).
    Unknown,
}

impl Storer {
    fn of(pc: u64, syms: &Symbols) -> Storer {
        match pc {
            0 => Storer::Unknown,
            pc if pc < KERNEL_HALF => Storer::User { pc },
            pc => Storer::Kernel {
                pc,
                symbol: syms.name(pc),
            },
        }
    }
}

impl fmt::Display for Storer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storer::User { .. } => f.write_str("user stores through mmap"),
            Storer::Kernel {
                symbol: Some(s), ..
            } => write!(f, "kernel stores at {s}"),
            Storer::Kernel { pc, symbol: None } => write!(f, "kernel stores at {pc:#x}"),
            Storer::Unknown => f.write_str("stores"),
        }
    }
}

/// How a line was left in flight, in words.
pub fn in_flight_words(why: InFlight) -> &'static str {
    match why {
        InFlight::Dirty => "never flushed",
        InFlight::FlushedUnfenced => "flushed without a following fence",
        InFlight::NonTemporal => "NT store without sfence",
    }
}

/// What a promise that returned over such a line failed to do.
fn missing_words(why: InFlight) -> &'static str {
    match why {
        InFlight::Dirty => "without a cache-line write-back",
        InFlight::FlushedUnfenced => {
            "with the line written back (clwb/clflushopt) but no fence after it"
        }
        InFlight::NonTemporal => "without an sfence after the non-temporal stores",
    }
}

/// A run of lost lines with one story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRange {
    /// The file, when the lines hold file data (else file-system metadata or free space).
    pub file: Option<String>,
    /// First byte: a file offset with `file`, else a pmem offset.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// pmem offset of the first line.
    pub pmem: u64,
    /// How the lines were left in flight.
    pub why: InFlight,
    /// Who stored last.
    pub storer: Storer,
    /// The op context of the last store (`None`: before the first op).
    pub stored_in: Option<CrashPoint>,
}

/// The lost lines, merged into ranges (file ranges first, by name and offset; then the
/// other lines by pmem offset).
pub fn attribute(lost: &[LostLine], map: &FileMap, syms: &Symbols) -> Vec<LostRange> {
    let mut ranges: Vec<LostRange> = lost
        .iter()
        .map(|l| {
            let (file, start) = match map.locate(l.off) {
                Some((f, o)) => (Some(f.to_owned()), o),
                None => (None, l.off),
            };
            LostRange {
                file,
                start,
                end: start + LINE,
                pmem: l.off,
                why: l.why,
                storer: Storer::of(l.pc, syms),
                stored_in: l.stored_in,
            }
        })
        .collect();
    ranges.sort_by(|a, b| {
        (a.file.is_none(), &a.file, a.start).cmp(&(b.file.is_none(), &b.file, b.start))
    });
    let mut out: Vec<LostRange> = Vec::new();
    for r in ranges {
        if let Some(last) = out.last_mut() {
            let same_story = last.file == r.file
                && last.why == r.why
                && same_code(&last.storer, &r.storer)
                && last.stored_in == r.stored_in;
            if same_story && last.end == r.start {
                last.end = r.end;
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// Two storers tell the same story: both user space, or the same kernel function.
fn same_code(a: &Storer, b: &Storer) -> bool {
    let func = |s: &Option<String>| s.as_ref().map(|s| s.split('+').next().map(str::to_owned));
    match (a, b) {
        (Storer::User { .. }, Storer::User { .. }) | (Storer::Unknown, Storer::Unknown) => true,
        (Storer::Kernel { symbol: x, pc: p }, Storer::Kernel { symbol: y, pc: q }) => {
            match (x, y) {
                (Some(_), Some(_)) => func(x) == func(y),
                _ => p == q,
            }
        }
        _ => false,
    }
}

fn point_words(p: CrashPoint, kind: &dyn Fn(usize) -> String) -> String {
    match p {
        CrashPoint::InsideOp(k) => format!("in op {k} ({})", kind(k)),
        CrashPoint::AfterOp(k) => format!("after op {k} ({}) returned", kind(k)),
    }
}

/// One sentence per range, e.g. `f1 [4096..8192) written by user stores through mmap in
/// op 5 (store), msync in op 9 returned without a cache-line write-back`. `cut` is the
/// crash point, `kind(k)` op k's kind, `durability(k)` whether op k promises durability.
pub fn sentence(
    r: &LostRange,
    cut: CrashPoint,
    kind: &dyn Fn(usize) -> String,
    durability: &dyn Fn(usize) -> bool,
) -> String {
    let what = match &r.file {
        Some(f) => format!("{f} [{}..{})", r.start, r.end),
        None => format!(
            "pmem [{:#x}..{:#x}) (no file's data: file-system metadata or free space)",
            r.start, r.end
        ),
    };
    let when = r.stored_in.map_or_else(
        || "before the first op".to_owned(),
        |p| point_words(p, kind),
    );
    let how = match cut {
        CrashPoint::AfterOp(k) if durability(k) => {
            format!("{} in op {k} returned {}", kind(k), missing_words(r.why))
        }
        CrashPoint::InsideOp(k) if durability(k) => format!(
            "the power was cut inside {} (op {k}) while it was {}",
            kind(k),
            in_flight_words(r.why)
        ),
        p => format!(
            "{} at the cut {}",
            in_flight_words(r.why),
            point_words(p, kind)
        ),
    };
    format!("{what} written by {} {when}, {how}", r.storer)
}

#[cfg(test)]
#[path = "attribution_tests.rs"]
mod tests;
