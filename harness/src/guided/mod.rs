//! Coverage-guided generation below the campaign (`campaign --guided`): the corpus of
//! workloads that reached new blocks of the target subsystems, the mutation operators that
//! derive new workloads from it, and the corpus directory that outlives a run.
//!
//! - [`corpus`]: seen blocks, entries, energy and the seeded choice of a parent (pure).
//! - [`mutate`]: the mutation operators and valid derivations (pure).
//! - [`store`]: the corpus directory (`<id>.yaml` per entry, `index.json`), read as hostile
//!   input.

pub mod corpus;
pub mod mutate;
pub mod store;
