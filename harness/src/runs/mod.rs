//! Whole run directories as input, beside the reports: reading one for the reports
//! ([`read`]) and merging the run directories of a campaign's shards into one ([`merge`]).
//! The run directory's layout and records are [`crate::rundir`]'s.

pub mod merge;
pub mod read;
