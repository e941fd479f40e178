//! Building a kernel's [`CodeMap`] from its files (the I/O side): the image's bytes from the
//! bzImage (its compressed payload unpacked with the host's `zstd`/`xz`/`gzip` under a
//! guard), its functions from a workload VM's kallsyms (Debian's `System.map` is a
//! placeholder; with `nokaslr` the image's addresses are the same in every VM), the
//! modules' bytes and functions from their
//! `.ko` files (symbol sizes from the ELF symbol table), the source files' function
//! definitions from `<cache>/source/<release>/`. Every input is bounded and parsed with
//! checks: a kernel handed in by a user is data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind, SymbolSection};

use super::blocks::block_starts;
use super::map::{classify, grouping_sentence, CodeMap, MapFunction, Sources, MAP_SCHEMA};
use super::subsystems::Subsystem;
use super::symbols::{key_of, source_name, KernelSymbols};
use super::CoverageError;

/// The subsystem of the functions a patch changes that no other subsystem holds
/// (`--coverage-diff`).
pub const PATCH_SUBSYSTEM: &str = "changed by the patch (outside the subsystems above)";

/// Largest bzImage read.
const MAX_BZIMAGE: u64 = 256 << 20;
/// Largest unpacked kernel image or module.
const MAX_UNPACKED: u64 = 768 << 20;
/// Largest source file read.
const MAX_SOURCE: u64 = 16 << 20;

/// The files of one kernel that a map is built from.
#[derive(Debug, Clone)]
pub struct KernelFiles {
    /// Release (`6.12.95+deb12-amd64`).
    pub release: String,
    /// The bzImage.
    pub bzimage: PathBuf,
    /// `lib/modules/<release>`.
    pub modules_dir: PathBuf,
    /// The kernel's source tree (`ci/kernel-source`'s, complete, or the build tree), if
    /// there is one.
    pub sources: Option<PathBuf>,
}

/// How a payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd (Debian 6.12 and later).
    Zstd,
    /// xz.
    Xz,
    /// gzip.
    Gzip,
}

impl Compression {
    fn of(bytes: &[u8]) -> Option<Compression> {
        match bytes {
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Compression::Xz),
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            _ => None,
        }
    }

    fn tool_and_ext(self) -> (&'static str, &'static str) {
        match self {
            Compression::Zstd => ("zstd", "zst"),
            Compression::Xz => ("xz", "xz"),
            Compression::Gzip => ("gzip", "gz"),
        }
    }
}

/// The compressed kernel inside a bzImage (boot protocol ≥ 2.08: `payload_offset` and
/// `payload_length` of the setup header), without the 4-byte size the kernel build appends.
pub fn bzimage_payload(b: &[u8]) -> Result<(&[u8], Compression), CoverageError> {
    let bad = |m: &str| CoverageError::Kernel(format!("not a bzImage with a payload: {m}"));
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
    if b.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(bad("no HdrS signature"));
    }
    let sects = match b.get(0x1f1).copied().unwrap_or(0) {
        0 => 4,
        n => usize::from(n),
    };
    let pm = (sects + 1) * 512;
    let off = u32_at(0x248).ok_or_else(|| bad("short header"))? as usize;
    let len = u32_at(0x24c).ok_or_else(|| bad("short header"))? as usize;
    let start = pm.checked_add(off).ok_or_else(|| bad("offset overflow"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| bad("length overflow"))?;
    let payload = b
        .get(start..end)
        .ok_or_else(|| bad("payload past the end"))?;
    let kind = Compression::of(payload).ok_or_else(|| bad("unknown compression"))?;
    let trimmed = &payload[..payload.len().saturating_sub(4)];
    Ok((trimmed, kind))
}

/// Unpack `data` compressed as `kind` with the host tool, bounded.
fn unpack(data: &[u8], kind: Compression) -> Result<Vec<u8>, CoverageError> {
    let (tool, ext) = kind.tool_and_ext();
    let dir = tempfile::Builder::new()
        .prefix("powercut-cov-")
        .tempdir()
        .map_err(|e| CoverageError::io("a temporary directory", e))?;
    let packed = dir.path().join(format!("in.{ext}"));
    std::fs::write(&packed, data)
        .map_err(|e| CoverageError::io(&packed.display().to_string(), e))?;
    crate::host::command::run(
        Command::new(tool)
            .args(["-d", "-k", "-f", "-q"])
            .arg(&packed),
        tool,
    )
    .map_err(|e| CoverageError::Kernel(e.to_string()))?;
    let out = dir.path().join("in");
    crate::input::read(&out, MAX_UNPACKED, "unpacked kernel code")
        .map_err(|e| CoverageError::Kernel(e.to_string()))
}

/// Read a file, unpacking it when it is compressed.
fn read_maybe_packed(path: &Path, what: &'static str) -> Result<Vec<u8>, CoverageError> {
    let bytes = crate::input::read(path, MAX_UNPACKED, what)
        .map_err(|e| CoverageError::Kernel(e.to_string()))?;
    match Compression::of(&bytes) {
        Some(kind) => unpack(&bytes, kind),
        None => Ok(bytes),
    }
}

/// The function definitions of every file the subsystems name, from `root`.
fn read_sources(root: &Path, subsystems: &[Subsystem]) -> Sources {
    let mut s = Sources::default();
    for f in subsystems.iter().flat_map(|s| s.files) {
        if let Ok(text) = crate::input::read_to_string(&root.join(f), MAX_SOURCE, "kernel source") {
            s.files
                .insert((*f).to_owned(), super::csource::definitions(&text));
        }
    }
    s
}

/// Find `<name>.ko[.xz|.zst|.gz]` under `dir` (`-` and `_` are one).
fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    let want = name.replace('-', "_");
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let file = e.file_name().to_string_lossy().replace('-', "_");
                let stem = file.split(".ko").next().unwrap_or("");
                if stem == want && file.contains(".ko") {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Build the map of `files`' kernel for `subsystems`; `syms`: the kallsyms of one of its VMs
/// (only the image's functions are taken from it). Functions named in `patch` (source names
/// of the functions a patch changes) that no subsystem holds go into one more subsystem,
/// [`PATCH_SUBSYSTEM`] (the kernel image's and the subsystems' modules' functions).
pub fn build_map(
    files: &KernelFiles,
    syms: &KernelSymbols,
    subsystems: &[Subsystem],
    patch: &BTreeSet<String>,
) -> Result<CodeMap, CoverageError> {
    let sources = files
        .sources
        .as_deref()
        .map(|d| read_sources(d, subsystems));
    let mut map = CodeMap {
        schema: MAP_SCHEMA,
        kernel: files.release.clone(),
        grouping: grouping_sentence(
            sources
                .as_ref()
                .and(files.sources.as_deref())
                .map(|p| p.display().to_string())
                .as_deref(),
        ),
        subsystems: subsystems
            .iter()
            .map(|s| s.display_name(sources.is_some()))
            .chain((!patch.is_empty()).then(|| PATCH_SUBSYSTEM.to_owned()))
            .collect(),
        ..CodeMap::default()
    };
    let group = Grouping {
        subsystems,
        sources: sources.as_ref(),
        patch,
    };
    image_functions(files, syms, &group, &mut map)?;
    let modules: Vec<&str> = subsystems
        .iter()
        .filter_map(|s| s.module)
        .flatten()
        .copied()
        .collect();
    for m in modules {
        match find_module(&files.modules_dir, m) {
            Some(path) => {
                if let Err(e) = module_functions(&path, m, &group, &mut map) {
                    map.notes.push(format!("module {m}: {e}"));
                }
            }
            None => map.notes.push(format!(
                "module {m}: no {m}.ko under {} (built in, or not built)",
                files.modules_dir.display()
            )),
        }
    }
    Ok(map)
}

fn insert(map: &mut CodeMap, key: String, f: MapFunction) {
    if f.blocks.is_empty() {
        return;
    }
    if map.functions.contains_key(&key) {
        map.notes
            .push(format!("{key}: defined twice, the second left out"));
        return;
    }
    map.functions.insert(key, f);
}

/// The subsystem a function of the map goes into, after the patch's
/// functions.
struct Grouping<'a> {
    subsystems: &'a [Subsystem],
    sources: Option<&'a Sources>,
    patch: &'a BTreeSet<String>,
}

impl Grouping<'_> {
    /// The subsystem (index into the map's) and source file of `name` of `module`, if any.
    fn classify(&self, name: &str, module: Option<&str>) -> Option<(usize, Option<&str>)> {
        classify(self.subsystems, self.sources, name, module).or_else(|| {
            self.patch
                .contains(source_name(name))
                .then_some((self.subsystems.len(), None))
        })
    }
}

fn image_functions(
    files: &KernelFiles,
    syms: &KernelSymbols,
    group: &Grouping,
    map: &mut CodeMap,
) -> Result<(), CoverageError> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for f in syms.functions().iter().filter(|f| f.module.is_none()) {
        *count.entry(f.name.as_str()).or_default() += 1;
    }
    let mut ambiguous = std::collections::BTreeSet::new();
    let wanted: Vec<_> = syms
        .functions()
        .iter()
        .filter(|f| f.module.is_none())
        .filter_map(|f| Some((f, group.classify(&f.name, None)?)))
        .filter(|(f, _)| {
            let unique = count.get(f.name.as_str()).copied().unwrap_or(0) == 1;
            if !unique {
                ambiguous.insert(f.name.clone());
            }
            unique
        })
        .collect();
    if !ambiguous.is_empty() {
        map.notes.push(format!(
            "left out: names of several functions of the kernel image (static functions of one name in \
             several files): {}",
            ambiguous.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let bz = crate::input::read(&files.bzimage, MAX_BZIMAGE, "bzImage")
        .map_err(|e| CoverageError::Kernel(e.to_string()))?;
    let (payload, kind) = bzimage_payload(&bz)?;
    let vmlinux = unpack(payload, kind)?;
    let elf = object::File::parse(vmlinux.as_slice())
        .map_err(|e| CoverageError::Kernel(format!("the unpacked kernel is not ELF: {e}")))?;
    let segments: Vec<(u64, &[u8])> = elf
        .segments()
        .filter_map(|s| Some((s.address(), s.data().ok()?)))
        .collect();
    for (f, (sub, file)) in wanted {
        let Some(bytes) = segments.iter().find_map(|&(a, d)| {
            let lo = usize::try_from(f.addr.checked_sub(a)?).ok()?;
            let hi = usize::try_from(f.end - a).ok()?.min(d.len());
            d.get(lo..hi)
        }) else {
            map.notes
                .push(format!("{}: not in the kernel image's segments", f.name));
            continue;
        };
        let mf = MapFunction {
            subsystem: map.subsystems[sub].clone(),
            file: file.map(str::to_owned),
            bytes: bytes.len() as u32,
            blocks: block_starts(bytes, f.addr),
        };
        insert(map, f.key(), mf);
    }
    Ok(())
}

fn module_functions(
    path: &Path,
    module: &str,
    group: &Grouping,
    map: &mut CodeMap,
) -> Result<(), CoverageError> {
    let data = read_maybe_packed(path, "kernel module")?;
    let elf = object::File::parse(data.as_slice())
        .map_err(|e| CoverageError::Kernel(format!("{} is not ELF: {e}", path.display())))?;
    let mut found: BTreeMap<String, MapFunction> = BTreeMap::new();
    let mut twice = std::collections::BTreeSet::new();
    for sym in elf.symbols() {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() || sym.size() == 0 {
            continue;
        }
        let (Ok(name), SymbolSection::Section(idx)) = (sym.name(), sym.section()) else {
            continue;
        };
        if name.starts_with("__pfx_") {
            continue;
        }
        let Some((sub, file)) = group.classify(name, Some(module)) else {
            continue;
        };
        let Some(bytes) = elf
            .section_by_index(idx)
            .ok()
            .and_then(|s| s.data().ok())
            .and_then(|d| {
                let lo = usize::try_from(sym.address()).ok()?;
                let hi = lo.checked_add(usize::try_from(sym.size()).ok()?)?;
                d.get(lo..hi)
            })
        else {
            continue;
        };
        let key = key_of(name, Some(&module.replace('-', "_")));
        if found.contains_key(&key) || twice.contains(&key) {
            found.remove(&key);
            twice.insert(key);
            continue;
        }
        found.insert(
            key,
            MapFunction {
                subsystem: map.subsystems[sub].clone(),
                file: file.map(str::to_owned),
                bytes: bytes.len() as u32,
                blocks: block_starts(bytes, sym.address()),
            },
        );
    }
    if !twice.is_empty() {
        map.notes.push(format!(
            "left out of module {module}: names of several of its functions: {}",
            twice.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    for (k, f) in found {
        insert(map, k, f);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000];
        b[0x1f1] = 3; // setup sectors: protected-mode code at 4 * 512
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x248..0x24c].copy_from_slice(&0x100u32.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        b.resize(0x800 + 0x100, 0);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn the_payload_is_found_and_its_size_suffix_dropped() {
        let payload = [0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 9, 9, 9, 9];
        let b = bzimage(&payload);

        let (p, kind) = bzimage_payload(&b).expect("payload");

        assert_eq!(kind, Compression::Zstd);
        assert_eq!(p, &payload[..7]);
    }

    #[test]
    fn a_bad_bzimage_is_an_error_not_a_panic() {
        let mut b = bzimage(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
        b[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(bzimage_payload(&b).is_err());
        assert!(bzimage_payload(b"MZ").is_err());
        let unknown = bzimage(&[1, 2, 3, 4, 5]);
        assert!(bzimage_payload(&unknown).is_err());
    }
}
