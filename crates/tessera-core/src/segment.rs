//! Segmentation: computed traits and audience membership kept exact in real time, and
//! audiences evaluated over every profile in batch.
//!
//! The segmentation store holds, per workspace, profile traits and events by column
//! (`table.rs`, `column.rs`, `events.rs`). The real-time evaluator (`segmenter.rs`) evaluates
//! what an applied event can change, for its profile only, with the reference rules of
//! [`crate::audience::reference`]; timers (`timers.rs`) re-evaluate profiles when a sliding
//! window's edge passes. The batch evaluator (`batch.rs`) answers the same questions for every
//! profile at once by scanning columns on several threads. `registry.rs` holds the saved
//! definitions in dependency order.

mod batch;
mod bitset;
mod column;
mod events;
mod feed;
mod lifecycle;
mod registry;
mod segmenter;
mod table;
#[cfg(test)]
mod tests;
mod timers;

pub use batch::BatchView;
pub use bitset::Bitset;
pub use column::{Cell, Column};
pub use events::{EventStore, Partition};
pub use feed::{apply_event, load_profiles, set_trait};
pub use registry::{AudienceDef, ComputedTrait, Registry, RegistryError};
pub use segmenter::{default_value, Applied, MembershipChange, Reason, Segmenter};
pub use table::Table;
