//! The cache-line-accurate crash model (pure): the plugin trace format and its parser, the
//! per-line state machine (stores, flushes, fences), where to cut the power, and the crash
//! states built from the golden image and the trace. No I/O here beyond what callers pass
//! in; VM runs and image files live in `campaign::cache_run`.

pub mod attribution;
/// The trace format, shared with the TCG plugin (the `powercut-trace-format` crate).
pub use trace_format as format;
pub mod cuts;
pub mod lines;
pub mod lost;
pub mod states;
pub mod trace;

pub use cuts::{plan_cuts, CutAt};
pub use lines::LineData;
pub use states::{
    build_selected, build_states, BuildSummary, CacheCut, CrashState, CutSelector, StateBounds,
    Variant,
};
pub use trace::Trace;
#[cfg(test)]
pub(crate) use {cuts::Cut, cuts::CutReason, lines::InFlight, states::LostLine};
