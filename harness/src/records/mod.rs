//! Shared records, the bottom floor beside [`crate::host`]: what a campaign runs
//! ([`TrialItem`]), where power was cut ([`CrashLabel`]), the checker's verdict
//! ([`CheckOutcome`]), a failure's bucket and signature ([`Bucket`], [`Signature`],
//! [`Failure`]) and the crash model as configured. Plain data and pure functions: nothing
//! here imports a harness module above [`crate::host`].

pub mod bucket;
pub mod crash;
pub mod finding;
pub mod item;
pub mod outcome;
pub mod phases;
pub mod store_path;

pub use crash::{CacheModelConfig, CrashModel, CrashPointConfig};
pub use finding::CrashLabel;
pub use item::TrialItem;
pub use outcome::{CheckOutcome, StateRef};
pub use phases::{CheckPhases, PhaseTotals, RunPhases};

/// The file extension of a crash image.
pub const CRASH_IMAGE_EXT: &str = "img";
