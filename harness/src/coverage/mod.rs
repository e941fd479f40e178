//! Kernel coverage from the TCG plugin: which kernel code a run reached, named and counted
//! in basic blocks of the subsystems powercut is about (`docs/coverage.md`).
//!
//! - [`raw`]: the plugin's coverage file (translated kernel blocks with their phases).
//! - [`symbols`]: kallsyms / `System.map` text as functions with address ranges.
//! - [`blocks`]: basic blocks of a function's machine code (iced-x86).
//! - [`subsystems`]: the reported subsystems and how functions are grouped into them.
//! - [`map`], [`kernel_code`]: a kernel's code map (functions, their blocks, their
//!   subsystem), built once per kernel from its files.
//! - [`seed`]: one run's blocks placed on the map (`coverage.json`).
//! - [`summary`]: runs merged into per-subsystem and per-function figures and a time line.
//! - [`csource`]: function definitions (names, line spans) in kernel C text.
//! - [`patch`], [`git_diff`], [`diff`]: the functions a patch changes (`git diff` of a
//!   kernel tree) and how far a campaign reached each (`--coverage-diff`).

pub mod blocks;
pub mod csource;
pub mod diff;
pub mod git_diff;
pub mod kernel_code;
pub mod map;
pub mod patch;
pub mod raw;
pub mod seed;
pub mod subsystems;
pub mod summary;
pub mod symbols;

use std::path::{Path, PathBuf};

pub use map::CodeMap;
pub use seed::SeedCoverage;
pub use summary::CoverageSummary;

/// The plugin's output in an item's directory (removed once mapped).
pub const RAW_FILE: &str = "coverage.raw";
/// One run's mapped coverage in its item's directory.
pub const SEED_FILE: &str = "coverage.json";
/// The code map of a campaign's kernel, in the run directory (`coverage-map.json`, or
/// `coverage-map-<release>.json` beside it for a kernel matrix).
pub const MAP_FILE: &str = "coverage-map.json";
/// The functions of `--coverage-diff`'s patch, recorded in the run directory when the
/// campaign starts ([`diff::PatchFunctions`]).
pub const PATCH_FILE: &str = "coverage-diff.json";
/// The map file of a campaign's kernel: [`MAP_FILE`], or for kernel `name` of a matrix
/// `coverage-map-<name>.json` (characters other than `[A-Za-z0-9._+-]` as `_`).
pub fn map_file(kernel: Option<&str>) -> String {
    kernel.map_or_else(|| MAP_FILE.to_owned(), |k| per_kernel("coverage-map", k))
}

/// A run's coverage file in its item's directory: [`SEED_FILE`], or for kernel `name` of a
/// matrix (whose kernels share the item directories) `coverage-<name>.json`.
pub fn seed_file(kernel: Option<&str>) -> String {
    kernel.map_or_else(|| SEED_FILE.to_owned(), |k| per_kernel("coverage", k))
}

fn per_kernel(stem: &str, kernel: &str) -> String {
    let safe: String = kernel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}-{safe}.json")
}

/// Largest `coverage.json` or map read back.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Errors of coverage.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// A file could not be read or written.
    #[error("coverage: {what}: {source}")]
    Io {
        /// What.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The kernel's files could not be read as a kernel.
    #[error("coverage map: {0}")]
    Kernel(String),
    /// The plugin's file is not one.
    #[error("coverage file {path}: {source}")]
    Raw {
        /// File.
        path: PathBuf,
        /// Cause.
        source: raw::RawError,
    },
    /// The guest's kallsyms could not be used.
    #[error("kallsyms of the workload VM: {0}")]
    Symbols(#[from] symbols::SymbolsError),
    /// A patch's changed functions could not be found (`--coverage-diff`).
    #[error("{0}")]
    Patch(String),
    /// A JSON file of coverage does not parse.
    #[error("{path}: {detail}")]
    Json {
        /// File.
        path: PathBuf,
        /// Parser message.
        detail: String,
    },
}

impl CoverageError {
    fn io(what: &str, source: std::io::Error) -> CoverageError {
        CoverageError::Io {
            what: what.to_owned(),
            source,
        }
    }
}

/// Read a JSON file of coverage (a map or a `coverage.json`), bounded.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CoverageError> {
    let text =
        crate::input::read_to_string(path, MAX_JSON_BYTES, "coverage JSON").map_err(|e| {
            CoverageError::Json {
                path: path.to_owned(),
                detail: e.to_string(),
            }
        })?;
    serde_json::from_str(&text).map_err(|e| CoverageError::Json {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// Write a JSON file of coverage atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), CoverageError> {
    let json = serde_json::to_vec(value).map_err(|e| CoverageError::Json {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    crate::host::write_atomically(path, &json)
        .map_err(|e| CoverageError::io(&format!("writing {}", path.display()), e))
}

/// Map the plugin's file `raw_path` of one run through that VM's `kallsyms` onto `map`,
/// write it as `out` (`coverage.json`), and remove the raw file. `at_ms`: when the run
/// ended.
pub fn finish_run(
    raw_path: &Path,
    kallsyms: &str,
    map: &CodeMap,
    out: &Path,
    at_ms: u64,
) -> Result<SeedCoverage, CoverageError> {
    let text = crate::input::read_to_string(raw_path, raw::MAX_RAW_BYTES, "coverage file")
        .map_err(|e| CoverageError::Json {
            path: raw_path.to_owned(),
            detail: e.to_string(),
        })?;
    let blocks = raw::parse(&text).map_err(|source| CoverageError::Raw {
        path: raw_path.to_owned(),
        source,
    })?;
    let syms = symbols::KernelSymbols::parse(kallsyms)?;
    let cov = seed::map_run(&blocks, &syms, map, at_ms);
    write_json(out, &cov)?;
    // The raw file is only an intermediate: a failed removal leaves a file, nothing else.
    std::fs::remove_file(raw_path).ok();
    Ok(cov)
}
