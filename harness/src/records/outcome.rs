//! The checker's verdict on one crash image ([`CheckOutcome`]), and the crash state a
//! repeated image's check stood on ([`StateRef`]).

use serde::{Deserialize, Serialize};
use workloads::oracle::{Finding, Verdict};

use super::finding::CrashLabel;
use super::item::TrialItem;
use super::phases::CheckPhases;

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
    /// Where the check's time went (zero in records written before phases).
    #[serde(default)]
    pub phases: CheckPhases,
    /// The image was byte-identical to this earlier state's: its read-back (mount result,
    /// files, host fsck) was reused and the oracle judged it with this state's own promises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<StateRef>,
}

/// One crash state of a campaign, by its item, crash point and crash-model variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    /// The seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
    /// Where the power was cut.
    pub at: CrashLabel,
    /// Crash model and variant (`snapshot`, `cache:worst`, …).
    pub model: String,
}

impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} [{}]", self.item, self.at, self.model)
    }
}
