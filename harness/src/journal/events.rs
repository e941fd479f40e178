//! The campaign's events: what the engine says happened, in order. `journal.jsonl` is
//! exactly this stream, one JSON object per line (tag `event`), versioned by its first line
//! ([`Event::Journal`]). Progress bars, the summary, `--resume` and every report are folds
//! over it ([`super::fold`]); nothing else records results.
//!
//! Every per-item event names its item with one key ([`TrialItem`]): `"seed": 7` for a
//! generated seed, `"workload": "name"` for a workload file. Both are additive to journal
//! version 2: a journal written before workload items and buckets reads unchanged.

use serde::{Deserialize, Serialize};
use workloads::oracle::Verdict;

use crate::records::finding::{CrashLabel, Failure};
use crate::records::{CheckPhases, RunPhases, StateRef, TrialItem};

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
        /// The shard of the campaign this run directory runs (`--shard K/N`); absent for a
        /// whole campaign (and in journals written before shards).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<crate::config::shard::Shard>,
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
    /// A worker took an item; an earlier, interrupted attempt of the item is void.
    SeedStarted {
        /// The seed or workload.
        #[serde(flatten)]
        item: TrialItem,
    },
    /// The seed's run failed for infrastructure reasons: no checks follow; the seed is done.
    RunFailed {
        /// The seed or workload.
        #[serde(flatten)]
        item: TrialItem,
        /// `boot-failed`, `guest-panic`, `agent-lost` or `timeout`.
        verdict: Verdict,
        /// One line saying what went wrong.
        problem: String,
    },
    /// The seed's run finished; `images` checks follow.
    RunDone {
        /// The seed or workload.
        #[serde(flatten)]
        item: TrialItem,
        /// Crash images sent to the checkers.
        images: usize,
        /// Boot to SSH, ms.
        boot_ms: u64,
        /// Op wall time in the guest, µs.
        op_micros: u64,
        /// Where the live file system differed from the oracle's no-crash state (an
        /// oracle/agent disagreement, counted as an infrastructure problem).
        live_mismatch: Option<String>,
        /// Where the run's time went; absent in journals written before phases.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phases: Option<RunPhases>,
    },
    /// One crash image was checked (or its check failed for infrastructure reasons).
    Checked(CheckRecord),
    /// The failure directory of a bucket was written (its first instance).
    FailureSaved {
        /// The seed or workload of that instance.
        #[serde(flatten)]
        item: TrialItem,
        /// The title of that instance.
        title: String,
        /// `failures/<slug>`, relative to the run directory.
        dir: String,
        /// The bucket's id ([`crate::records::bucket::Bucket::id`]); absent in journals
        /// written before buckets, where the title keyed the directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bucket: Option<String>,
    },
    /// Every check of the item's run is recorded above.
    SeedDone {
        /// The seed or workload.
        #[serde(flatten)]
        item: TrialItem,
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
    /// The seed or workload.
    #[serde(flatten)]
    pub item: TrialItem,
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
    /// Where the check's time went; absent in journals written before phases and for
    /// infrastructure verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Box<CheckPhases>>,
    /// The image was byte-identical to this earlier state's: its read-back was reused and
    /// the verdict is this state's own promises judged against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<Box<StateRef>>,
}

impl CheckRecord {
    /// The failure title, if the check failed.
    pub fn title(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.title.as_str())
    }

    /// The failure's bucket id ([`Failure::bucket_id`]), if the check failed.
    pub fn bucket_id(&self) -> Option<String> {
        self.failure.as_ref().map(Failure::bucket_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::CrashPoint;

    #[test]
    fn events_are_one_tagged_json_object_each() {
        let e = Event::Checked(CheckRecord {
            item: TrialItem::Seed(3),
            at: CrashLabel {
                point: CrashPoint::AfterOp(7),
                kind: "fsync".into(),
            },
            model: "snapshot".into(),
            verdict: Verdict::Pass,
            failure: None,
            problem: None,
            millis: 12,
            phases: None,
            same_as: None,
        });

        let line = serde_json::to_string(&e).expect("serializes");
        let back: Event = serde_json::from_str(&line).expect("parses");

        assert!(line.starts_with(r#"{"event":"checked","seed":3,"at":{"point":{"after_op":7}"#));
        assert_eq!(back, e);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn workload_items_and_old_lines_read_back() {
        let old = r#"{"event":"failure_saved","seed":4,"title":"t","dir":"failures/t"}"#;
        let e = Event::SeedDone {
            item: TrialItem::Workload("mmap-store-fsync".into()),
        };

        let line = serde_json::to_string(&e).expect("serializes");
        let back: Event = serde_json::from_str(&line).expect("parses");
        let old: Event = serde_json::from_str(old).expect("old line parses");

        assert_eq!(
            line,
            r#"{"event":"seed_done","workload":"mmap-store-fsync"}"#
        );
        assert_eq!(back, e);
        assert!(matches!(
            old,
            Event::FailureSaved {
                item: TrialItem::Seed(4),
                bucket: None,
                ..
            }
        ));
    }
}
