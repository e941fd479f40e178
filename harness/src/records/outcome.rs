//! The checker's verdict on one crash image ([`CheckOutcome`]).

use serde::{Deserialize, Serialize};
use workloads::oracle::{Finding, Verdict};

/// The verdict on one crash image and what explains it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Verdict.
    pub verdict: Verdict,
    /// Oracle findings (data-loss, …).
    pub findings: Vec<Finding>,
    /// Mount error or fsck output, when relevant.
    pub detail: String,
    /// Time for this check.
    pub millis: u64,
    /// Bytes written into the checker's pmem for this image.
    pub bytes_written: u64,
}
