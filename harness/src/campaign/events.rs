//! The campaign's events: what the engine says happened, in order. `journal.jsonl` is
//! exactly this stream, one JSON object per line (tag `event`), versioned by its first line
//! ([`Event::Journal`]). Progress bars, the summary, `--resume` and every report are folds
//! over it ([`super::fold`]); nothing else records results.

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use crate::trial::finding::{CrashLabel, Failure};

/// Version of the journal format this powercut writes and reads.
pub const JOURNAL_VERSION: u32 = 2;

/// One event of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line of every journal.
    Journal {
        /// [`JOURNAL_VERSION`].
        version: u32,
        /// The powercut version that created it.
        powercut: String,
    },
    /// The campaign started (or was resumed) with this parallelism.
    Started {
        /// A `--resume` of an earlier run.
        resumed: bool,
        /// Workload VMs at once.
        workers: usize,
        /// Checker VMs.
        checkers: usize,
    },
    /// A worker took a seed; an earlier, interrupted attempt of the seed is void.
    SeedStarted {
        /// The seed.
        seed: u64,
    },
    /// The seed's run failed for infrastructure reasons: no checks follow; the seed is done.
    RunFailed {
        /// The seed.
        seed: u64,
        /// `boot-failed`, `guest-panic`, `agent-lost` or `timeout`.
        verdict: Verdict,
        /// One line saying what went wrong.
        problem: String,
    },
    /// The seed's run finished; `images` checks follow.
    RunDone {
        /// The seed.
        seed: u64,
        /// Crash images sent to the checkers.
        images: usize,
        /// Boot to SSH, ms.
        boot_ms: u64,
        /// Op wall time in the guest, µs.
        op_micros: u64,
        /// Where the live file system differed from the oracle's no-crash state (an
        /// oracle/agent disagreement, counted as an infrastructure problem).
        live_mismatch: Option<String>,
    },
    /// One crash image was checked (or its check failed for infrastructure reasons).
    Checked(CheckRecord),
    /// The failure directory of a failure title was written (its first instance).
    FailureSaved {
        /// The seed of that instance.
        seed: u64,
        /// The failure title.
        title: String,
        /// `failures/<slug>`, relative to the run directory.
        dir: String,
    },
    /// Every check of the seed's run is recorded above.
    SeedDone {
        /// The seed.
        seed: u64,
    },
    /// The campaign stopped before its seeds were all done.
    Stopped {
        /// Why (interrupted, or the error that could not be recorded).
        reason: String,
    },
}

/// The check of one crash image, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The seed.
    pub seed: u64,
    /// Where the power was cut.
    pub at: CrashLabel,
    /// Crash model and variant of the image (`snapshot`, `cache:worst`, …).
    pub model: String,
    /// Verdict.
    pub verdict: Verdict,
    /// The failure that decided a kernel-bug verdict.
    pub failure: Option<Failure>,
    /// The infrastructure problem of an infrastructure verdict, one line.
    pub problem: Option<String>,
    /// Check time, ms.
    pub millis: u64,
}

impl CheckRecord {
    /// The failure title, if the check failed.
    pub fn title(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.title.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::CrashPoint;

    #[test]
    fn events_are_one_tagged_json_object_each() {
        let e = Event::Checked(CheckRecord {
            seed: 3,
            at: CrashLabel {
                point: CrashPoint::AfterOp(7),
                kind: "fsync".into(),
            },
            model: "snapshot".into(),
            verdict: Verdict::Pass,
            failure: None,
            problem: None,
            millis: 12,
        });

        let line = serde_json::to_string(&e).expect("serializes");
        let back: Event = serde_json::from_str(&line).expect("parses");

        assert!(line.starts_with(r#"{"event":"checked","seed":3,"at":{"point":{"after_op":7}"#));
        assert_eq!(back, e);
        assert!(!line.contains('\n'));
    }
}
