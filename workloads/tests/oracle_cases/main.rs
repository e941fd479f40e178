//! Hand-computed oracle cases, one or more per op kind: what must be durable, what may be
//! lost, and what the checker reports.

mod common;
mod data;
mod metadata;
mod names;
mod namespace;
mod open_sync;
mod shift;
mod sync_calls;
mod uring;
