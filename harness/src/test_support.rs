//! The one door `harness/tests` comes in through: what the integration tests need of the
//! crate (VMs, images, run directories, journals, records, the checker, triage), re-exported
//! in one flat namespace so that a module's inner layout can change without touching them.

pub use crate::cache_dir::cache_root;
pub use crate::cache_model::Variant;
pub use crate::checker::dedupe::SeenImages;
pub use crate::checker::{Checker, CheckerSpec};
pub use crate::config::CampaignConfig;
pub use crate::host::blocks::{sparse_copy, sync_blocks};
pub use crate::image::golden::mount_dax;
pub use crate::image::kernel::{resolve, KernelSpec};
pub use crate::image::{
    build_image, golden_image, Filesystem, GoldenImage, GuestImage, ImageOptions,
};
pub use crate::journal::events::{CheckRecord, Event};
pub use crate::journal::JournalWriter;
pub use crate::prepare::{kernel as prepare_kernel, KernelSetup};
pub use crate::records::bucket::BucketContext;
pub use crate::records::finding::deciding_failure;
pub use crate::records::{CheckOutcome, CrashLabel, StateRef, TrialItem};
pub use crate::rundir::diff::slug;
pub use crate::rundir::failure::{
    self, FailureDir, FailureRecord, Instance, NewFailure, FAILURE_SCHEMA,
};
pub use crate::rundir::{RunDir, RunInfo};
pub use crate::triage::creproducer::{render_c, CReproInput};
pub use crate::trial::plan::plan as crash_plan;
pub use crate::trial::snapshot;
pub use crate::trial::{check_image, run as run_trial, CheckEnv, Judged, TrialSetup};
pub use crate::vm::agent::GUEST_DIR;
pub use crate::vm::{resolve_accel, Accel, AccelChoice, Vm, VmError, VmSpec, BOOT_TIMEOUT};
