//! The one contract between the campaign engine and whoever shows its progress: the
//! coordinator records each event in the journal, folds it ([`super::fold`]), then hands it
//! to an [`EventSink`] (the terminal's progress bars, [`crate::ui::Progress`]). The engine
//! never draws anything itself.

use super::events::Event;
use super::fold::CampaignState;
use crate::records::TrialItem;

/// A consumer of a campaign's recorded events.
pub trait EventSink {
    /// The engine starts on `listed` items (workloads and listed seeds); `state` is the fold
    /// of the journal so far (a resumed campaign's finished items).
    fn begin(&mut self, state: &CampaignState, listed: &[TrialItem]);
    /// One event, recorded and folded (`state` already includes it); `suppressions` are
    /// the campaign's known-bug patterns.
    fn event(&mut self, e: &Event, state: &CampaignState, suppressions: &[regex::Regex]);
    /// A line for the user that is not an event (interrupts, the time budget, a fatal stop).
    fn note(&mut self, line: &str);
    /// The engine's run ended.
    fn end(&mut self);
}
