//! Whole run directories as input, beside the reports: reading one for the reports
//! ([`read`], with the guest kernels' complaints in its console logs: [`kernel_log`]) and
//! merging the run directories of a campaign's shards into one ([`merge`]), and the kernel
//! coverage of one or more run directories ([`coverage`]).
//! The run directory's layout and records are [`crate::rundir`]'s.

pub mod coverage;
pub mod kernel_log;
pub mod merge;
pub mod read;
