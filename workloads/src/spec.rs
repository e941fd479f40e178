//! YAML workload files: loading and parsing them with errors that name the file, the line
//! and the field, and the semantic validation every workload (hand-written or generated)
//! must pass before it runs. The schema is documented in `workloads/specs/README.md`.

mod raw;
pub mod yaml_limits;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;

use crate::op::Workload;
use crate::sim::Sim;

pub use crate::sim::{CACHE_LINE, FS_BLOCK, MAX_FILE_BYTES, MAX_NAME_LEN, PAGE_SIZE};
pub use raw::OP_KINDS;
use yaml_limits::YamlLimitError;

/// Largest workload file accepted, in bytes (checked before reading it).
pub const MAX_WORKLOAD_FILE_BYTES: u64 = 8 << 20;

/// Most ops a workload may have (the generator's `deep` profile makes at most 200).
pub const MAX_OPS: usize = 10_000;

/// Where an error was found: a file (or workload) name and, when known, a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File path or workload name.
    pub name: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl Origin {
    fn named(name: &str) -> Origin {
        Origin {
            name: name.to_string(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// Why a workload file or workload was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("failed to read workload file {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large, not UTF-8, or nested too deeply to be parsed.
    #[error("{origin}: {limit}")]
    Limit {
        /// File (or workload) name.
        origin: String,
        /// Which bound was passed.
        limit: YamlLimitError,
    },
    /// The workload's files can hold more data than the pmem can take.
    #[error(
        "{name}: its files can reach {need} bytes in total, more than half of the {pmem_bytes}-byte \
         pmem (the file system needs the rest); use a larger pmem or smaller files"
    )]
    DoesNotFit {
        /// Workload name.
        name: String,
        /// Sum over its files of the largest size (or allocation) each reaches.
        need: u64,
        /// The pmem size it was checked against.
        pmem_bytes: u64,
    },
    /// The YAML is malformed or does not fit the schema (unknown or missing field, wrong
    /// type, unknown op). `message` is the parser's, starting with the field path.
    #[error("{at}: {message} (schema: workloads/specs/README.md)")]
    Yaml {
        /// File and position.
        at: Origin,
        /// What is wrong, e.g. "ops[1].off: invalid type: string \"x\", expected u64".
        message: String,
    },
    /// A workload-level field is wrong.
    #[error("{at}: field `{field}`: {message}")]
    Field {
        /// File (or workload name).
        at: Origin,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Op `index` cannot run where it stands (validation simulates the directory assuming
    /// every earlier op succeeds).
    #[error("{at}: op {index} ({kind}), field `{field}`: {message}")]
    Invalid {
        /// File (or workload name) and the op's line, when known.
        at: Origin,
        /// Op index.
        index: usize,
        /// Op kind.
        kind: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong and what to do instead.
        message: String,
    },
}

/// Read, parse and validate the workload file at `path` (at most
/// [`MAX_WORKLOAD_FILE_BYTES`]).
pub fn load_workload(path: &Path) -> Result<Workload, SpecError> {
    let origin = path.display().to_string();
    let text = yaml_limits::read_capped(path, MAX_WORKLOAD_FILE_BYTES).map_err(|e| match e {
        YamlLimitError::Io(source) => SpecError::Read {
            path: path.to_path_buf(),
            source,
        },
        limit => SpecError::Limit {
            origin: origin.clone(),
            limit,
        },
    })?;
    parse_workload(&text, &origin)
}

/// Parse and validate workload YAML; `origin_name` (usually the file path) prefixes errors.
/// The text's nesting is checked ([`yaml_limits::check_depth`]) before it is parsed.
pub fn parse_workload(text: &str, origin_name: &str) -> Result<Workload, SpecError> {
    yaml_limits::check_depth(text, yaml_limits::MAX_YAML_DEPTH).map_err(|limit| {
        SpecError::Limit {
            origin: origin_name.to_string(),
            limit,
        }
    })?;
    let spec: raw::SpecWorkload =
        serde_yaml::from_str(text).map_err(|e| yaml_error(&e, origin_name))?;
    let workload = Workload::from(spec);
    validate(&workload).map_err(|e| match e {
        SpecError::Invalid {
            index,
            kind,
            field,
            message,
            ..
        } => {
            let (line, column) = op_position(text, index).unzip();
            let at = Origin {
                name: origin_name.to_string(),
                line,
                column,
            };
            SpecError::Invalid {
                at,
                index,
                kind,
                field,
                message,
            }
        }
        SpecError::Field { field, message, .. } => SpecError::Field {
            at: Origin::named(origin_name),
            field,
            message,
        },
        other => other,
    })?;
    Ok(workload)
}

fn yaml_error(e: &serde_yaml::Error, origin: &str) -> SpecError {
    let mut message = e.to_string();
    let loc = e.location();
    if let Some(l) = &loc {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(pos) = message.find(&suffix) {
            message.replace_range(pos..pos + suffix.len(), "");
        }
    }
    SpecError::Yaml {
        at: Origin {
            name: origin.to_string(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
        },
        message,
    }
}

/// Line and column of op `index` in `text`, found by making the parser fail there.
fn op_position(text: &str, index: usize) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (raw::OpLocator { index }).deserialize(de) {
        Err(e) if e.to_string().contains(raw::LOCATE_SENTINEL) => {
            e.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

/// Check that `workload` can run as written: at most [`MAX_OPS`] ops, simple file names,
/// offsets and lengths within [`MAX_FILE_BYTES`], and no op on a file that is not open / not
/// mapped / does not exist at that point of the workload's own sequence (a conservative
/// static simulation that assumes every earlier op succeeds; mmap stores and flushes must
/// stay inside the mapping and the file).
pub fn validate(workload: &Workload) -> Result<(), SpecError> {
    simulate(workload).map(drop)
}

/// Check that `workload` is valid ([`validate`]) and that the largest amount of file data
/// it can hold at once fits a pmem of `pmem_bytes`: the sum over its files of the largest
/// size (or `fallocate` allocation) each reaches must be at most half of the pmem, the rest
/// being the file system's (journal, metadata) and the fsdax info block's.
pub fn check_fits(workload: &Workload, pmem_bytes: u64) -> Result<(), SpecError> {
    let need = simulate(workload)?.total_extent();
    if need > pmem_bytes / 2 {
        return Err(SpecError::DoesNotFit {
            name: workload.name.clone(),
            need,
            pmem_bytes,
        });
    }
    Ok(())
}

/// Run the static simulation over `workload`, checking every op.
fn simulate(workload: &Workload) -> Result<Sim, SpecError> {
    if workload.name.trim().is_empty() {
        return Err(SpecError::Field {
            at: Origin::named("<workload>"),
            field: "name",
            message: "must not be empty".into(),
        });
    }
    if workload.ops.len() > MAX_OPS {
        return Err(SpecError::Field {
            at: Origin::named(&workload.name),
            field: "ops",
            message: format!(
                "{} ops; at most {MAX_OPS} (split the workload)",
                workload.ops.len()
            ),
        });
    }
    let mut sim = Sim::new();
    for (index, op) in workload.ops.iter().enumerate() {
        sim.apply(op).map_err(|p| SpecError::Invalid {
            at: Origin::named(&workload.name),
            index,
            kind: op.kind(),
            field: p.field,
            message: p.message,
        })?;
    }
    Ok(sim)
}

#[cfg(test)]
mod tests;
