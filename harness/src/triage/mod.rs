//! Triage of a failure found by a campaign: `repro` re-runs it, `minimize` shrinks its
//! workload, and the standalone C reproducer lets a kernel developer run it without powercut.
//!
//! Failure directories are read with [`crate::rundir::failure::FailureDir`]; a failure's
//! *signature* ([`crate::records::finding::Signature`]) is what a re-run must show.
//!
//! - [`session`]: the VM side — one workload VM per attempt, one checker VM for all.
//! - [`repro`]: "reproduced k of n" and `repro.json`.
//! - [`minimize`]: delta debugging over ops and shrinking of data ops (pure; the expensive
//!   test is a closure).
//! - [`driver`]: `minimize` with real runs, and its outputs in the failure directory.
//! - [`creproducer`]: `repro.c` / `repro.sh` from a workload and its expectation.

pub mod creproducer;
pub mod driver;
pub mod minimize;
pub mod repro;
pub mod session;

use std::path::PathBuf;

/// Errors of triage (library side; the CLI adds context).
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// A file of the failure directory could not be read or written.
    #[error("failed to access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The failure directory cannot be read.
    #[error(transparent)]
    FailureDir(#[from] crate::rundir::RunDirError),
    /// The VMs failed too often to go on.
    #[error("giving up after {count} infrastructure errors in a row; last: {last}")]
    Infra {
        /// Consecutive infrastructure errors.
        count: usize,
        /// The last one.
        last: String,
    },
}

impl TriageError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> TriageError {
        TriageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Write `text` to `path` atomically, mapping the error.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), TriageError> {
    crate::host::write_atomically(path, text.as_bytes()).map_err(|e| TriageError::io(path, e))
}
